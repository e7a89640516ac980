// `ctl_mboxlist -d` output, read line by line so a dump of a million mailboxes is never held as
// one string or parsed by one JSON.parse.
//
// 3.6+ prints JSON: `{`, then one `"<name>": {...}` per line, separated by `,\n`, then `}`
// (an empty mailbox list is `{`, an empty line, `}`). Every number is a JSON string; keys
// whose value is NULL (server, uniqueid) are left out.
// 3.4 and older print `name<TAB>mbtype<SP>[server!]partition<SP>acl`, mbtype a number and the
// ACL tab-separated `id<TAB>rights` pairs.
// The format is chosen from the first non-empty line.
import {z} from 'zod'
import {UnexpectedOutputError} from '../errors.js'
import {excerpt} from './lines.js'

const numberish = z.union([z.string(), z.number().transform(String)])

const MailboxEntryObject = z.looseObject({
  /** Internal mailbox name (`user.bob.Sent`). */
  name: z.string().min(1),
  /** 3.6 letters: type e/n/b/c/a/j/s/p/f, flags d(eleted) m(oving) r(emote) z(reserve) i(ntermediate) l(egacy dirs). */
  mbtype: z.string().regex(/^[a-z]*$/, 'mbtype letters'),
  /** Absent only on a 3.6 deleted entry (`"mbtype": "ed"`, the name's tombstone after a DELETE): '' then. */
  partition: z.string(),
  /** Set on remote entries (frontends, the mupdate master, unified backends' pointers). */
  server: z.string().optional(),
  acl: z.record(z.string(), z.string()).default({}),
  /** Local entries have one; entries made through MUPDATE (frontends, master) do not. */
  uniqueid: z.string().optional(),
  uidvalidity: numberish.optional(),
  mtime: numberish.optional(),
})
const deletedWithoutPartition = (v: unknown): v is Record<string, unknown> =>
  !!v && typeof v === 'object' && !('partition' in v) && typeof (v as {mbtype?: unknown}).mbtype === 'string' && (v as {mbtype: string}).mbtype.includes('d')
export const MailboxEntry = z.preprocess((v) => (deletedWithoutPartition(v) ? {...v, partition: ''} : v), MailboxEntryObject)
export type MailboxEntry = z.infer<typeof MailboxEntryObject>

export type DumpFormat = 'json' | 'legacy'

export function isRemote(e: Pick<MailboxEntry, 'mbtype' | 'server'>): boolean {
  return e.mbtype.includes('r') || (e.server !== undefined && e.server !== '')
}
/** A mailbox this host really holds: not a pointer elsewhere, not a delayed-delete tombstone. */
export function isLiveLocal(e: Pick<MailboxEntry, 'mbtype' | 'server'>): boolean {
  return !isRemote(e) && !isDeleted(e)
}

export function isDeleted(e: Pick<MailboxEntry, 'mbtype'>): boolean {
  return e.mbtype.includes('d')
}
export function isIntermediate(e: Pick<MailboxEntry, 'mbtype'>): boolean {
  return e.mbtype.includes('i')
}
/** The MUPDATE location, `server!partition`; local entries are on `servername`. */
export function location(e: Pick<MailboxEntry, 'server' | 'partition'>, servername: string): string {
  return `${e.server || servername}!${e.partition}`
}

// ---- legacy (≤3.4) -------------------------------------------------------------------------

// 3.4 include/mboxlist.h flag bits.
const LEGACY_TYPES: [number, string][] = [
  [1 << 2, 'n'], // NETNEWS
  [1 << 5, 'c'], // CALENDAR
  [1 << 6, 'a'], // ADDRESSBOOK
  [1 << 7, 'b'], // COLLECTION
  [1 << 9, 's'], // SUBMISSION
  [1 << 10, 'p'], // PUSHSUBSCRIPTION
]
const LEGACY_FLAGS: [number, string][] = [
  [1 << 4, 'd'], // DELETED
  [1 << 3, 'm'], // MOVING
  [1 << 0, 'r'], // REMOTE
  [1 << 1, 'z'], // RESERVE
  [1 << 8, 'i'], // INTERMEDIATE
]

/** A ≤3.4 numeric mbtype as 3.6 letters (type letter first, then flags, like 3.6 prints them). */
export function legacyMbtypeToLetters(code: number): string {
  const type = LEGACY_TYPES.find(([bit]) => code & bit)?.[1] ?? 'e'
  return (
    type +
    LEGACY_FLAGS.filter(([bit]) => code & bit)
      .map(([, l]) => l)
      .join('')
  )
}

const LEGACY_RE = /^([^\t]+)\t(\d+|[a-z]+) (\S+)(?: (.*))?$/

function parseLegacyLine(line: string): MailboxEntry | undefined {
  const m = LEGACY_RE.exec(line)
  if (!m) return undefined
  const [, name, type, where, aclText = ''] = m as unknown as [string, string, string, string, string | undefined]
  const bang = where.indexOf('!')
  const server = bang === -1 ? undefined : where.slice(0, bang)
  const partition = bang === -1 ? where : where.slice(bang + 1)
  const parts = aclText.split('\t')
  if (parts.at(-1) === '') parts.pop()
  if (parts.length % 2 !== 0) return undefined
  const acl: Record<string, string> = {}
  for (let i = 0; i < parts.length; i += 2) acl[parts[i]!] = parts[i + 1]!
  const mbtype = /^\d+$/.test(type) ? legacyMbtypeToLetters(Number(type)) : type
  return {name, mbtype, partition, ...(server !== undefined ? {server} : {}), acl}
}

/** `"key": value` → the two JSON texts, without building a second string of the whole line. */
function splitKeyValue(body: string): {key: string; value: string} | undefined {
  if (body.charCodeAt(0) !== 34) return undefined
  let i = 1
  for (; i < body.length; i++) {
    const c = body.charCodeAt(i)
    if (c === 92) i++
    else if (c === 34) break
  }
  if (i >= body.length) return undefined
  let j = i + 1
  while (body[j] === ' ') j++
  if (body[j] !== ':') return undefined
  return {key: body.slice(0, i + 1), value: body.slice(j + 1)}
}

const MBTYPE_RE = /^[a-z]*$/
const optString = (v: unknown): boolean => v === undefined || typeof v === 'string'

/**
 * Fast path for the common case: exactly what the MailboxEntry schema accepts unchanged
 * (a million entries through zod costs seconds). Anything else goes through the schema, which
 * also produces the error message.
 */
function isPlainEntry(v: object): v is MailboxEntry {
  const e = v as Record<string, unknown>
  if (typeof e['name'] !== 'string' || e['name'] === '') return false
  if (typeof e['mbtype'] !== 'string' || !MBTYPE_RE.test(e['mbtype'])) return false
  if (typeof e['partition'] !== 'string') return false
  if (!optString(e['server']) || !optString(e['uniqueid']) || !optString(e['uidvalidity']) || !optString(e['mtime'])) return false
  const acl = e['acl']
  if (acl === null || typeof acl !== 'object' || Array.isArray(acl)) return false
  for (const k in acl) if (typeof (acl as Record<string, unknown>)[k] !== 'string') return false
  return true
}

// ---- streaming parser ------------------------------------------------------------------------

export interface DumpParser {
  /** Feed one line (with or without its line ending). Returns the entry on that line, if any. */
  push(line: string): MailboxEntry | undefined
  /** No more lines: throws if a JSON dump never reached its closing `}` (a truncated dump). */
  end(): void
  /** undefined until the first non-empty line. */
  readonly format: DumpFormat | undefined
  readonly lineNumber: number
  readonly entries: number
}

export interface DumpParserOptions {
  /** Called with every entry as it is parsed (the parser itself keeps none). */
  onEntry?: (entry: MailboxEntry) => void
  /** For error messages. */
  host?: string
}

/** The parser's error for one line of a dump (also raised for the lines a count on the host hands back). */
export function dumpLineError(why: string, lineNumber: number, line: string, host?: string): UnexpectedOutputError {
  return new UnexpectedOutputError(`ctl_mboxlist -d: ${why} at line ${lineNumber}: ${excerpt(line)}`, {
    host,
    hint: 'the mailbox list dump is not in a format murderctl knows; keep the raw output and report it',
  })
}

/** One JSON entry line (a trailing "," allowed): its entry, or the parser's error. */
function jsonEntryLine(line: string, lineNumber: number, host?: string): MailboxEntry {
  const fail = (why: string): never => {
    throw dumpLineError(why, lineNumber, line, host)
  }
  const body = line.endsWith(',') ? line.slice(0, -1) : line
  const split = splitKeyValue(body)
  let key: unknown
  let value: unknown
  try {
    if (split) {
      key = JSON.parse(split.key)
      value = JSON.parse(split.value)
    } else {
      const obj = JSON.parse(`{${body}}`) as Record<string, unknown>
      const keys = Object.keys(obj)
      if (keys.length !== 1) return fail('expected one mailbox per line')
      key = keys[0]
      value = obj[keys[0]!]
    }
  } catch {
    return fail('not a JSON mailbox entry')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail('mailbox entry is not an object')
  const withName = 'name' in value ? value : {...value, name: key}
  if (isPlainEntry(withName)) return withName
  const parsed = MailboxEntry.safeParse(withName)
  if (!parsed.success) return fail(`bad mailbox entry (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`)
  return parsed.data
}

/** One entry line of a dump in the given format, read as the parser reads it (throws its error). */
export function parseDumpLine(format: DumpFormat, line: string, lineNumber: number, host?: string): MailboxEntry {
  if (format === 'json') return jsonEntryLine(line, lineNumber, host)
  const e = parseLegacyLine(line)
  if (!e) throw dumpLineError('not a mailbox line', lineNumber, line, host)
  return e
}

/** A JSON dump that stopped before its closing `}`. */
export function truncatedDumpError(lines: number, host?: string): UnexpectedOutputError {
  return new UnexpectedOutputError(`ctl_mboxlist -d: output ended after ${lines} lines without the closing "}" (truncated dump?)`, {
    host,
    hint: 'do not use this dump: run it again and check the command completed',
  })
}

export function createDumpParser(options: DumpParserOptions = {}): DumpParser {
  let format: DumpFormat | undefined
  let state: 'start' | 'body' | 'closed' = 'start'
  let lineNumber = 0
  let count = 0
  let needSeparator = false

  const fail = (why: string, line: string): never => {
    throw dumpLineError(why, lineNumber, line, options.host)
  }
  const emit = (e: MailboxEntry): MailboxEntry => {
    count++
    options.onEntry?.(e)
    return e
  }

  const jsonEntry = (line: string): MailboxEntry => {
    if (needSeparator) fail('entry without "," after the previous one', line)
    needSeparator = !line.endsWith(',')
    return jsonEntryLine(line, lineNumber, options.host)
  }

  return {
    push(raw: string): MailboxEntry | undefined {
      lineNumber++
      const line = raw.endsWith('\n') ? raw.slice(0, raw.endsWith('\r\n') ? -2 : -1) : raw.endsWith('\r') ? raw.slice(0, -1) : raw
      if (state === 'start') {
        if (line.trim() === '') return undefined
        if (line === '{') {
          format = 'json'
          state = 'body'
          return undefined
        }
        const legacy = parseLegacyLine(line)
        if (!legacy) return fail('unrecognised first line', line)
        format = 'legacy'
        state = 'body'
        return emit(legacy)
      }
      if (format === 'legacy') {
        if (line === '') return undefined
        return emit(parseLegacyLine(line) ?? fail('not a mailbox line', line))
      }
      if (state === 'closed') {
        if (line.trim() === '') return undefined
        return fail('text after the closing "}"', line)
      }
      if (line === '') return undefined
      if (line === '}') {
        state = 'closed'
        return undefined
      }
      if (!line.startsWith('"')) return fail('not a JSON mailbox entry', line)
      return emit(jsonEntry(line))
    },
    end(): void {
      if (format === 'json' && state !== 'closed') throw truncatedDumpError(lineNumber, options.host)
    },
    get format() {
      return format
    },
    get lineNumber() {
      return lineNumber
    },
    get entries() {
      return count
    },
  }
}

/** Entries of a whole dump held in memory (tests, small dumps). */
export function parseDump(text: string, options: Omit<DumpParserOptions, 'onEntry'> = {}): MailboxEntry[] {
  const parser = createDumpParser(options)
  const out: MailboxEntry[] = []
  let start = 0
  while (start <= text.length) {
    const nl = text.indexOf('\n', start)
    const line = nl === -1 ? text.slice(start) : text.slice(start, nl)
    if (nl === -1 && line === '') break
    const e = parser.push(line)
    if (e) out.push(e)
    if (nl === -1) break
    start = nl + 1
  }
  parser.end()
  return out
}

/** Entries one at a time from a line source (e.g. `readline.createInterface({input})`). */
export async function* parseDumpLines(
  lines: Iterable<string> | AsyncIterable<string>,
  options: Omit<DumpParserOptions, 'onEntry'> = {},
): AsyncGenerator<MailboxEntry, void, undefined> {
  const parser = createDumpParser(options)
  for await (const line of lines) {
    const e = parser.push(line)
    if (e) yield e
  }
  parser.end()
}

// ---- counting ------------------------------------------------------------------------------

export const EntryCounts = z.object({
  total: z.number().int(),
  local: z.number().int(),
  remote: z.number().int(),
  deleted: z.number().int(),
  intermediate: z.number().int(),
  /** Local entries with no uniqueid: 3.6 cannot open them (`mbentry has no uniqueid`). */
  withoutUniqueid: z.number().int(),
  /** Mailboxes the host really holds: neither remote nor deleted (isLiveLocal). */
  liveLocal: z.number().int(),
})
export type EntryCounts = z.infer<typeof EntryCounts>

export function newEntryCounts(): EntryCounts {
  return {total: 0, local: 0, remote: 0, deleted: 0, intermediate: 0, withoutUniqueid: 0, liveLocal: 0}
}

/** Add one entry to running counts (mutates and returns `counts`). */
export function addToCounts(counts: EntryCounts, e: MailboxEntry): EntryCounts {
  counts.total++
  if (isRemote(e)) counts.remote++
  else {
    counts.local++
    if (!e.uniqueid) counts.withoutUniqueid++
    if (!isDeleted(e)) counts.liveLocal++
  }
  if (isDeleted(e)) counts.deleted++
  if (isIntermediate(e)) counts.intermediate++
  return counts
}

/** Counts over any iterable of entries; keeps no entry. */
export function countEntries(entries: Iterable<MailboxEntry>): EntryCounts
export function countEntries(entries: AsyncIterable<MailboxEntry>): Promise<EntryCounts>
export function countEntries(entries: Iterable<MailboxEntry> | AsyncIterable<MailboxEntry>): EntryCounts | Promise<EntryCounts> {
  const counts = newEntryCounts()
  if (Symbol.asyncIterator in entries) {
    return (async () => {
      for await (const e of entries) addToCounts(counts, e)
      return counts
    })()
  }
  for (const e of entries) addToCounts(counts, e)
  return counts
}

/** A line sink that only counts: feed it stdout lines (e.g. an SSH onStdoutLine callback). */
export function createDumpCounter(options: Omit<DumpParserOptions, 'onEntry'> = {}): {
  push(line: string): void
  end(): EntryCounts
  readonly counts: EntryCounts
} {
  const counts = newEntryCounts()
  const parser = createDumpParser({...options, onEntry: (e) => addToCounts(counts, e)})
  return {
    push: (line) => void parser.push(line),
    end: () => {
      parser.end()
      return counts
    },
    counts,
  }
}

// ---- writing what `ctl_mboxlist -u` reads --------------------------------------------------

/** One entry as a line of the JSON document `ctl_mboxlist -u` loads (3.6's -d format). */
export function undumpLine(e: Record<string, unknown> & {name: string}): string {
  return `${JSON.stringify(e.name)}: ${JSON.stringify(e)}`
}

/** The whole document for `ctl_mboxlist -u`, from lines made by undumpLine. */
export function undumpDocument(lines: readonly string[]): string {
  return `{\n${lines.join(',\n')}\n}\n`
}

/**
 * A new local mailbox entry as 3.6 writes one (for seeding a lab or making a disaster on
 * purpose, never for a real murder): owner's full rights, plus `admin`'s when given.
 */
export function localEntry(name: string, owner: string, opts: {admin?: string; uniqueid: string; now?: number}): MailboxEntry & Record<string, unknown> {
  const now = String(opts.now ?? Math.floor(Date.now() / 1000))
  const acl: Record<string, string> = {[owner]: 'lrswipkxtecdan'}
  if (opts.admin) acl[opts.admin] = 'lrswipkxtecda'
  return {name, mtime: now, uidvalidity: now, createdmodseq: '1', foldermodseq: '1', mbtype: 'e', partition: 'default', acl, uniqueid: opts.uniqueid}
}
