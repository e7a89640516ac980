// A murder behind a bastion: every host reached through ssh.proxyJump (as ssh -J), the bastion's
// key checked like any host's. Here the lab's mupdate host serves as the bastion.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'
import {lab, labHost, murderctl} from './helpers.js'

describe('through a bastion', () => {
  it('status and check reach every host through ssh.proxyJump', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'murderctl-bastion-'))
    const doc = parse(readFileSync(lab().inventory, 'utf8'))
    doc.knownHosts = join(lab().dir, 'known_hosts')
    doc.defaults.ssh.identity = join(lab().dir, 'id_ed25519')
    doc.stateDir = join(dir, 'state')
    const bastion = labHost('mupdate').address
    for (const h of doc.hosts) if (h.name !== 'mupdate') h.ssh = {...h.ssh, proxyJump: `root@${bastion}:22`}
    const inv = join(dir, 'murder.yaml')
    writeFileSync(inv, stringify(doc))
    const status = await murderctl(['status', '-i', inv, '--json', '--no-counts'])
    expect(status.exitCode, status.stdout).toBe(0)
    expect(status.json.hosts.every((h: any) => h.reachable)).toBe(true)
    // The MUPDATE banners too, read through each host's sshd behind the bastion.
    const banner = (n: string) => status.json.hosts.find((h: any) => h.name === n).mupdate.banner
    expect([banner('mupdate'), banner('fe1'), banner('fe2')]).toEqual(['master', 'slave', 'slave'])
    const check = await murderctl(['check', '-i', inv, '--only', 'cyrus-master', '--only', 'slaves'])
    expect(check.exitCode, check.stdout).toBe(0)
    // A bastion whose key is not on file: refused, naming the bastion.
    writeFileSync(
      join(dir, 'kh'),
      readFileSync(join(lab().dir, 'known_hosts'), 'utf8')
        .split('\n')
        .filter((l) => !l.includes(`${bastion} `) && !l.startsWith('mupdate,'))
        .join('\n'),
    )
    doc.knownHosts = join(dir, 'kh')
    writeFileSync(inv, stringify(doc))
    const refused = await murderctl(['status', '-i', inv, '--json', '--no-counts'])
    const b1 = refused.json.hosts.find((h: any) => h.name === 'b1')
    expect(b1.reachable).toBe(false)
    expect(b1.error).toMatch(new RegExp(`unknown host key for ${bastion.replace(/\./g, '\\.')} \\(bastion of b1\\)`))
  })
})
