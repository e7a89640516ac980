// Our known_hosts reader: the sshd(8) format, and agreement with OpenSSH's own tools.
import {execFileSync} from 'node:child_process'
import {createHmac, randomBytes} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import ssh2 from 'ssh2'
import {afterAll, describe, expect, it} from 'vitest'
import {
  appendKnownHost,
  knownKeyTypes,
  loadKnownHosts,
  mergeKnownHosts,
  parseKnownHosts,
  sha256Fingerprint,
  verifyHostKey,
} from '../../../src/ssh/known-hosts.js'

const {utils} = ssh2

function newKey(type: 'ed25519' | 'ecdsa' = 'ed25519'): {type: string; b64: string; blob: Buffer} {
  const pair = type === 'ecdsa' ? utils.generateKeyPairSync('ecdsa', {bits: 256}) : utils.generateKeyPairSync('ed25519')
  const [t, b64] = pair.public.split(' ') as [string, string]
  return {type: t, b64, blob: Buffer.from(b64, 'base64')}
}

function hashed(name: string, salt = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

const A = newKey()
const B = newKey()
const E = newKey('ecdsa')
const dirs: string[] = []
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'murderctl-kh-'))
  dirs.push(d)
  return d
}
afterAll(() => dirs.forEach((d) => rmSync(d, {recursive: true, force: true})))

/** A host as murderctl looks it up: by the address SSH connects to (the inventory name is only for messages). */
const id = (address: string, port = 22, host = 'inventory-name') => ({host, address, port})

describe('parseKnownHosts', () => {
  it('reads markers, pattern lists, hashed names and comments; reports bad lines by number', () => {
    const k = parseKnownHosts(
      [
        '# a comment',
        '',
        `b1,10.0.0.1 ${A.type} ${A.b64} root@b1`,
        `@revoked * ${B.type} ${B.b64}`,
        `@cert-authority *.lab ${B.type} ${B.b64}`,
        `${hashed('b7')} ${A.type} ${A.b64}`,
        `@bogus b1 ${A.type} ${A.b64}`,
        `b2 ${A.type}`,
        `b3 ${A.type} not*base64`,
        `b4 ssh-rsa ${A.b64}`,
        '|1|c2FsdA==|aGFzaA== ssh-ed25519 ' + A.b64,
        `b5 ${A.type} ${Buffer.from('garbage').toString('base64')}`,
      ].join('\r\n'),
    )
    expect(k.entries.map((e) => [e.line, e.marker, e.patterns, e.keyType])).toEqual([
      [3, undefined, ['b1', '10.0.0.1'], 'ssh-ed25519'],
      [4, '@revoked', ['*'], 'ssh-ed25519'],
      [5, '@cert-authority', ['*.lab'], 'ssh-ed25519'],
      [6, undefined, [expect.stringMatching(/^\|1\|/)], 'ssh-ed25519'],
    ])
    expect(k.entries[0]!.key.equals(A.blob)).toBe(true)
    expect(k.invalid.map((i) => i.line)).toEqual([7, 8, 9, 10, 11, 12])
    expect(k.invalid.find((i) => i.line === 10)!.reason).toMatch(/does not match/)
    expect(k.invalid.find((i) => i.line === 11)!.reason).toMatch(/20 bytes/)
  })

  it('treats a missing file as empty', () => {
    expect(loadKnownHosts(join(tmp(), 'nope'))).toMatchObject({entries: [], invalid: []})
  })
})

describe('verifyHostKey', () => {
  it('matches by the address SSH connects to, with comma lists, never by the inventory name', () => {
    const k = parseKnownHosts(`b1,10.0.0.1 ${A.type} ${A.b64}`)
    expect(verifyHostKey(k, id('b1'), A.blob)).toEqual({status: 'match'})
    expect(verifyHostKey(k, id('10.0.0.1'), A.blob)).toEqual({status: 'match'})
    expect(verifyHostKey(k, id('10.0.0.9'), A.blob)).toEqual({status: 'unknown'})
    // Case does not matter for host names (OpenSSH lower-cases them).
    expect(verifyHostKey(k, id('B1'), A.blob)).toEqual({status: 'match'})
    // A host named b1 in the inventory but reached at 10.0.0.9: the b1 line does not vouch for it.
    expect(verifyHostKey(k, {host: 'b1', address: '10.0.0.9', port: 22}, A.blob)).toEqual({status: 'unknown'})
  })

  it('uses [host]:port for ports other than 22 and the bare name only for 22', () => {
    const k = parseKnownHosts([`[b2]:2222 ${A.type} ${A.b64}`, `b3 ${A.type} ${A.b64}`].join('\n'))
    expect(verifyHostKey(k, id('b2', 2222), A.blob)).toEqual({status: 'match'})
    expect(verifyHostKey(k, id('b2', 22), A.blob)).toEqual({status: 'unknown'})
    expect(verifyHostKey(k, id('b3', 2222), A.blob)).toEqual({status: 'unknown'})
    expect(verifyHostKey(k, id('b3', 22), A.blob)).toEqual({status: 'match'})
  })

  it('honours * and ? wildcards and ! negation', () => {
    const k = parseKnownHosts([`*.lab,!bad.lab ${A.type} ${A.b64}`, `fe? ${A.type} ${A.b64}`, `[10.1.*]:2200 ${A.type} ${A.b64}`].join('\n'))
    expect(verifyHostKey(k, id('m.lab'), A.blob)).toEqual({status: 'match'})
    expect(verifyHostKey(k, id('bad.lab'), A.blob)).toEqual({status: 'unknown'})
    expect(verifyHostKey(k, id('fe1'), A.blob)).toEqual({status: 'match'})
    expect(verifyHostKey(k, id('fe10'), A.blob)).toEqual({status: 'unknown'})
    expect(verifyHostKey(k, id('10.1.2.3', 2200), A.blob)).toEqual({status: 'match'})
  })

  it('matches hashed names (HMAC-SHA1 of the name, or of [name]:port)', () => {
    const k = parseKnownHosts([`${hashed('b7')} ${A.type} ${A.b64}`, `${hashed('[10.0.0.8]:2222')} ${A.type} ${A.b64}`].join('\n'))
    expect(verifyHostKey(k, id('b7'), A.blob)).toEqual({status: 'match'})
    expect(verifyHostKey(k, id('b8'), A.blob)).toEqual({status: 'unknown'})
    expect(verifyHostKey(k, id('10.0.0.8', 2222), A.blob)).toEqual({status: 'match'})
    expect(verifyHostKey(k, id('10.0.0.8', 22), A.blob)).toEqual({status: 'unknown'})
    expect(verifyHostKey(k, id('b7'), B.blob)).toEqual({status: 'mismatch', expectedTypes: ['ssh-ed25519']})
  })

  it('reports a changed key as a mismatch naming the types on file, also across key types', () => {
    const k = parseKnownHosts([`b1 ${A.type} ${A.b64}`, `b1 ${E.type} ${E.b64}`].join('\n'))
    expect(verifyHostKey(k, id('b1'), B.blob)).toEqual({status: 'mismatch', expectedTypes: ['ssh-ed25519', 'ecdsa-sha2-nistp256']})
    expect(verifyHostKey(k, id('b1'), E.blob)).toEqual({status: 'match'})
    const onlyEcdsa = parseKnownHosts(`b1 ${E.type} ${E.b64}`)
    expect(verifyHostKey(onlyEcdsa, id('b1'), A.blob)).toEqual({status: 'mismatch', expectedTypes: ['ecdsa-sha2-nistp256']})
    expect(knownKeyTypes(onlyEcdsa, id('b1'))).toEqual(['ecdsa-sha2-nistp256'])
  })

  it('refuses a revoked key even when another line lists it, and ignores @cert-authority lines', () => {
    const k = parseKnownHosts([`b1 ${A.type} ${A.b64}`, `@revoked * ${A.type} ${A.b64}`, `@cert-authority b2 ${B.type} ${B.b64}`].join('\n'))
    expect(verifyHostKey(k, id('b1'), A.blob)).toEqual({status: 'revoked'})
    expect(verifyHostKey(k, id('b2'), B.blob)).toEqual({status: 'unknown'})
  })

  it('a line for the inventory name cannot vouch for a key the address line contradicts', () => {
    const k = parseKnownHosts([`b1 ${A.type} ${A.b64}`, `10.0.0.1 ${E.type} ${E.b64}`].join('\n'))
    const b1 = {host: 'b1', address: '10.0.0.1', port: 22}
    expect(verifyHostKey(k, b1, E.blob)).toEqual({status: 'match'})
    expect(verifyHostKey(k, b1, A.blob)).toEqual({status: 'mismatch', expectedTypes: [E.type]})
  })

  it("reads the user's and the system's files as one", () => {
    const user = parseKnownHosts(`10.0.0.1 ${A.type} ${A.b64}`, '~/.ssh/known_hosts')
    const system = parseKnownHosts(`10.0.0.2 ${B.type} ${B.b64}`, '/etc/ssh/ssh_known_hosts')
    const both = mergeKnownHosts(user, system)
    expect(verifyHostKey(both, id('10.0.0.1'), A.blob)).toEqual({status: 'match'})
    expect(verifyHostKey(both, id('10.0.0.2'), B.blob)).toEqual({status: 'match'})
    expect(verifyHostKey(both, id('10.0.0.2'), A.blob)).toMatchObject({status: 'mismatch'})
  })
})

describe('agreement with OpenSSH tools', () => {
  it('reads a file hashed by ssh-keygen -H', () => {
    const f = join(tmp(), 'known_hosts')
    writeFileSync(f, [`b1.example.org ${A.type} ${A.b64}`, `[10.0.0.5]:2222 ${E.type} ${E.b64}`, ''].join('\n'))
    execFileSync('ssh-keygen', ['-H', '-f', f], {stdio: 'ignore'})
    const text = readFileSync(f, 'utf8')
    expect(text).not.toContain('b1.example.org')
    const k = loadKnownHosts(f)
    expect(k.invalid).toEqual([])
    expect(verifyHostKey(k, id('b1.example.org'), A.blob)).toEqual({status: 'match'})
    expect(verifyHostKey(k, id('10.0.0.5', 2222), E.blob)).toEqual({status: 'match'})
    expect(verifyHostKey(k, id('b1.example.org'), B.blob)).toMatchObject({status: 'mismatch'})
  })

  it('appends lines ssh-keygen -F finds, under the address SSH uses, hashed when asked', () => {
    const d = tmp()
    const f = join(d, 'sub', 'known_hosts')
    appendKnownHost(f, {host: 'b3', address: '10.0.0.3', port: 2200}, A.blob)
    expect(readFileSync(f, 'utf8')).toBe(`[10.0.0.3]:2200 ${A.type} ${A.b64}\n`)
    expect(statSync(f).mode & 0o777).toBe(0o600)
    appendKnownHost(f, {host: 'b4', address: '10.0.0.4', port: 22}, E.blob, {hash: true})
    expect(readFileSync(f, 'utf8').split('\n')[1]).toMatch(/^\|1\|[^ ]+ ecdsa-sha2-nistp256 /)
    expect(readFileSync(f, 'utf8')).not.toContain('10.0.0.4')
    for (const name of ['[10.0.0.3]:2200', '10.0.0.4'])
      expect(execFileSync('ssh-keygen', ['-F', name, '-f', f], {encoding: 'utf8'})).toContain(name === '10.0.0.4' ? E.b64 : A.b64)
    const k = loadKnownHosts(f)
    expect(verifyHostKey(k, {host: 'b3', address: '10.0.0.3', port: 2200}, A.blob)).toEqual({status: 'match'})
    expect(verifyHostKey(k, {host: 'b4', address: '10.0.0.4', port: 22}, E.blob)).toEqual({status: 'match'})
  })

  it('starts a new line when the file did not end with one', () => {
    const f = join(tmp(), 'known_hosts')
    writeFileSync(f, `b1 ${A.type} ${A.b64}`)
    appendKnownHost(f, {host: 'b2', address: 'b2', port: 22}, B.blob)
    expect(readFileSync(f, 'utf8')).toBe(`b1 ${A.type} ${A.b64}\nb2 ${B.type} ${B.b64}\n`)
    expect(loadKnownHosts(f).entries).toHaveLength(2)
  })

  it('prints fingerprints exactly like ssh-keygen -l', () => {
    const f = join(tmp(), 'key.pub')
    for (const key of [A, E]) {
      writeFileSync(f, `${key.type} ${key.b64}\n`)
      const out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', f], {encoding: 'utf8'})
      expect(out.split(' ')[1]).toBe(sha256Fingerprint(key.blob))
    }
  })
})
