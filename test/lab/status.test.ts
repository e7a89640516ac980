// status against the real lab, over SSH, checked against what the hosts really hold.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'
import {countEntries, parseDump} from '../../src/cyrus/mboxlist-dump.js'
import {CTL, lab, labBase, murderctl, onHost, waitLabHealthy} from './helpers.js'

/**
 * Counts straight from a host's mailboxes.db, without murderctl (total, local, remote), and the
 * other figures by the streaming parser: status counts on the host, and must agree with both.
 */
async function trueCounts(host: string) {
  const text = (await onHost(host, `${CTL} -d`)).stdout
  const dump = JSON.parse(text) as Record<string, {server?: string; mbtype: string}>
  const entries = Object.values(dump)
  const remote = entries.filter((e) => e.server || e.mbtype.includes('r')).length
  // One entry a line: the raw count an operator makes (ctl_mboxlist -d | grep -c '^"').
  expect(text.split('\n').filter((l) => l.startsWith('"')).length).toBe(entries.length)
  return {...countEntries(parseDump(text)), total: entries.length, local: entries.length - remote, remote}
}

/** A copy of the lab inventory, edited, in its own folder (known_hosts and key copied along). */
function variantInventory(edit: (doc: any) => void, knownHosts?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'murderctl-inv-'))
  const doc = parse(readFileSync(lab().inventory, 'utf8'))
  doc.knownHosts = join(dir, 'known_hosts')
  doc.defaults.ssh.identity = join(lab().dir, 'id_ed25519')
  writeFileSync(doc.knownHosts, knownHosts ?? readFileSync(join(lab().dir, 'known_hosts'), 'utf8'))
  edit(doc)
  const path = join(dir, 'inventory.yaml')
  writeFileSync(path, stringify(doc))
  return path
}

describe('murderctl status on the standard lab', () => {
  // Another file may have just restarted the master; status should report a settled lab.
  beforeAll(() => waitLabHealthy(), 60_000)

  it('reports every host with figures equal to what the hosts hold', async () => {
    const r = await murderctl(['status', '-i', lab().inventory, '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    const hosts = Object.fromEntries(r.json.hosts.map((h: any) => [h.name, h]))
    expect(Object.keys(hosts).sort()).toEqual(['b1', 'b1r', 'b2', 'fe1', 'fe2', 'mupdate'])
    for (const name of Object.keys(hosts)) {
      const h = hosts[name]
      expect(h.reachable, name).toBe(true)
      expect(h.version).toMatch(/^3\.6\./)
      expect(h.cyrusMaster.running).toBe(true)
      const truth = await trueCounts(name)
      expect(h.mailboxes, name).toEqual(truth)
    }
    expect(hosts.mupdate.mupdate).toMatchObject({service: 'master', enabled: true, banner: 'master', slaveConnected: null})
    for (const fe of ['fe1', 'fe2']) {
      expect(hosts[fe].mupdate).toMatchObject({service: 'slave', enabled: true, banner: 'slave', slaveConnected: true})
      expect(hosts[fe].murderRole).toBe('frontend')
    }
    expect(hosts.b1).toMatchObject({murderRole: 'backend', mupdatePush: true, mupdateConfig: 'standard'})
    // sync_host names the replica by its own address once a failover and failback have run.
    expect(hosts.b1.replication).toEqual({syncLog: true, syncHost: expect.stringMatching(/^(b1r|127\.\d+\.\d+\.15)$/), rollingClient: 'running'})
    expect(hosts.b2.replication.rollingClient).toBe('none')
    expect(hosts.b1r).toMatchObject({servername: 'b1', murderRole: 'standalone', mupdatePush: false})
    // The master holds exactly the backends' own live mailboxes (other files may have added
    // some, or left a deleted mailbox's tombstone on a backend).
    expect(hosts.mupdate.mailboxes.total).toBeGreaterThanOrEqual(40)
    expect(hosts.b1.mailboxes.liveLocal + hosts.b2.mailboxes.liveLocal).toBe(hosts.mupdate.mailboxes.total)
  })

  it('prints a table on a terminal-less stdout, with every host', async () => {
    const r = await murderctl(['status', '-i', lab().inventory])
    expect(r.exitCode, r.stderr).toBe(0)
    for (const h of ['mupdate', 'fe1', 'fe2', 'b1', 'b2', 'b1r']) expect(r.stdout).toMatch(new RegExp(`^${h}\\s`, 'm'))
    expect(r.stdout).toContain('connected')
  })

  it('reports an unreachable host with the reason and goes on with the others', async () => {
    const inv = variantInventory((d) => d.hosts.find((h: any) => h.name === 'fe2') && (d.hosts.find((h: any) => h.name === 'fe2').address = `${labBase()}.99`))
    const started = Date.now()
    const r = await murderctl(['status', '-i', inv, '--json', '--no-counts'])
    expect(Date.now() - started).toBeLessThan(20_000)
    // Issue 10: a host down is a failure, with the code every command gives it (4).
    expect(r.exitCode).toBe(4)
    const fe2 = r.json.hosts.find((h: any) => h.name === 'fe2')
    expect(fe2.reachable).toBe(false)
    expect(fe2.error).toContain(`connection refused on ${labBase()}.99:22`)
    expect(r.json.hosts.find((h: any) => h.name === 'b1').reachable).toBe(true)
  })

  it('refuses an unknown host key with a one-line error naming the host', async () => {
    const inv = variantInventory(() => {}, '')
    const r = await murderctl(['status', '-i', inv, '--json', '--no-counts'])
    const mupdate = r.json.hosts.find((h: any) => h.name === 'mupdate')
    expect(mupdate.reachable).toBe(false)
    expect(mupdate.error).toMatch(/host mupdate.*unknown host key.*SHA256:/i)
    expect(mupdate.error).not.toContain('\n')
  })

  it('refuses a changed host key even with --accept-new-host-keys', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'murderctl-key-'))
    const {execa} = await import('execa')
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'k')])
    const other = readFileSync(join(dir, 'k.pub'), 'utf8').split(' ').slice(0, 2).join(' ')
    const known = readFileSync(join(lab().dir, 'known_hosts'), 'utf8').replace(/^(b2,\S+) .*$/m, `$1 ${other}`)
    const inv = variantInventory(() => {}, known)
    const r = await murderctl(['status', '-i', inv, '--json', '--no-counts', '--accept-new-host-keys'])
    const b2 = r.json.hosts.find((h: any) => h.name === 'b2')
    expect(b2.reachable).toBe(false)
    expect(b2.error).toMatch(/host b2.*(changed|mismatch)/i)
    expect(r.json.hosts.find((h: any) => h.name === 'b1').reachable).toBe(true)
  })

  it('accepts and records a new host key only when told to', async () => {
    const inv = variantInventory(() => {}, '')
    const r = await murderctl(['status', '-i', inv, '--json', '--no-counts', '--accept-new-host-keys'])
    expect(r.json.hosts.every((h: any) => h.reachable)).toBe(true)
    const known = readFileSync(join(inv, '..', 'known_hosts'), 'utf8')
    expect(known.trim().split('\n')).toHaveLength(6)
    const again = await murderctl(['status', '-i', inv, '--json', '--no-counts'])
    expect(again.json.hosts.every((h: any) => h.reachable)).toBe(true)
  })

  it('gives up on a hung command after the timeout, naming the host', async () => {
    // A pidfile on a hung filesystem blocks `cat`; a FIFO with no writer does the same.
    await onHost('b2', 'rm -f /run/murderctl-hang && mkfifo /run/murderctl-hang')
    try {
      const inv = variantInventory((d) => {
        const b2 = d.hosts.find((h: any) => h.name === 'b2')
        b2.cyrus = {pidFile: '/run/murderctl-hang'}
        b2.ssh = {commandTimeout: 2}
      })
      const started = Date.now()
      const r = await murderctl(['status', '-i', inv, '--json', '--no-counts'])
      expect(Date.now() - started).toBeLessThan(20_000)
      const b2 = r.json.hosts.find((h: any) => h.name === 'b2')
      expect(JSON.stringify(b2)).toMatch(/timed out/)
    } finally {
      await onHost('b2', 'rm -f /run/murderctl-hang')
    }
  })

  it('fails on a malformed inventory with exit 3 and one line naming the file and field', async () => {
    const inv = variantInventory((d) => (d.hosts[0].role = 'master'))
    const r = await murderctl(['status', '-i', inv])
    expect(r.exitCode).toBe(3)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/inventory\.yaml: line \d+: hosts\[0\]\.role/)
    const j = await murderctl(['status', '-i', inv, '--json'])
    expect(j.exitCode).toBe(3)
    expect(j.json.error).toMatchObject({code: 'inventory', exitCode: 3})
  })
})
