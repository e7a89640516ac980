// imapd.conf: a reader that follows Cyrus' own rules (lib/libconfig.c config_read_file) and an
// editor that changes one key and leaves every other byte alone.
//
// Cyrus rules, as 3.6 applies them:
// - one `key: value` per line; leading whitespace is skipped; a line whose first non-blank
//   character is `#` is a comment (a `#` later in a line is part of the value);
// - a line ending in a backslash continues on the next line (LF endings only);
// - keys are letters, digits, `-` and `_` (plus a leading `@` for `@include`), lower-cased;
// - the value is trimmed; an empty value, a malformed key or a key given twice is fatal for
//   every Cyrus program (`option 'x' was specified twice in config file`, exit 78).
import {z} from 'zod'
import {AbortError, UnexpectedOutputError} from '../errors.js'
import {dominantEol, excerpt, isCSpace, joinLines, splitLines, trimCSpace, type PhysicalLine} from './lines.js'

export const DEFAULT_MARKER = 'murderctl'

export const ImapdConfProblem = z.object({
  /** 1-based number of the (first physical) line. */
  line: z.number().int().positive(),
  kind: z.enum(['invalid-name', 'empty-value', 'duplicate', 'include']),
  /** `include` is informational (murderctl does not follow @include); the rest are fatal to Cyrus. */
  fatal: z.boolean(),
  message: z.string(),
})
export type ImapdConfProblem = z.infer<typeof ImapdConfProblem>

interface LogicalLine {
  /** Index of the first and last physical line it spans. */
  first: number
  last: number
  content: string
  kind: 'blank' | 'comment' | 'option' | 'invalid'
  /** Lower-cased key (options only), as Cyrus stores it. */
  key?: string
  /** The key as written, its leading whitespace and the whitespace after the colon. */
  keyAsWritten?: string
  indent?: string
  separator?: string
  value?: string
}

function logicalLines(physical: readonly PhysicalLine[]): LogicalLine[] {
  const out: LogicalLine[] = []
  let i = 0
  while (i < physical.length) {
    const first = i
    let content = ''
    for (;;) {
      const l = physical[i]!
      if (l.eol === '\n' && l.text.endsWith('\\') && i + 1 < physical.length) {
        content += l.text.slice(0, -1)
        i++
        continue
      }
      content += l.text
      break
    }
    out.push({first, last: i, content, ...classify(content)})
    i++
  }
  return out
}

const KEY_RE = /^@?[A-Za-z0-9_-]*/

function classify(content: string): Omit<LogicalLine, 'first' | 'last' | 'content'> {
  let p = 0
  while (p < content.length && isCSpace(content[p])) p++
  if (p === content.length) return {kind: 'blank'}
  if (content[p] === '#') return {kind: 'comment'}
  const rest = content.slice(p)
  const key = KEY_RE.exec(rest)![0]
  if (rest[key.length] !== ':' || key === '' || key === '@') return {kind: 'invalid'}
  const afterColon = rest.slice(key.length + 1)
  let s = 0
  while (s < afterColon.length && isCSpace(afterColon[s])) s++
  return {
    kind: 'option',
    key: key.toLowerCase(),
    keyAsWritten: key,
    indent: content.slice(0, p),
    separator: afterColon.slice(0, s),
    value: trimCSpace(afterColon),
  }
}

/** Every reason Cyrus would refuse this file, plus a note for each `@include` not followed. */
export function lintImapdConf(text: string): ImapdConfProblem[] {
  const problems: ImapdConfProblem[] = []
  const seen = new Map<string, number>()
  for (const l of logicalLines(splitLines(text))) {
    const line = l.first + 1
    if (l.kind === 'invalid') {
      problems.push({line, kind: 'invalid-name', fatal: true, message: `invalid option name on line ${line}: ${excerpt(l.content)}`})
      continue
    }
    if (l.kind !== 'option') continue
    if (l.value === '') {
      problems.push({line, kind: 'empty-value', fatal: true, message: `empty option value on line ${line} (${l.key})`})
      continue
    }
    if (l.key === '@include') {
      problems.push({line, kind: 'include', fatal: false, message: `line ${line} includes ${l.value}, which is not read here`})
      continue
    }
    const before = seen.get(l.key!)
    if (before !== undefined) {
      problems.push({
        line,
        kind: 'duplicate',
        fatal: true,
        message: `option '${l.key}' was specified twice (lines ${before} and ${line})`,
      })
    } else seen.set(l.key!, line)
  }
  return problems
}

/**
 * Options by lower-cased key. Throws UnexpectedOutputError on anything Cyrus itself would refuse
 * (bad key, empty value, duplicate key), unless `lenient`, which keeps the first value of a
 * duplicated key and skips bad lines. `@include` lines are not in the map.
 */
export function parseImapdConf(text: string, options: {lenient?: boolean} = {}): Map<string, string> {
  if (!options.lenient) {
    const fatal = lintImapdConf(text).find((p) => p.fatal)
    if (fatal) {
      throw new UnexpectedOutputError(`imapd.conf: ${fatal.message}`, {
        hint: 'Cyrus refuses to start with this file (every tool exits 78); fix that line first',
      })
    }
  }
  const map = new Map<string, string>()
  for (const l of logicalLines(splitLines(text))) {
    if (l.kind !== 'option' || l.value === '' || l.key === '@include') continue
    if (!map.has(l.key!)) map.set(l.key!, l.value!)
  }
  return map
}

const EDIT_KEY_RE = /^[A-Za-z0-9_-]+$/

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * Set (value) or comment out (null) one key, in place:
 * - an existing line for the key is rewritten where it stands (indentation, key spelling and
 *   the spacing after the colon kept); further lines for the same key are commented out, so the
 *   result never names a key twice;
 * - with no active line, a line commented out earlier (`#key: ...  # murderctl` first, else the
 *   first plain `#key:` line) is turned back into the option; only then is a line appended;
 * - null comments every active line out as `#key: value  # <marker>`.
 * Every other byte is preserved; nothing changes when the key already has that value.
 */
export function setImapdOption(text: string, key: string, value: string | null, options: {marker?: string} = {}): string {
  const marker = options.marker ?? DEFAULT_MARKER
  if (!EDIT_KEY_RE.test(key)) {
    throw new AbortError(`not an imapd.conf key: ${JSON.stringify(key)}`, {hint: 'keys are letters, digits, "-" and "_"'})
  }
  const k = key.toLowerCase()
  let v: string | null = null
  if (value !== null) {
    v = trimCSpace(value)
    if (v === '' || /[\r\n]/.test(value)) {
      throw new AbortError(`bad value for imapd.conf key ${k}: ${JSON.stringify(value)}`, {
        hint: 'Cyrus refuses empty values and a value must fit on one line; pass null to comment the key out',
      })
    }
  }
  const physical = splitLines(text)
  const logical = logicalLines(physical)
  const active = logical.filter((l) => l.kind === 'option' && l.key === k)
  // Replacements by first physical index: [first, last, new text or null to keep].
  const edits: {first: number; last: number; text: string}[] = []
  const commentOut = (l: LogicalLine): string => `${l.indent}#${l.keyAsWritten}: ${l.value}  # ${marker}`

  if (v === null) {
    for (const l of active) edits.push({first: l.first, last: l.last, text: commentOut(l)})
  } else if (active.length > 0) {
    const [head, ...extra] = active
    if (!(head!.value === v && head!.first === head!.last)) {
      edits.push({first: head!.first, last: head!.last, text: `${head!.indent}${head!.keyAsWritten}:${head!.separator}${v}`})
    }
    for (const l of extra) edits.push({first: l.first, last: l.last, text: commentOut(l)})
  } else {
    const commented = new RegExp(`^(\\s*)#(${escapeRe(k)})\\s*:`, 'i')
    const ours = new RegExp(`\\s#\\s*${escapeRe(marker)}\\s*$`)
    const candidates = logical.filter((l) => l.kind === 'comment' && l.first === l.last && commented.test(l.content))
    const chosen = candidates.find((l) => ours.test(l.content)) ?? candidates[0]
    if (chosen) {
      const m = commented.exec(chosen.content)!
      edits.push({first: chosen.first, last: chosen.last, text: `${m[1]}${m[2]}: ${v}`})
    } else {
      const eol = dominantEol(physical)
      const prefix = text === '' || text.endsWith('\n') ? '' : eol
      return `${text}${prefix}${k}: ${v}${eol}`
    }
  }
  if (edits.length === 0) return text

  const out: PhysicalLine[] = []
  let i = 0
  for (const e of edits.sort((a, b) => a.first - b.first)) {
    while (i < e.first) out.push(physical[i++]!)
    out.push({text: e.text, eol: physical[e.last]!.eol})
    i = e.last + 1
  }
  while (i < physical.length) out.push(physical[i++]!)
  return joinLines(out)
}

/**
 * Remove every active line for `key` (continuation lines included); comments and every other
 * byte stay. For a key murderctl set for a while and must take out again without a trace
 * (a commented-out line would still name the temporary value).
 */
export function removeImapdOption(text: string, key: string): string {
  if (!EDIT_KEY_RE.test(key)) {
    throw new AbortError(`not an imapd.conf key: ${JSON.stringify(key)}`, {hint: 'keys are letters, digits, "-" and "_"'})
  }
  const k = key.toLowerCase()
  const physical = splitLines(text)
  const drop = new Set<number>()
  for (const l of logicalLines(physical)) if (l.kind === 'option' && l.key === k) for (let i = l.first; i <= l.last; i++) drop.add(i)
  if (drop.size === 0) return text
  return joinLines(physical.filter((_, i) => !drop.has(i)))
}

/**
 * `current` without a temporary `key: value` that `setImapdOption(original, key, value)` put in:
 * the original bytes when nothing else changed since, else (an operator edited the file in
 * between) only the key taken back where it stands: set to its original value, or removed when
 * the original had none. Never a key twice.
 */
export function undoImapdOption(current: string, original: string, key: string, value: string): string {
  if (current === setImapdOption(original, key, value)) return original
  const before = parseImapdConf(original, {lenient: true}).get(key.toLowerCase())
  return before === undefined ? removeImapdOption(current, key) : setImapdOption(current, key, before)
}

/**
 * Cyrus' switch parser (config_parse_switch): it looks at the first characters only.
 * true for 1, y…, on…, t…; false for 0, n…, of…, f…; anything else (or unset) gives `fallback`.
 */
export function imapdBool(v: string | undefined, fallback = false): boolean {
  if (v === undefined) return fallback
  const s = trimCSpace(v)
  if (s.startsWith('0') || s.startsWith('n') || s.startsWith('of') || s.startsWith('f')) return false
  if (s.startsWith('1') || s.startsWith('y') || s.startsWith('on') || s.startsWith('t')) return true
  return fallback
}

/** `mupdate_server` is `host[:port][/tls][/noauth]` (backend_connect()). */
export const MupdateServerSpec = z.object({
  host: z.string(),
  port: z.number().int().positive().optional(),
  tls: z.boolean(),
  noauth: z.boolean(),
})
export type MupdateServerSpec = z.infer<typeof MupdateServerSpec>

export function parseMupdateServer(v: string): MupdateServerSpec {
  const [hostPort = '', ...flags] = trimCSpace(v).split('/')
  let host = hostPort
  let port: number | undefined
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(hostPort)
  if (bracketed) {
    host = bracketed[1]!
    if (bracketed[2]) port = Number(bracketed[2])
  } else {
    const m = /^([^:]+):(\d+)$/.exec(hostPort)
    if (m) {
      host = m[1]!
      port = Number(m[2])
    }
  }
  return {host, port, tls: flags.includes('tls'), noauth: flags.includes('noauth')}
}

export const MurderConfigRole = z.enum(['standalone', 'frontend', 'backend', 'unified', 'replicated', 'unknown'])
export type MurderConfigRole = z.infer<typeof MurderConfigRole>

export const MurderRoleInfo = z.object({
  /**
   * What imapd.conf alone says. `standalone`: no mupdate_server, so not a frontend or backend
   * (a mupdate master, a replica, or a plain server: cyrus.conf tells these apart).
   * `frontend`: standard config without proxyservers (lmtpd.c/mboxlist.c's test).
   * `backend`: standard config with proxyservers. `unknown`: mupdate_config has a value Cyrus
   * would refuse.
   */
  role: MurderConfigRole,
  mupdateServer: z.string().optional(),
  mupdateConfig: z.string(),
  proxyservers: z.array(z.string()),
})
export type MurderRoleInfo = z.infer<typeof MurderRoleInfo>

export function murderRole(conf: ReadonlyMap<string, string>): MurderRoleInfo {
  const mupdateServer = conf.get('mupdate_server')
  const mupdateConfig = conf.get('mupdate_config') ?? 'standard'
  const proxyservers = (conf.get('proxyservers') ?? '').split(/[\s,]+/).filter(Boolean)
  let role: MurderConfigRole
  if (!mupdateServer) role = 'standalone'
  else if (mupdateConfig === 'unified') role = 'unified'
  else if (mupdateConfig === 'replicated') role = 'replicated'
  else if (mupdateConfig !== 'standard') role = 'unknown'
  else role = proxyservers.length > 0 ? 'backend' : 'frontend'
  return {role, ...(mupdateServer ? {mupdateServer} : {}), mupdateConfig, proxyservers}
}

/** The MUPDATE port when /etc/services says nothing else (Cyrus connects to service "mupdate"). */
export const DEFAULT_MUPDATE_PORT = 3905

/**
 * The port a slave or a pushing backend reaches the master on: the one in mupdate_server, else
 * the "mupdate" service's. (`mupdate_port` is documented but unused in 3.6.)
 */
export function mupdateMasterPort(imapd: ReadonlyMap<string, string>): number {
  const server = imapd.get('mupdate_server')
  return (server ? parseMupdateServer(server).port : undefined) ?? DEFAULT_MUPDATE_PORT
}
