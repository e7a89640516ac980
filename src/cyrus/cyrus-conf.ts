// cyrus.conf: a parser that keeps every byte (serializeCyrusConf(parseCyrusConf(t)) === t for
// any t) and an editor that comments service lines out and back in.
//
// Rules followed (master/masterconf.c in 3.6): a `#` anywhere starts a comment, even inside
// quotes; a section is `NAME {` at top level (START, SERVICES, EVENTS, DAEMON; only the first
// of each counts) and ends at a line starting with `}`; an entry is `name key=value ...` on one
// line, the name alphanumeric, values either "quoted" (no escapes) or one word. Lines Cyrus
// would refuse are kept and reported in `problems`; unknown lines are kept as they are.
//
// Disabled entries: a comment line inside a section that reads as an entry with a `cmd=`
// (Debian ships `#mupdate cmd="mupdate -m" listen=3905 prefork=1`) is reported with
// enabled: false. murderctl disables a line as `#<original line>  # disabled by <marker>`,
// so enabling it again gives back the original line exactly.
import {z} from 'zod'
import {AbortError} from '../errors.js'
import {isCSpace, joinLines, splitLines, type PhysicalLine} from './lines.js'

export const DEFAULT_MARKER = 'murderctl'

export const SECTIONS = ['START', 'SERVICES', 'EVENTS', 'DAEMON'] as const
export const SectionName = z.enum(SECTIONS)
export type SectionName = z.infer<typeof SectionName>

export const CyrusConfEntry = z.object({
  section: SectionName,
  name: z.string(),
  /** The `cmd=` value ('' when missing). */
  cmd: z.string(),
  args: z.record(z.string(), z.string()),
  /** 1-based line number. */
  line: z.number().int().positive(),
  enabled: z.boolean(),
  /** The marker, when the line was commented out by `disableService`. */
  disabledBy: z.string().optional(),
  /** The line as written, without its line ending. */
  raw: z.string(),
})
export type CyrusConfEntry = z.infer<typeof CyrusConfEntry>

export const CyrusConfLineKind = z.enum(['blank', 'comment', 'section-open', 'section-close', 'entry', 'disabled-entry', 'invalid', 'other'])
export type CyrusConfLineKind = z.infer<typeof CyrusConfLineKind>

export interface CyrusConfLine extends PhysicalLine {
  kind: CyrusConfLineKind
  /** The known section this line is inside (or opens/closes). */
  section?: SectionName
  entry?: CyrusConfEntry
}

export interface CyrusConfProblem {
  line: number
  message: string
}

export interface CyrusConf {
  lines: CyrusConfLine[]
  /** Every entry, enabled or not, in file order. */
  entries: CyrusConfEntry[]
  sections: Record<SectionName, CyrusConfEntry[]>
  /** Lines cyrus-master would refuse (it exits with EX_CONFIG on them). */
  problems: CyrusConfProblem[]
}

const DISABLED_SUFFIX_RE = / {2}# disabled by ([^\s#]+)$/
const MARKER_RE = /^[A-Za-z0-9._-]+$/
const ALNUM_RE = /[A-Za-z0-9]/

type Parsed = {name: string; args: Record<string, string>} | {error: string}

/** Parse `name key=value ...` the way process_section()/split_args() do. */
function parseEntryBody(body: string): Parsed {
  const hash = body.indexOf('#')
  const code = hash === -1 ? body : body.slice(0, hash)
  let p = 0
  while (p < code.length && isCSpace(code[p])) p++
  let q = p
  while (q < code.length && ALNUM_RE.test(code[q]!)) q++
  const name = code.slice(p, q)
  if (name === '') return {error: `bad character ${JSON.stringify(code[q] ?? '')} at the start of an entry`}
  if (q < code.length && !isCSpace(code[q])) return {error: `bad character ${JSON.stringify(code[q])} in name`}
  const args: Record<string, string> = {}
  q++
  for (;;) {
    while (q < code.length && isCSpace(code[q])) q++
    if (q >= code.length) break
    const k0 = q
    while (q < code.length && ALNUM_RE.test(code[q]!)) q++
    if (code[q] !== '=') return {error: `bad character ${JSON.stringify(code[q] ?? '')} in argument`}
    const key = code.slice(k0, q)
    q++
    let value: string
    if (code[q] === '"') {
      const end = code.indexOf('"', q + 1)
      if (end === -1) return {error: 'missing "'}
      value = code.slice(q + 1, end)
      q = end + 1
    } else {
      const v0 = q
      while (q < code.length && !isCSpace(code[q])) q++
      value = code.slice(v0, q)
    }
    if (!(key in args)) args[key] = value
  }
  return {name, args}
}

function stripComment(text: string): string {
  const hash = text.indexOf('#')
  const code = hash === -1 ? text : text.slice(0, hash)
  let p = 0
  while (p < code.length && isCSpace(code[p])) p++
  return code.slice(p)
}

function braceDelta(code: string): number {
  let d = 0
  for (const ch of code) {
    if (ch === '{') d++
    else if (ch === '}') d--
  }
  return d
}

export function parseCyrusConf(text: string): CyrusConf {
  const lines: CyrusConfLine[] = []
  const entries: CyrusConfEntry[] = []
  const sections = {START: [], SERVICES: [], EVENTS: [], DAEMON: []} as Record<SectionName, CyrusConfEntry[]>
  const problems: CyrusConfProblem[] = []
  const seenSections = new Set<SectionName>()
  let level = 0
  let current: SectionName | undefined

  splitLines(text).forEach((physical, idx) => {
    const lineNo = idx + 1
    const code = stripComment(physical.text)
    const isComment = code === '' && /^\s*#/.test(physical.text)
    const base = {text: physical.text, eol: physical.eol}

    if (current) {
      if (code === '') {
        const disabled = isComment ? readDisabled(physical.text, current, lineNo) : undefined
        if (disabled) {
          entries.push(disabled)
          sections[current].push(disabled)
          lines.push({...base, kind: 'disabled-entry', section: current, entry: disabled})
        } else lines.push({...base, kind: isComment ? 'comment' : 'blank', section: current})
        return
      }
      if (code.startsWith('}')) {
        lines.push({...base, kind: 'section-close', section: current})
        current = undefined
        level = 0
        return
      }
      const parsed = parseEntryBody(code)
      if ('error' in parsed) {
        problems.push({line: lineNo, message: `${current}: ${parsed.error} on line ${lineNo}`})
        lines.push({...base, kind: 'invalid', section: current})
        return
      }
      const entry: CyrusConfEntry = {
        section: current,
        name: parsed.name,
        cmd: parsed.args['cmd'] ?? '',
        args: parsed.args,
        line: lineNo,
        enabled: true,
        raw: physical.text,
      }
      entries.push(entry)
      sections[current].push(entry)
      lines.push({...base, kind: 'entry', section: current, entry})
      return
    }

    if (code === '') {
      lines.push({...base, kind: isComment ? 'comment' : 'blank'})
      return
    }
    if (level === 0) {
      const header = /^([A-Za-z0-9]+)/.exec(code)
      const name = header?.[1]!.toUpperCase()
      const known = SectionName.safeParse(name)
      if (known.success && !seenSections.has(known.data)) {
        level += braceDelta(code.slice(header![1]!.length))
        if (level === 1) {
          seenSections.add(known.data)
          current = known.data
          lines.push({...base, kind: 'section-open', section: current})
          return
        }
        lines.push({...base, kind: 'other'})
        return
      }
    }
    level += braceDelta(code)
    lines.push({...base, kind: 'other'})
  })
  return {lines, entries, sections, problems}
}

function readDisabled(text: string, section: SectionName, lineNo: number): CyrusConfEntry | undefined {
  const hash = text.indexOf('#')
  let body = text.slice(hash + 1)
  let disabledBy: string | undefined
  const suffix = DISABLED_SUFFIX_RE.exec(text)
  if (suffix) {
    disabledBy = suffix[1]
    body = text.slice(hash + 1, text.length - suffix[0].length)
  }
  const parsed = parseEntryBody(body)
  if ('error' in parsed || parsed.args['cmd'] === undefined) return undefined
  return {
    section,
    name: parsed.name,
    cmd: parsed.args['cmd'],
    args: parsed.args,
    line: lineNo,
    enabled: false,
    ...(disabledBy ? {disabledBy} : {}),
    raw: text,
  }
}

export function serializeCyrusConf(conf: Pick<CyrusConf, 'lines'>): string {
  return joinLines(conf.lines)
}

/** Every entry with that name in that section, enabled or not, in file order. */
export function findServices(conf: CyrusConf, section: SectionName, name: string): CyrusConfEntry[] {
  return conf.sections[section].filter((e) => e.name === name)
}

/**
 * The entry for a service: the enabled one if there is one, else the one murderctl disabled,
 * else the first commented-out one.
 */
export function findService(conf: CyrusConf, section: SectionName, name: string, marker = DEFAULT_MARKER): CyrusConfEntry | undefined {
  return pick(findServices(conf, section, name), marker)
}

function pick(entries: readonly CyrusConfEntry[], marker = DEFAULT_MARKER): CyrusConfEntry | undefined {
  return entries.find((e) => e.enabled) ?? entries.find((e) => e.disabledBy === marker) ?? entries[0]
}

function checkMarker(marker: string): void {
  if (!MARKER_RE.test(marker)) throw new AbortError(`bad marker ${JSON.stringify(marker)}: letters, digits, ".", "_" and "-" only`)
}

function replaceLines(conf: CyrusConf, replacements: ReadonlyMap<number, string>): string {
  return joinLines(conf.lines.map((l, i) => (replacements.has(i + 1) ? {text: replacements.get(i + 1)!, eol: l.eol} : l)))
}

/**
 * Comment out every enabled `name` entry of `section` as `#<line>  # disabled by <marker>`.
 * Idempotent: with nothing enabled under that name (already disabled, or absent) the text is
 * returned unchanged.
 */
export function disableService(text: string, section: SectionName, name: string, marker = DEFAULT_MARKER): string {
  checkMarker(marker)
  const conf = parseCyrusConf(text)
  const targets = findServices(conf, section, name).filter((e) => e.enabled)
  if (targets.length === 0) return text
  return replaceLines(conf, new Map(targets.map((e) => [e.line, `#${e.raw}  # disabled by ${marker}`])))
}

export interface EnableOptions {
  marker?: string
  /** Choose among several commented-out candidates (e.g. Debian's two `#mupdate` lines). */
  match?: (entry: CyrusConfEntry) => boolean
}

/**
 * Undo `disableService`: lines disabled with this marker get their exact original text back.
 * Without such a line, a single commented-out candidate is uncommented (its first `#` removed);
 * several candidates need `match`. Idempotent: returns the text unchanged when an entry of that
 * name is already enabled. Throws AbortError when there is nothing (or nothing unambiguous) to
 * enable.
 */
export function enableService(text: string, section: SectionName, name: string, options: EnableOptions = {}): string {
  const marker = options.marker ?? DEFAULT_MARKER
  checkMarker(marker)
  const conf = parseCyrusConf(text)
  const all = findServices(conf, section, name).filter((e) => !options.match || options.match(e))
  if (all.some((e) => e.enabled)) return text
  const ours = all.filter((e) => e.disabledBy === marker)
  let targets = ours
  if (targets.length === 0) {
    if (all.length === 1) targets = all
    else if (all.length === 0) {
      throw new AbortError(`cyrus.conf has no ${section} entry named ${name}, enabled or commented out`, {
        hint: 'add the service line by hand (or fix the inventory if the host is not what it says)',
      })
    } else {
      throw new AbortError(
        `cyrus.conf has ${all.length} commented-out ${section} entries named ${name} (lines ${all.map((e) => e.line).join(', ')}); not guessing which to enable`,
        {hint: 'uncomment the right line by hand, or pass a match on its cmd'},
      )
    }
  }
  return replaceLines(conf, new Map(targets.map((e) => [e.line, restore(e)])))
}

function restore(e: CyrusConfEntry): string {
  const suffix = DISABLED_SUFFIX_RE.exec(e.raw)
  const body = suffix ? e.raw.slice(0, e.raw.length - suffix[0].length) : e.raw
  const hash = body.indexOf('#')
  return body.slice(0, hash) + body.slice(hash + 1)
}

// ---- what the entries run -------------------------------------------------------------------

/** cyrus-master splits `cmd` on whitespace (no quoting). */
export function splitCmd(cmd: string): string[] {
  return cmd.split(/[ \t\n\r\f\v]+/).filter(Boolean)
}

export interface ProgramCall {
  /** Base name of the program that really runs (through Debian's `/usr/sbin/cyrus` wrapper too). */
  program: string
  args: string[]
}

/** `imapd -U 30` → imapd; `/usr/sbin/cyrus ctl_mboxlist -m` → ctl_mboxlist. */
export function programOf(cmd: string): ProgramCall | undefined {
  const argv = splitCmd(cmd)
  if (argv.length === 0) return undefined
  const base = (s: string): string => s.slice(s.lastIndexOf('/') + 1)
  if (base(argv[0]!) === 'cyrus' && argv.length > 1) return {program: base(argv[1]!), args: argv.slice(2)}
  return {program: base(argv[0]!), args: argv.slice(1)}
}

/** Does the call run `target`? Debian's wrapper also accepts `mboxlist` for ctl_mboxlist etc. */
function runs(call: ProgramCall | undefined, target: string): boolean {
  if (!call) return false
  return call.program === target || `ctl_${call.program}` === target || `cyr_${call.program}` === target
}

/** getopt-style flag test: `-m`, `-mw`, `-w -m`; letters in `withValue` take an argument. */
export function hasFlag(args: readonly string[], letter: string, withValue = ''): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--') return false
    if (!a.startsWith('-') || a === '-') continue
    for (let j = 1; j < a.length; j++) {
      const ch = a[j]!
      if (ch === letter) return true
      if (withValue.includes(ch)) {
        if (j === a.length - 1) i++
        break
      }
    }
  }
  return false
}

export const MupdateServiceInfo = z.object({
  entry: CyrusConfEntry,
  /** `-m` master, `-a` master only if mupdate_server is a local address, otherwise slave. */
  mode: z.enum(['master', 'slave', 'auto']),
  enabled: z.boolean(),
})
export type MupdateServiceInfo = z.infer<typeof MupdateServiceInfo>

/** The SERVICES entry running `mupdate` (the enabled one first), with its mode. */
export function mupdateService(conf: CyrusConf, marker = DEFAULT_MARKER): MupdateServiceInfo | undefined {
  const entry = pick(
    conf.sections.SERVICES.filter((e) => runs(programOf(e.cmd), 'mupdate')),
    marker,
  )
  if (!entry) return undefined
  const args = programOf(entry.cmd)!.args
  const mode = hasFlag(args, 'm', 'C') ? 'master' : hasFlag(args, 'a', 'C') ? 'auto' : 'slave'
  return {entry, mode, enabled: entry.enabled}
}

/** The START entry running `ctl_mboxlist -m` (a backend's push at startup), enabled first. */
export function mupdatePushEntry(conf: CyrusConf, marker = DEFAULT_MARKER): CyrusConfEntry | undefined {
  return pick(
    conf.sections.START.filter((e) => {
      const call = programOf(e.cmd)
      return runs(call, 'ctl_mboxlist') && hasFlag(call!.args, 'm', 'Cfp')
    }),
    marker,
  )
}

export function hasMupdatePush(conf: CyrusConf): boolean {
  return mupdatePushEntry(conf)?.enabled === true
}

/** The DAEMON (or START) entry running a rolling `sync_client -r`, enabled first. */
export function syncClientDaemon(conf: CyrusConf, marker = DEFAULT_MARKER): CyrusConfEntry | undefined {
  return pick(
    [...conf.sections.DAEMON, ...conf.sections.START].filter((e) => {
      const call = programOf(e.cmd)
      return runs(call, 'sync_client') && hasFlag(call!.args, 'r', 'CSFfwtdnp')
    }),
    marker,
  )
}

/** The SERVICES entry running `sync_server` (a replica's end of replication), enabled first. */
export function syncServerService(conf: CyrusConf, marker = DEFAULT_MARKER): CyrusConfEntry | undefined {
  return pick(
    conf.sections.SERVICES.filter((e) => runs(programOf(e.cmd), 'sync_server')),
    marker,
  )
}

/**
 * Add one entry line at the end of a section (before its `}`), with the file's own line ending.
 * For a service the file has never named; throws when the section is missing.
 */
export function insertService(text: string, section: SectionName, line: string): string {
  if (/[\r\n]/.test(line)) throw new AbortError('a cyrus.conf entry must fit on one line')
  const conf = parseCyrusConf(text)
  const close = conf.lines.findIndex((l) => l.kind === 'section-close' && l.section === section)
  if (close === -1) throw new AbortError(`cyrus.conf has no ${section} section`, {hint: `add "${section} {" ... "}" by hand`})
  const eol = conf.lines[close]!.eol || (conf.lines.find((l) => l.eol)?.eol ?? '\n')
  const lines = [...conf.lines.slice(0, close), {text: line, eol}, ...conf.lines.slice(close)]
  return joinLines(lines)
}
