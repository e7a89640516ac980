// A murder behind a bastion: every host reached through ssh.proxyJump (as ssh -J), the bastion's
// key checked like any host's. Here the lab's mupdate host serves as the bastion. And a host
// known to the inventory only by an alias of the operator's OpenSSH client config.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'
import {lab, labHost, murderctl} from './helpers.js'

/** The lab's inventory, to edit, with its state in a folder of its own; the master serves as the bastion. */
function labInventory(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  const doc = parse(readFileSync(lab().inventory, 'utf8'))
  doc.knownHosts = join(lab().dir, 'known_hosts')
  doc.defaults.ssh.identity = join(lab().dir, 'id_ed25519')
  doc.stateDir = join(dir, 'state')
  return {dir, doc, bastion: labHost('mupdate').address}
}

describe('through a bastion', () => {
  it('status and check reach every host through ssh.proxyJump', async () => {
    const {dir, doc, bastion} = labInventory('murderctl-bastion-')
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

  it('a murder the operator cannot reach directly: by names only the bastion resolves, reached through it alone', async () => {
    // The lab's hosts share one network, but not one /etc/hosts: each host's names its own, the
    // operator's knows none of them. Named that way, every host but the bastion is out of the
    // operator's reach, as behind a firewall, and only a path through the bastion reaches it.
    const {dir, doc, bastion} = labInventory('murderctl-behind-')
    for (const h of doc.hosts) if (h.name !== 'mupdate') h.address = h.name
    const inv = join(dir, 'murder.yaml')
    writeFileSync(inv, stringify(doc))
    const direct = await murderctl(['status', '-i', inv, '--json', '--no-counts'])
    expect(direct.exitCode).toBe(4)
    const unreachable = direct.json.hosts.filter((h: any) => !h.reachable).map((h: any) => h.name)
    expect(unreachable.sort()).toEqual(
      doc.hosts
        .filter((h: any) => h.name !== 'mupdate')
        .map((h: any) => h.name)
        .sort(),
    )
    for (const h of doc.hosts) if (h.name !== 'mupdate') h.ssh = {...h.ssh, proxyJump: `root@${bastion}:22`}
    writeFileSync(inv, stringify(doc))
    const through = await murderctl(['status', '-i', inv, '--json', '--no-counts'])
    expect(through.exitCode, through.stdout).toBe(0)
    expect(through.json.hosts.every((h: any) => h.reachable)).toBe(true)
    const banner = (n: string) => through.json.hosts.find((h: any) => h.name === n).mupdate.banner
    expect([banner('mupdate'), banner('fe1'), banner('fe2')]).toEqual(['master', 'slave', 'slave'])
    const check = await murderctl(['check', '-i', inv, '--only', 'cyrus-master', '--only', 'slaves'])
    expect(check.exitCode, check.stdout).toBe(0)
  })

  it('reaches a host known only by an alias of the OpenSSH client config (HostName, Port, User, IdentityFile from the file)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'murderctl-sshconfig-'))
    const doc = parse(readFileSync(lab().inventory, 'utf8'))
    const key = join(lab().dir, 'id_ed25519')
    doc.knownHosts = join(lab().dir, 'known_hosts')
    doc.stateDir = join(dir, 'state')
    delete doc.defaults.ssh.user
    delete doc.defaults.ssh.identity
    const fe1 = labHost('fe1').address
    for (const h of doc.hosts) {
      if (h.name === 'fe1') h.address = 'fe1-alias'
      else h.ssh = {user: 'root', port: 22, identity: key}
    }
    // `Host *` comes last: fe1-alias's own values are obtained first; the other hosts' inventory values win over it.
    const config = (port: number) =>
      `Host fe1-alias\n  HostName ${fe1}\n  Port ${port}\n  User root\n  IdentityFile ${key}\nHost *\n  Port 1\n  User nobody\n  IdentityFile /nonexistent\n`
    writeFileSync(join(dir, 'ssh_config'), config(22))
    const inv = join(dir, 'murder.yaml')
    writeFileSync(inv, stringify(doc))
    const status = await murderctl(['status', '-i', inv, '-F', join(dir, 'ssh_config'), '--json', '--no-counts'])
    expect(status.exitCode, status.stdout).toBe(0)
    expect(status.json.hosts.filter((h: any) => !h.reachable)).toEqual([])
    // fe1's MUPDATE banner, read through its sshd at the HostName the config gives.
    expect(status.json.hosts.find((h: any) => h.name === 'fe1').mupdate.banner).toBe('slave')
    // The inventory's ssh.configFile, with another Port for the alias: that is where murderctl goes.
    writeFileSync(join(dir, 'ssh_config_2'), config(2))
    doc.defaults.ssh.configFile = 'ssh_config_2'
    writeFileSync(inv, stringify(doc))
    const wrongPort = await murderctl(['status', '-i', inv, '--json', '--no-counts'])
    const down = wrongPort.json.hosts.filter((h: any) => !h.reachable)
    expect(down.map((h: any) => h.name)).toEqual(['fe1'])
    expect(down[0].error).toMatch(new RegExp(`connection refused on ${fe1.replace(/\./g, '\\.')}:2\\b`))
  })
})
