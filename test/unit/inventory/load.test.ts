import {describe, expect, it} from 'vitest'
import {InventoryError, UsageError} from '../../../src/errors.js'
import {parseInventory, withSshConfigFile} from '../../../src/inventory/load.js'

const good = `
name: prod
mode: unified
knownHosts: keys/known_hosts
defaults:
  ssh: {user: ops, identity: keys/id_ed25519, sudo: true}
hosts:
  - {name: mupdate, role: mupdate-master, address: 10.0.0.1}
  - {name: b1, role: backend, address: 10.0.0.2, cyrus: {pidFile: /var/run/cyrus-master.pid}}
  - {name: b1r, role: replica, address: 10.0.0.3, replicaOf: b1, servername: b1, ssh: {port: 2222}}
`

describe('inventory', () => {
  it('resolves defaults, per-host overrides and relative paths', () => {
    const inv = parseInventory(good, '/etc/murderctl/murder.yaml')
    expect(inv.mode).toBe('unified')
    expect(inv.knownHosts).toBe('/etc/murderctl/keys/known_hosts')
    const [m, b1, r] = inv.hosts
    expect(m.ssh).toMatchObject({user: 'ops', sudo: true, port: 22, identity: '/etc/murderctl/keys/id_ed25519'})
    expect(m.cyrus).toMatchObject({binDir: '/usr/lib/cyrus/bin', imapdConf: '/etc/imapd.conf', stop: 'systemctl stop cyrus-imapd'})
    expect(b1.cyrus.pidFile).toBe('/var/run/cyrus-master.pid')
    expect(b1.cyrus.binDir).toBe('/usr/lib/cyrus/bin')
    expect(r).toMatchObject({servername: 'b1', replicaOf: 'b1'})
    expect(r.ssh.port).toBe(2222)
    expect(m.servername).toBe('mupdate')
    expect(inv.thresholds.masterDropCritPercent).toBe(20)
  })

  it('a per-host override keeps the inventory defaults it does not name', () => {
    const text = good.replace('defaults:\n', 'defaults:\n  cyrus: {start: /opt/start, stop: /opt/stop}\n')
    const inv = parseInventory(text, '/x.yaml')
    const b1 = inv.hosts[1]
    expect(b1.cyrus).toMatchObject({pidFile: '/var/run/cyrus-master.pid', start: '/opt/start', stop: '/opt/stop'})
    expect(inv.hosts[2].ssh).toMatchObject({port: 2222, user: 'ops', sudo: true})
  })

  it("a cyrus.preset gives that distribution's package layout; the inventory's own cyrus settings win over it", () => {
    const text = good
      .replace('defaults:\n', 'defaults:\n  cyrus: {preset: rhel}\n')
      .replace('cyrus: {pidFile: /var/run/cyrus-master.pid}', 'cyrus: {preset: debian}')
      .replace('ssh: {port: 2222}', 'ssh: {port: 2222}, cyrus: {preset: fedora, binDir: /opt/cyrus/sbin}')
    const [m, b1, r] = parseInventory(text, '/x.yaml').hosts
    expect(m.cyrus).toEqual({
      preset: 'rhel',
      binDir: '/usr/sbin',
      imapdConf: '/etc/imapd.conf',
      cyrusConf: '/etc/cyrus.conf',
      pidFile: '/run/cyrus-master.pid',
      stop: 'systemctl stop cyrus-imapd',
      start: 'systemctl start cyrus-imapd',
      user: 'cyrus',
      group: 'mail',
      syslogFile: '/var/log/maillog',
    })
    expect(b1.cyrus).toMatchObject({preset: 'debian', binDir: '/usr/lib/cyrus/bin', syslogFile: '/var/log/syslog'})
    expect(r.cyrus).toMatchObject({preset: 'fedora', binDir: '/opt/cyrus/sbin', syslogFile: '/var/log/maillog'})
    // Without a preset: Debian's, as before presets existed.
    expect(parseInventory(good, '/x.yaml').hosts[0].cyrus).toMatchObject({binDir: '/usr/lib/cyrus/bin', pidFile: '/run/cyrus-master.pid'})
    expect(() => parseInventory(good.replace('defaults:\n', 'defaults:\n  cyrus: {preset: suse}\n'), '/x.yaml')).toThrow(/defaults\.cyrus\.preset/)
  })

  it('the ssh settings left to built-in defaults are marked, so the SSH client config may set them', () => {
    const [m, , r] = parseInventory(
      good.replace('defaults:\n', 'defaults:\n  ssh: {configFile: ssh/config}\n').replace(/\n {2}ssh: \{user: ops.*\n/, '\n'),
      '/etc/m/x.yaml',
    ).hosts
    expect(m.sshDefaulted).toEqual(['user', 'port'])
    expect(r.sshDefaulted).toEqual(['user'])
    expect(m.ssh.configFile).toBe('/etc/m/ssh/config')
  })

  it('--ssh-config points every host at one client config (as ssh -F); a missing file is a usage error', () => {
    const inv = parseInventory(good, '/x.yaml')
    expect(withSshConfigFile(inv, '/etc/hostname').hosts.map((h) => h.ssh.configFile)).toEqual(['/etc/hostname', '/etc/hostname', '/etc/hostname'])
    expect(withSshConfigFile(inv, 'none').hosts[0].ssh.configFile).toBe('none')
    expect(() => withSshConfigFile(inv, '/no/such/ssh_config')).toThrow(UsageError)
  })

  const bad: [string, string, RegExp][] = [
    ['not YAML', 'name: [x', /not valid YAML/],
    ['unknown key', good.replace('mode: unified', 'mode: unified\nmod: x'), /\(top level\): Unrecognized key: "mod"/],
    ['bad mode', good.replace('mode: unified', 'mode: discrete'), /^\/x\.yaml: line 3: mode: /],
    ['bad role', good.replace('role: backend', 'role: bakend'), /hosts\[1\]\.role/],
    ['two masters', good.replace('role: backend', 'role: mupdate-master'), /exactly one host must have role mupdate-master \(found 2\)/],
    ['replica of nothing', good.replace('replicaOf: b1', 'replicaOf: b9'), /hosts\[2\]\.replicaOf: "b9" is not a backend/],
    ['duplicate names', good.replace('name: b1r', 'name: b1'), /duplicate host name "b1"/],
    ['port out of range', good.replace('port: 2222', 'port: 99999'), /hosts\[2\]\.ssh\.port/],
    ['bad host name', good.replace('name: b1r', 'name: "b1 r"'), /hosts\[2\]\.name/],
  ]
  for (const [what, text, re] of bad) {
    it(`refuses ${what} with the file, the field and the reason`, () => {
      let err: unknown
      try {
        parseInventory(text, '/x.yaml')
      } catch (error) {
        err = error
      }
      expect(err).toBeInstanceOf(InventoryError)
      const e = err as InventoryError
      expect(e.message).toMatch(/^\/x\.yaml/)
      expect(e.message).toMatch(re)
      expect(e.message).not.toContain('\n')
      expect(e.exitCode).toBe(3)
    })
  }
})
