// A strict known_hosts reader of our own (ssh2 accepts any key unless told otherwise):
// plain and hashed host patterns, [host]:port, wildcards, negation, @revoked.
import {createHash, createHmac} from 'node:crypto'
import {appendFileSync, existsSync, mkdirSync, readFileSync} from 'node:fs'
import {dirname} from 'node:path'

export interface KnownHostLine {
  marker?: '@revoked' | '@cert-authority'
  patterns: string[]
  keyType: string
  key: Buffer
  line: number
}

export interface HostId {
  host: string
  address: string
  port: number
}

export type Verdict = {status: 'match'} | {status: 'unknown'} | {status: 'mismatch'; expectedTypes: string[]} | {status: 'revoked'}

export function parseKnownHosts(text: string): KnownHostLine[] {
  const out: KnownHostLine[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (!line || line.startsWith('#')) return
    const f = line.split(/\s+/)
    let marker: KnownHostLine['marker']
    if (f[0] === '@revoked' || f[0] === '@cert-authority') marker = f.shift() as KnownHostLine['marker']
    if (f.length < 3) return
    out.push({marker, patterns: f[0].split(','), keyType: f[1], key: Buffer.from(f[2], 'base64'), line: i + 1})
  })
  return out
}

export function loadKnownHosts(path: string): KnownHostLine[] {
  return existsSync(path) ? parseKnownHosts(readFileSync(path, 'utf8')) : []
}

/** The names OpenSSH would look a host up by: `name` on port 22, `[name]:port` otherwise. */
function lookupNames(id: HostId): string[] {
  const names = [...new Set([id.host, id.address])]
  return id.port === 22 ? names : names.map((n) => `[${n}]:${id.port}`)
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i')
  return re.test(name)
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|')
    if (!salt || !hash) return false
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash
  }
  return globMatch(pattern, name)
}

/** A line applies when some pattern matches one of the names and no negated pattern does. */
function lineApplies(l: KnownHostLine, names: string[]): boolean {
  let hit = false
  for (const p of l.patterns) {
    const neg = p.startsWith('!')
    const pat = neg ? p.slice(1) : p
    if (names.some((n) => patternMatches(pat, n))) {
      if (neg) return false
      hit = true
    }
  }
  return hit
}

/** The key type inside an SSH public-key blob (its first string). */
export function keyTypeOf(blob: Buffer): string {
  const len = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + len).toString('latin1')
}

export function verifyHostKey(known: KnownHostLine[], id: HostId, blob: Buffer): Verdict {
  const names = lookupNames(id)
  const applicable = known.filter((l) => l.marker !== '@cert-authority' && lineApplies(l, names))
  if (applicable.some((l) => l.marker === '@revoked' && l.key.equals(blob))) return {status: 'revoked'}
  const keys = applicable.filter((l) => !l.marker)
  if (keys.some((l) => l.key.equals(blob))) return {status: 'match'}
  // A key of the same type on file that differs: the host key changed. Another type only: unknown.
  const type = keyTypeOf(blob)
  const sameType = keys.filter((l) => l.keyType === type)
  if (sameType.length) return {status: 'mismatch', expectedTypes: [...new Set(keys.map((l) => l.keyType))]}
  return keys.length ? {status: 'mismatch', expectedTypes: [...new Set(keys.map((l) => l.keyType))]} : {status: 'unknown'}
}

export function sha256Fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`
}

/** Record a newly accepted key, under the inventory name and the address. */
export function appendKnownHost(path: string, id: HostId, blob: Buffer): void {
  mkdirSync(dirname(path), {recursive: true})
  const names = lookupNames(id).join(',')
  appendFileSync(path, `${names} ${keyTypeOf(blob)} ${blob.toString('base64')}\n`, {mode: 0o600})
}
