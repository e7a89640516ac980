// A murder whose MUPDATE master listens on another port than 3905 (named in mupdate_server as
// host:port, as Cyrus 3.6 reads it): status, check and recover-master must follow the port
// from imapd.conf. Before that, the slave-connected condition looked for 3905 and a recovery
// waited out its settle time and failed.
import {afterEach, describe, expect, it} from 'vitest'
import {killSshd, startSshd} from './faults.js'
import {assertAllJournalCopiesIntact, lab, labHost, listOf, loseMasterDb, murderctl, onHost, useFileLab, waitLabHealthy} from './helpers.js'

const PORT = 39050
useFileLab({mupdatePort: PORT})

describe(`a murder whose MUPDATE port is ${PORT}`, () => {
  afterEach(async () => {
    await assertAllJournalCopiesIntact()
  })

  it('the lab runs it: the master listens there, not on 3905, and every member names it', async () => {
    // One network namespace for every lab on this machine: only the master's address counts.
    const at = labHost('mupdate').address
    const listening = (await onHost('mupdate', 'ss -Htln')).stdout.split('\n').filter((l) => l.includes(` ${at}:`))
    expect(listening.some((l) => l.includes(`${at}:${PORT} `))).toBe(true)
    expect(listening.some((l) => l.includes(`${at}:3905 `))).toBe(false)
    for (const h of ['fe1', 'b1']) expect((await onHost(h, 'grep ^mupdate_server: /etc/imapd.conf')).stdout.trim()).toBe(`mupdate_server: mupdate:${PORT}`)
  })

  it('status reads the banners on that port and sees every slave connected', async () => {
    const r = await murderctl(['status', '-i', lab().inventory, '--json', '--no-counts'])
    expect(r.exitCode, r.stderr).toBe(0)
    const host = (n: string) => r.json.hosts.find((h: any) => h.name === n)
    expect(host('mupdate').mupdate).toMatchObject({service: 'master', enabled: true, banner: 'master'})
    for (const fe of ['fe1', 'fe2']) expect(host(fe).mupdate).toMatchObject({enabled: true, banner: 'slave', slaveConnected: true})
    expect(host('mupdate').mupdateServer).toBeNull()
    expect(host('fe1').mupdateServer).toBe(`mupdate:${PORT}`)
  })

  it('status asks a master whose sshd is down for its banner on the port the members name, not on 3905', async () => {
    await killSshd('mupdate')
    try {
      const r = await murderctl(['status', '-i', lab().inventory, '--json', '--no-counts'])
      expect(r.exitCode).toBe(4)
      const m = r.json.hosts.find((h: any) => h.name === 'mupdate')
      expect(m.reachable).toBe(false)
      expect(m.mupdate.banner, JSON.stringify(m.mupdate)).toBe('master')
    } finally {
      await startSshd('mupdate')
    }
  })

  it('check is OK (the master answers and the slaves hold their connection on that port), CRITICAL once the master stops', async () => {
    const ok = await murderctl(['check', '-i', lab().inventory, '--format', 'json'])
    expect(ok.exitCode, ok.stdout).toBe(0)
    expect(JSON.parse(ok.stdout).checks.filter((c: any) => c.state !== 'OK')).toEqual([])
    await onHost('mupdate', `${lab().dir}/bin/cyrus-service stop`)
    try {
      const down = await murderctl(['check', '-i', lab().inventory, '--format', 'json', '--only', 'mupdate-master'])
      expect(down.exitCode, down.stdout).toBe(2)
      expect(JSON.parse(down.stdout).checks).toEqual([expect.objectContaining({name: 'mupdate-master', host: 'mupdate', state: 'CRITICAL'})])
    } finally {
      await onHost('mupdate', `${lab().dir}/bin/cyrus-service start`)
    }
    await waitLabHealthy()
  })

  it('recover-master --source backends rebuilds the lost master; the frontends reconnect on that port', async () => {
    const before = await listOf('mupdate')
    expect(before.size).toBe(40)
    await loseMasterDb()
    const r = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes', '--json'])
    expect(r.exitCode, JSON.stringify(r.json?.error)).toBe(0)
    expect(r.json.playbook).toBe('recover-master-standard-backends')
    // The step whose post-condition is slave-connected: checked, not waited out.
    const started = r.json.results.filter((u: any) => u.step === 'start-frontends')
    expect(started.map((u: any) => [u.host, u.status])).toEqual(
      expect.arrayContaining([
        ['fe1', 'done'],
        ['fe2', 'done'],
      ]),
    )
    expect(new Map([...(await listOf('mupdate'))].sort())).toEqual(new Map([...before].sort()))
    for (const fe of ['fe1', 'fe2']) expect((await listOf(fe)).size).toBe(40)
    const status = await murderctl(['status', '-i', lab().inventory, '--json', '--no-counts'])
    for (const fe of status.json.hosts.filter((h: any) => h.role === 'frontend')) expect(fe.mupdate.slaveConnected).toBe(true)
    expect(await assertAllJournalCopiesIntact()).toBeGreaterThan(0)
  })
})
