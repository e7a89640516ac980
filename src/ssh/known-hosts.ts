// A strict known_hosts reader of our own (ssh2 accepts any host key unless told otherwise).
// Follows sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT": comma-separated patterns with `*`/`?`
// wildcards and `!` negation, `[host]:port` for ports other than 22, hashed names
// (`|1|base64(salt)|base64(HMAC-SHA1(salt, name))`), the `@revoked` marker (the key is refused)
// and `@cert-authority` (skipped: ssh2 cannot check host certificates). Keys are compared by
// type and public-key blob, never by a fingerprint string.
import {createHash, createHmac, randomBytes} from 'node:crypto'
import {appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync} from 'node:fs'
import {dirname} from 'node:path'
import ssh2 from 'ssh2'

// Named ESM imports of ssh2 fail under plain Node (CJS export detection): use the default.
const {utils} = ssh2

export interface KnownHostEntry {
  marker?: '@revoked' | '@cert-authority'
  /** Host patterns as written; a hashed entry is one pattern `|1|salt|hash`. */
  patterns: string[]
  keyType: string
  /** The public-key blob (normalised through ssh2 when it can parse the key). */
  key: Buffer
  /** 1-based line number, for messages. */
  line: number
}

export interface KnownHosts {
  /** The file it came from, when it came from one. */
  path?: string
  entries: KnownHostEntry[]
  /** Lines that are not valid known_hosts lines; they never match anything. */
  invalid: {line: number; reason: string}[]
}

/** A host to look up: its inventory name (for messages) and the address SSH connects to, on its port. */
export interface HostId {
  host: string
  address: string
  port: number
}

export type Verdict = {status: 'match'} | {status: 'unknown'} | {status: 'mismatch'; expectedTypes: string[]} | {status: 'revoked'}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

/** The key type written inside an SSH public-key blob (its first string), or undefined. */
export function keyTypeOf(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined
  const len = blob.readUInt32BE(0)
  if (len === 0 || len > 64 || 4 + len > blob.length) return undefined
  const type = blob.subarray(4, 4 + len).toString('latin1')
  return /^[\x21-\x7e]+$/.test(type) ? type : undefined
}

/** Type and canonical blob of a public key, through ssh2's parser when it knows the type. */
function normaliseKey(blob: Buffer): {type: string; key: Buffer} | undefined {
  const parsed = utils.parseKey(blob)
  if (!(parsed instanceof Error)) return {type: parsed.type, key: parsed.getPublicSSH()}
  const type = keyTypeOf(blob)
  // A type ssh2 does not know (e.g. sk-* keys): keep the raw blob, it can still be compared.
  return type ? {type, key: blob} : undefined
}

function parseLine(raw: string, lineNo: number): KnownHostEntry | {reason: string} | undefined {
  const line = raw.trim()
  if (!line || line.startsWith('#')) return undefined
  const f = line.split(/\s+/)
  let marker: KnownHostEntry['marker']
  if (f[0]!.startsWith('@')) {
    if (f[0] !== '@revoked' && f[0] !== '@cert-authority') return {reason: `unknown marker ${f[0]}`}
    marker = f.shift() as KnownHostEntry['marker']
  }
  if (f.length < 3) return {reason: 'expected: [marker] hostpatterns keytype base64-key [comment]'}
  const [hostField, keyType, b64] = f as [string, string, string]
  let patterns: string[]
  if (hostField.startsWith('|')) {
    const parts = hostField.split('|')
    if (parts.length !== 4 || parts[1] !== '1' || !BASE64.test(parts[2]!) || !BASE64.test(parts[3]!))
      return {reason: 'malformed hashed host name (expected |1|salt|hash)'}
    if (Buffer.from(parts[2]!, 'base64').length !== 20 || Buffer.from(parts[3]!, 'base64').length !== 20)
      return {reason: 'hashed host name: salt and hash must be 20 bytes (HMAC-SHA1)'}
    patterns = [hostField]
  } else {
    patterns = hostField.split(',')
    if (patterns.some((p) => p === '' || p === '!')) return {reason: 'empty host pattern'}
  }
  if (!BASE64.test(b64)) return {reason: 'key is not base64'}
  const norm = normaliseKey(Buffer.from(b64, 'base64'))
  if (!norm) return {reason: 'not an SSH public key'}
  if (norm.type !== keyType) return {reason: `key type ${keyType} does not match the key (${norm.type})`}
  return {marker, patterns, keyType, key: norm.key, line: lineNo}
}

export function parseKnownHosts(text: string, path?: string): KnownHosts {
  const out: KnownHosts = {path, entries: [], invalid: []}
  text.split(/\r?\n/).forEach((raw, i) => {
    const r = parseLine(raw, i + 1)
    if (!r) return
    if ('reason' in r) out.invalid.push({line: i + 1, reason: r.reason})
    else out.entries.push(r)
  })
  return out
}

/** A missing file is an empty one (every host unknown). */
export function loadKnownHosts(path: string): KnownHosts {
  return parseKnownHosts(existsSync(path) ? readFileSync(path, 'utf8') : '', path)
}

/**
 * The name OpenSSH looks a host up by: the host name it connects to (the inventory's address),
 * as `name` on port 22 and `[name]:port` otherwise, lower case. Never the inventory's own name:
 * a line for that name must not vouch for a key the address's line contradicts.
 */
export function lookupNames(id: HostId): string[] {
  const name = id.address.toLowerCase()
  return [id.port === 22 ? name : `[${name}]:${id.port}`]
}

/** Both files OpenSSH reads, the user's and the system's (/etc/ssh/ssh_known_hosts), as one. */
export function mergeKnownHosts(...files: KnownHosts[]): KnownHosts {
  return {
    path: files
      .map((f) => f.path)
      .filter(Boolean)
      .join(' + '),
    entries: files.flatMap((f) => f.entries),
    invalid: files.flatMap((f) => f.invalid),
  }
}

/** `|1|salt|hmac`: a name as `HashKnownHosts yes` writes it. */
export function hashHostName(name: string, salt: Buffer = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

const globCache = new Map<string, RegExp>()
function globMatch(pattern: string, name: string): boolean {
  let re = globCache.get(pattern)
  if (!re) {
    const body = pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')
    globCache.set(pattern, (re = new RegExp(`^${body}$`, 'is')))
  }
  return re.test(name)
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|') as [string, string, string, string]
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash
  }
  return globMatch(pattern, name)
}

/** OpenSSH's match_hostname for one name: a negated pattern that matches vetoes the line. */
function matchesName(patterns: string[], name: string): boolean {
  let hit = false
  for (const p of patterns) {
    const negated = p.startsWith('!')
    if (patternMatches(negated ? p.slice(1) : p, name)) {
      if (negated) return false
      hit = true
    }
  }
  return hit
}

function applicable(known: KnownHosts, id: HostId): KnownHostEntry[] {
  const names = lookupNames(id)
  return known.entries.filter((e) => e.marker !== '@cert-authority' && names.some((n) => matchesName(e.patterns, n)))
}

/**
 * Check the key a host presented. A line for the inventory name or for the address counts.
 * revoked: an @revoked line for the host has this key. match: a line for the host has it.
 * mismatch: the host is known, but with other keys (changed key: refuse). unknown: no line.
 */
export function verifyHostKey(known: KnownHosts, id: HostId, keyBlob: Buffer): Verdict {
  const offered = normaliseKey(keyBlob)
  if (!offered) return {status: 'mismatch', expectedTypes: knownKeyTypes(known, id)}
  const same = (e: KnownHostEntry) => e.keyType === offered.type && e.key.equals(offered.key)
  const lines = applicable(known, id)
  if (lines.some((e) => e.marker === '@revoked' && same(e))) return {status: 'revoked'}
  const keys = lines.filter((e) => !e.marker)
  if (keys.some(same)) return {status: 'match'}
  if (keys.length) return {status: 'mismatch', expectedTypes: [...new Set(keys.map((e) => e.keyType))]}
  return {status: 'unknown'}
}

/** Key types on file for a host (to ask the server for one of those first, as OpenSSH does). */
export function knownKeyTypes(known: KnownHosts, id: HostId): string[] {
  return [
    ...new Set(
      applicable(known, id)
        .filter((e) => !e.marker)
        .map((e) => e.keyType),
    ),
  ]
}

/** OpenSSH's fingerprint format: `SHA256:` + unpadded base64 of the blob's SHA-256. */
export function sha256Fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`
}

/** Record a newly accepted key under the name SSH looks it up by, hashed when the user's SSH config asks. */
export function appendKnownHost(path: string, id: HostId, keyBlob: Buffer, opts: {hash?: boolean} = {}): void {
  const norm = normaliseKey(keyBlob)
  if (!norm) throw new Error('not an SSH public key')
  mkdirSync(dirname(path), {recursive: true})
  const names = lookupNames(id).map((n) => (opts.hash ? hashHostName(n) : n))
  const line = `${names.join(',')} ${norm.type} ${norm.key.toString('base64')}\n`
  appendFileSync(path, endsWithoutNewline(path) ? `\n${line}` : line, {mode: 0o600})
}

function endsWithoutNewline(path: string): boolean {
  if (!existsSync(path)) return false
  const size = statSync(path).size
  if (size === 0) return false
  const fd = openSync(path, 'r')
  try {
    const b = Buffer.alloc(1)
    readSync(fd, b, 0, 1, size - 1)
    return b[0] !== 0x0a
  } finally {
    closeSync(fd)
  }
}
