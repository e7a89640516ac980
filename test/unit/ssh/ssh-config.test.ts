// The OpenSSH client config as ssh reads it: first value wins, Host patterns, inventory first.
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {InventoryError} from '../../../src/errors.js'
import type {Host} from '../../../src/inventory/schema.js'
import {applySshConfig, expandIdentityFile, parseSshConfig, readSshConfig, sshConfigValues} from '../../../src/ssh/ssh-config.js'

const SAMPLE = `# a typical operator's ~/.ssh/config
Host b1 b1.example
  HostName 10.0.0.13
  User mailops
  IdentityFile ~/.ssh/murder_ed25519
  IdentityFile %d/.ssh/id_%r@%h

Host *.internal !bastion.internal
  ProxyJump ops@bastion.internal:2222
  Port 2200

Host fe?
  HostName %h.example.net

Host *
  User nobody
  Port 22
  HashKnownHosts yes
  ProxyJump none
`

const host = (address: string, ssh: Partial<Host['ssh']> = {}, sshDefaulted: Host['sshDefaulted'] = ['user', 'port']): Host => ({
  name: 'h',
  role: 'backend',
  address,
  servername: 'h',
  ssh: {user: 'root', port: 22, sudo: false, connectTimeout: 10, commandTimeout: 300, ...ssh},
  cyrus: {binDir: '', imapdConf: '', cyrusConf: '', pidFile: '', stop: '', start: '', user: 'cyrus', group: 'mail'},
  sshDefaulted,
})

describe('the OpenSSH client config', () => {
  const cfg = parseSshConfig(SAMPLE)

  it('gives the first value obtained for a host, through Host patterns; IdentityFile accumulates', () => {
    expect(sshConfigValues(cfg, 'b1')).toEqual({
      hostName: '10.0.0.13',
      user: 'mailops',
      port: 22,
      identityFiles: ['~/.ssh/murder_ed25519', '%d/.ssh/id_%r@%h'],
      proxyJump: 'none',
      hashKnownHosts: true,
    })
    // Negated patterns exclude; wildcards match; the first section's Port wins over Host *'s.
    expect(sshConfigValues(cfg, 'db.internal')).toMatchObject({port: 2200, proxyJump: 'ops@bastion.internal:2222', user: 'nobody'})
    expect(sshConfigValues(cfg, 'bastion.internal')).toMatchObject({port: 22, proxyJump: 'none'})
    expect(sshConfigValues(cfg, 'fe1').hostName).toBe('fe1.example.net')
    expect(sshConfigValues(cfg, 'B1').hostName).toBe('10.0.0.13') // ssh lower-cases the name it is given
    expect(sshConfigValues(parseSshConfig(''), 'b1')).toEqual({identityFiles: []})
  })

  it('keeps the user given on the command line over User, and Match user sees it', () => {
    const m = parseSshConfig('Match user deploy\n  Port 2022\nHost *\n  User nobody\n')
    expect(sshConfigValues(m, 'x', {user: 'deploy'})).toMatchObject({user: 'deploy', port: 2022})
    expect(sshConfigValues(m, 'x')).toEqual({user: 'nobody', identityFiles: []})
  })

  it('never runs Match exec: such a section does not apply', () => {
    const m = parseSshConfig('Match exec "touch /tmp/murderctl-match-exec-ran"\n  Port 9\n')
    expect(sshConfigValues(m, 'x').port).toBeUndefined()
  })

  it('refuses a bad Port', () => {
    expect(() => sshConfigValues(parseSshConfig('Host *\n  Port ssh\n'), 'x')).toThrow(InventoryError)
  })

  it('expands ~ and the % tokens of IdentityFile', () => {
    const t = {home: '/home/op', host: '10.0.0.13', port: 22, user: 'mailops', localUser: 'op'}
    expect(expandIdentityFile('~/.ssh/k', t)).toBe('/home/op/.ssh/k')
    expect(expandIdentityFile('%d/.ssh/id_%r@%h:%p-%u%%', t)).toBe('/home/op/.ssh/id_mailops@10.0.0.13:22-op%')
  })

  describe('applied to an inventory host', () => {
    const env = {home: '/home/op', localUser: 'op'}

    it('fills in what the inventory leaves to the defaults: HostName becomes the address SSH connects to', () => {
      const r = applySshConfig(host('b1'), cfg, env)
      expect(r.address).toBe('10.0.0.13')
      expect(r.ssh).toMatchObject({user: 'mailops', port: 22, proxyJump: undefined})
      expect(r.identityFiles).toEqual(['/home/op/.ssh/murder_ed25519', '/home/op/.ssh/id_mailops@10.0.0.13'])
      expect(r.hashKnownHosts).toBe(true)
      expect(applySshConfig(host('db.internal'), cfg, env).ssh).toMatchObject({port: 2200, proxyJump: 'ops@bastion.internal:2222'})
    })

    it("the inventory's own settings win, as ssh's command line wins over its config", () => {
      const r = applySshConfig(host('b1', {user: 'root', port: 2022, identity: '/keys/k', proxyJump: 'jump:22'}, []), cfg, env)
      expect(r.address).toBe('10.0.0.13') // the inventory has no HostName of its own
      expect(r.ssh).toMatchObject({user: 'root', port: 2022, identity: '/keys/k', proxyJump: 'jump:22'})
      expect(r.identityFiles).toBeUndefined()
      // A host built in code (no sshDefaulted) is taken as the inventory giving everything.
      expect(applySshConfig({...host('b1'), sshDefaulted: undefined}, cfg, env).ssh.user).toBe('root')
    })

    it('leaves a host the config does not name as it is, and refuses a ProxyJump of several hops', () => {
      expect(applySshConfig(host('10.1.1.1'), parseSshConfig('Host b1\n  Port 1\n'), env)).toMatchObject({address: '10.1.1.1', ssh: {user: 'root', port: 22}})
      expect(() => applySshConfig(host('x'), parseSshConfig('Host x\n  ProxyJump a,b\n'), env)).toThrow(/several hops/)
    })
  })

  it('reads files in order (the first value wins across them), expands Include, skips a missing default file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sshcfg-'))
    mkdirSync(join(dir, '.ssh', 'config.d'), {recursive: true})
    writeFileSync(join(dir, '.ssh', 'config.d', '10-murder'), 'Host b1\n  Port 2201\n')
    writeFileSync(join(dir, '.ssh', 'config.d', '20-other'), 'Host b1\n  Port 2202\n  User fromd\n')
    writeFileSync(join(dir, '.ssh', 'config'), 'Include config.d/*\nHost *\n  User fromuser\n')
    writeFileSync(join(dir, 'system'), 'Host *\n  User fromsystem\n  HostName sys\n')
    const c = readSshConfig([join(dir, '.ssh', 'config'), join(dir, 'missing'), join(dir, 'system')], {home: dir})
    expect(sshConfigValues(c, 'b1')).toMatchObject({port: 2201, user: 'fromd', hostName: 'sys'})
    expect(() => readSshConfig([join(dir, 'missing')], {required: true, home: dir})).toThrow(/cannot read the SSH client config .*missing: ENOENT/)
  })
})
