// The SSH transport against a real OpenSSH sshd started for this file (root; loopback only).
import {createHmac, randomBytes} from 'node:crypto'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {type ResultPromise, execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {HostKeyError, RemoteTimeoutError, UnreachableError} from '../../../src/errors.js'
import type {Host} from '../../../src/inventory/schema.js'
import {appendKnownHost, parseKnownHosts, sha256Fingerprint, verifyHostKey} from '../../../src/ssh/known-hosts.js'
import {SshPool} from '../../../src/ssh/pool.js'
import {commandLine, shellQuote} from '../../../src/ssh/quote.js'

const ADDRESS = '127.0.8.1'
const PORT = 2222
let dir: string
let sshd: ResultPromise
let hostBlob: Buffer

const host = (over: Partial<Host['ssh']> = {}): Host => ({
  name: 'testhost',
  role: 'backend',
  address: ADDRESS,
  servername: 'testhost',
  ssh: {user: 'root', port: PORT, identity: join(dir, 'id'), sudo: false, connectTimeout: 5, commandTimeout: 30, ...over},
  cyrus: {binDir: '/usr/lib/cyrus/bin', imapdConf: '/etc/imapd.conf', cyrusConf: '/etc/cyrus.conf', pidFile: '/run/cyrus-master.pid', stop: 'true', start: 'true'},
})

async function waitPort() {
  const {connect} = await import('node:net')
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect({host: ADDRESS, port: PORT})
      s.once('connect', () => (s.destroy(), r(true)))
      s.once('error', () => r(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('sshd did not start')
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'murderctl-ssh-'))
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id')])
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'hostkey')])
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'id.pub')))
  const [, b64] = readFileSync(join(dir, 'hostkey.pub'), 'utf8').split(' ')
  hostBlob = Buffer.from(b64, 'base64')
  writeFileSync(join(dir, 'known_hosts'), `[${ADDRESS}]:${PORT} ssh-ed25519 ${b64}\n`)
  writeFileSync(
    join(dir, 'sshd_config'),
    [`ListenAddress ${ADDRESS}:${PORT}`, `HostKey ${join(dir, 'hostkey')}`, `PidFile ${join(dir, 'sshd.pid')}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'PermitRootLogin prohibit-password', 'UsePAM no', 'StrictModes no', 'MaxSessions 10', 'LogLevel ERROR'].join('\n') + '\n',
  )
  mkdirSync('/run/sshd', {recursive: true})
  sshd = execa('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], {reject: false})
  await waitPort()
})

afterAll(async () => {
  sshd?.kill('SIGTERM')
  await sshd
  rmSync(dir, {recursive: true, force: true})
})

describe('shell quoting', () => {
  it('leaves safe words bare and survives a real shell for anything else', async () => {
    expect(shellQuote('user.alice')).toBe('user.alice')
    expect(shellQuote('/usr/lib/cyrus/bin/ctl_mboxlist')).toBe('/usr/lib/cyrus/bin/ctl_mboxlist')
    const nasty = ["it's", '$(rm -rf /)', '`id`', 'a b\tc', '', '"q"', '\\', 'new\nline', 'ünï', ';|&<>*?']
    for (const arg of nasty) {
      const r = await execa('sh', ['-c', `printf '%s' ${shellQuote(arg)}`])
      expect(r.stdout).toBe(arg)
    }
    expect(commandLine(['echo', "a'b"])).toBe(`echo 'a'\\''b'`)
    expect(commandLine({shell: 'a | b'})).toBe('a | b')
  })
})

describe('known_hosts', () => {
  const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), randomBytes(36)])
  const other = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), randomBytes(36)])
  const b64 = blob.toString('base64')
  it('matches plain, [host]:port, wildcard and hashed entries; refuses negated, revoked and changed', () => {
    const salt = randomBytes(20)
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('b7').digest('base64')}`
    const known = parseKnownHosts([`b1,10.0.0.1 ssh-ed25519 ${b64}`, `[b2]:2222 ssh-ed25519 ${b64}`, `*.lab,!bad.lab ssh-ed25519 ${b64}`, `${hashed} ssh-ed25519 ${b64}`, `@revoked b9 ssh-ed25519 ${b64}`, '# comment', ''].join('\n'))
    expect(verifyHostKey(known, {host: 'b1', address: '10.9.9.9', port: 22}, blob)).toEqual({status: 'match'})
    expect(verifyHostKey(known, {host: 'x', address: '10.0.0.1', port: 22}, blob)).toEqual({status: 'match'})
    expect(verifyHostKey(known, {host: 'b2', address: 'x', port: 2222}, blob)).toEqual({status: 'match'})
    expect(verifyHostKey(known, {host: 'b2', address: 'x', port: 22}, blob)).toEqual({status: 'unknown'})
    expect(verifyHostKey(known, {host: 'm.lab', address: 'x', port: 22}, blob)).toEqual({status: 'match'})
    expect(verifyHostKey(known, {host: 'bad.lab', address: 'x', port: 22}, blob)).toEqual({status: 'unknown'})
    expect(verifyHostKey(known, {host: 'b7', address: 'x', port: 22}, blob)).toEqual({status: 'match'})
    expect(verifyHostKey(known, {host: 'b9', address: 'x', port: 22}, blob)).toEqual({status: 'revoked'})
    expect(verifyHostKey(known, {host: 'b1', address: 'x', port: 22}, other)).toMatchObject({status: 'mismatch'})
    expect(sha256Fingerprint(blob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/)
  })
  it('appends an accepted key under the name and the address', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'kh-')), 'known_hosts')
    appendKnownHost(path, {host: 'b3', address: '10.0.0.3', port: 2200}, blob)
    expect(readFileSync(path, 'utf8')).toBe(`[b3]:2200,[10.0.0.3]:2200 ssh-ed25519 ${b64}\n`)
    expect(verifyHostKey(parseKnownHosts(readFileSync(path, 'utf8')), {host: 'b3', address: '?', port: 2200}, blob)).toEqual({status: 'match'})
  })
})

describe('SshPool against a real sshd', () => {
  const pool = () => new SshPool({knownHostsPath: join(dir, 'known_hosts')})

  it('runs commands: exit codes, stderr apart, stdin, quoted arguments', async () => {
    const p = pool()
    try {
      const r = await p.exec(host(), {shell: 'echo out; echo err >&2; exit 3'})
      expect(r).toMatchObject({exitCode: 3, stdout: 'out\n', stderr: 'err\n'})
      expect((await p.exec(host(), ['cat'], {stdin: 'secret on stdin'})).stdout).toBe('secret on stdin')
      const arg = `it's $(id) \`x\` "y"`
      expect((await p.exec(host(), ['printf', '%s', arg])).stdout).toBe(arg)
      await expect(p.execOk(host(), ['false'])).rejects.toThrow(/exit 1/)
    } finally {
      await p.close()
    }
  })

  it('streams 200,000 lines without holding them', async () => {
    const p = pool()
    try {
      let n = 0
      let last = ''
      const r = await p.exec(host(), {shell: 'seq 1 200000'}, {onStdoutLine: (l) => ((n += 1), (last = l))})
      expect([n, last, r.stdout]).toEqual([200000, '200000', ''])
    } finally {
      await p.close()
    }
  })

  it('runs 12 commands at once on one connection (MaxSessions is 10)', async () => {
    const p = pool()
    try {
      const rs = await Promise.all(Array.from({length: 12}, (_, i) => p.exec(host(), {shell: `sleep 0.2; echo ${i}`})))
      expect(rs.map((r) => r.stdout.trim())).toEqual(Array.from({length: 12}, (_, i) => String(i)))
    } finally {
      await p.close()
    }
  })

  it('gives up on a hung command after its timeout, naming the host', async () => {
    const p = pool()
    try {
      const started = Date.now()
      const err = await p.exec(host({commandTimeout: 1}), ['sleep', '30']).catch((e) => e)
      expect(err).toBeInstanceOf(RemoteTimeoutError)
      expect(err.host).toBe('testhost')
      expect(Date.now() - started).toBeLessThan(3000)
    } finally {
      await p.close()
    }
  })

  it('writes a file atomically keeping its mode, and reads it back byte for byte', async () => {
    const p = pool()
    const f = join(dir, 'target.conf')
    writeFileSync(f, 'old\n', {mode: 0o640})
    try {
      const data = Buffer.concat([Buffer.from('new\n'), randomBytes(5000)])
      await p.writeFileAtomic(host(), f, data)
      expect((await p.readFile(host(), f)).equals(data)).toBe(true)
      expect((await execa('stat', ['-c', '%a', f])).stdout).toBe('640')
    } finally {
      await p.close()
    }
  })

  it('prefixes sudo -n when the host says so', async () => {
    const p = pool()
    try {
      const r = await p.exec(host({sudo: true}), ['true'])
      expect(r.command).toBe('sudo -n -- true')
      const s = await p.exec(host({sudo: true}), {shell: 'a && b'})
      expect(s.command).toBe(`sudo -n -- sh -c 'a && b'`)
    } finally {
      await p.close()
    }
  })

  it('refuses an unknown key, a changed key (even with accept-new), and reports refused connections fast', async () => {
    const empty = join(dir, 'empty_known_hosts')
    writeFileSync(empty, '')
    const unknown = await new SshPool({knownHostsPath: empty}).exec(host(), ['true']).catch((e) => e)
    expect(unknown).toBeInstanceOf(HostKeyError)
    expect(unknown.message).toContain(sha256Fingerprint(hostBlob))
    const accepting = new SshPool({knownHostsPath: empty, acceptNewHostKeys: true})
    expect((await accepting.exec(host(), ['true'])).exitCode).toBe(0)
    await accepting.close()
    expect(readFileSync(empty, 'utf8')).toContain(hostBlob.toString('base64'))
    const changed = join(dir, 'changed_known_hosts')
    const fake = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), randomBytes(32)])
    writeFileSync(changed, `[${ADDRESS}]:${PORT} ssh-ed25519 ${fake.toString('base64')}\n`)
    const mitm = await new SshPool({knownHostsPath: changed, acceptNewHostKeys: true}).exec(host(), ['true']).catch((e) => e)
    expect(mitm).toBeInstanceOf(HostKeyError)
    expect(mitm.message).toMatch(/changed.*man-in-the-middle/)
    const started = Date.now()
    const refused = await pool().exec({...host(), address: '127.0.8.2'}, ['true']).catch((e) => e)
    expect(refused).toBeInstanceOf(UnreachableError)
    expect(refused.message).toBe(`connection refused on 127.0.8.2:${PORT}`)
    expect(Date.now() - started).toBeLessThan(2000)
  })
})
