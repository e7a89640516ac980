// Reading and diffing mailbox lists on hosts: `ctl_mboxlist -d` streamed, `ctl_mboxlist -m -w`
// parsed, and where each host keeps its mailboxes.db.
import {createHash} from 'node:crypto'
import {RemoteCommandError, UnexpectedOutputError} from '../errors.js'
import {createDumpParser, type EntryCounts, isRemote, type MailboxEntry} from '../cyrus/mboxlist-dump.js'
import {createCountReader, readCountOutput, COUNT_AWK} from '../cyrus/mboxlist-count.js'
import {LOCAL_ONLY_AWK, type LocalOnlyResult, readLocalOnlyOutput} from '../cyrus/mboxlist-local-only.js'
import {classifyMupdateStderr, createWarnCounter, type MupdateWarnPlan, parseMupdateWarn, type WarnCounts} from '../cyrus/mboxlist-warn.js'
import type {Host} from '../inventory/schema.js'
import type {ExecResult} from '../ssh/types.js'
import type {MurderContext} from './context.js'
import {producerExit, tool, withExit} from './remote.js'
import {shellQuote} from '../ssh/quote.js'

/** Where a host's mailboxes.db is, from its imapd.conf (mboxlist_db_path wins). */
export function mailboxesDbPath(imapd: ReadonlyMap<string, string>): string {
  return imapd.get('mboxlist_db_path') ?? `${(imapd.get('configdirectory') ?? '/var/lib/cyrus').replace(/\/+$/, '')}/mailboxes.db`
}

export interface DumpScan {
  entries: number
  /** sha256 of the dump as printed: equal fingerprints mean an unchanged mailbox list. */
  fingerprint: string
}

/**
 * Stream `ctl_mboxlist -d` (of the host's mailboxes.db, or of `file`) through onEntry;
 * nothing is kept unless onEntry keeps it.
 */
export async function scanDump(ctx: MurderContext, host: Host, onEntry: (e: MailboxEntry) => void, step = 'dump', file?: string): Promise<DumpScan> {
  const hash = createHash('sha256')
  const parser = createDumpParser({host: host.name, onEntry})
  const r = await ctx.pool.exec(host, [tool(host, 'ctl_mboxlist'), '-d', ...(file ? ['-f', file] : [])], {
    onStdoutLine: (l) => {
      hash.update(l).update('\n')
      parser.push(l)
    },
  })
  if (r.exitCode !== 0 || r.stderr.trim())
    throw new RemoteCommandError(
      `ctl_mboxlist -d failed: ${r.stderr.trim().split('\n')[0] || `exit ${r.exitCode}`}`,
      {command: r.command, exitCode: r.exitCode, stderr: r.stderr},
      {host: host.name, step},
    )
  parser.end()
  return {entries: parser.entries, fingerprint: hash.digest('hex')}
}

/**
 * A `ctl_mboxlist -d` piped through withExit into an awk on the host: a failure of the shell, of
 * ctl_mboxlist (its `EXIT n` line) or anything on stderr (Cyrus tools exit 0 on failure) throws.
 */
function assertDumpPipeOk(r: ExecResult, host: Host, step: string, what: string, file?: string): void {
  const rc = producerExit(r.stdout)
  if (r.exitCode === 0 && rc === 0 && !r.stderr.trim()) return
  throw new RemoteCommandError(
    `ctl_mboxlist -d failed: ${r.stderr.trim().split('\n')[0] || (rc === null ? `${what} stopped (shell exit ${r.exitCode})` : `exit ${rc}`)}`,
    {command: r.command, exitCode: rc ?? r.exitCode, stderr: r.stderr},
    {host: host.name, step, hint: `run ${tool(host, 'ctl_mboxlist')} -d${file ? ` -f ${file}` : ''} on ${host.name} by hand to see why`},
  )
}

/** The shell script that counts a mailboxes.db where it lies; its output is for readCountOutput. */
export function countScript(ctlMboxlist: string, file?: string, opts: {names?: boolean; keep?: string} = {}): string {
  const ctl = [ctlMboxlist, '-d', ...(file ? ['-f', file] : [])].map(shellQuote).join(' ')
  // keep: the dump goes to that file first and is read from it, so a later step on this host can
  // read the same dump again without running ctl_mboxlist -d again; the status is ctl_mboxlist's.
  const k = opts.keep && shellQuote(opts.keep)
  const producer = k ? `(${ctl} > ${k}; s=$?; cat -- ${k} || exit 1; exit $s)` : ctl
  // mawk (Debian's default awk) reads a dump in a third of gawk's time: take it where both are.
  const awk = 'a=$(command -v mawk || echo awk)'
  return `${awk}\n${withExit(producer, `LC_ALL=C "$a"${opts.names ? ' -v names=1' : ''} ${shellQuote(COUNT_AWK)}`)}`
}

/**
 * Every figure of a mailboxes.db (the host's, or `file`), counted ON the host: `ctl_mboxlist -d`
 * piped into an awk program (COUNT_AWK), so a few figures cross SSH, not the dump. The same
 * figures as scanDump through addToCounts; use scanDump only where the entries themselves matter.
 */
export async function countEntriesOnHost(ctx: MurderContext, host: Host, step = 'count', file?: string): Promise<EntryCounts> {
  const r = await ctx.pool.exec(host, {shell: countScript(tool(host, 'ctl_mboxlist'), file)})
  assertDumpPipeOk(r, host, step, 'the count', file)
  try {
    return readCountOutput(r.stdout, host.name)
  } catch (error) {
    throw (error as UnexpectedOutputError).at({host: host.name, step})
  }
}

/**
 * The names of the host's live local mailboxes and of its remote entries, through onName as they
 * come: its dump read by COUNT_AWK on the host (names=1), so one short line per entry crosses
 * SSH and only the lines the awk hands back are parsed here. Returns the dump's figures.
 */
export async function scanNames(
  ctx: MurderContext,
  host: Host,
  onName: (name: string, remote: boolean) => void,
  step = 'dump',
  /** A file on the host to keep the dump in (for localOnlyDocOnHost's `source`). */
  keep?: string,
): Promise<EntryCounts> {
  const reader = createCountReader({host: host.name, onName})
  const script = countScript(tool(host, 'ctl_mboxlist'), undefined, {names: true, keep})
  const r = await ctx.pool.exec(host, {shell: script}, {onStdoutLine: (l) => reader.push(l)})
  assertDumpPipeOk({...r, stdout: reader.exitLine}, host, step, 'the mailbox list')
  try {
    return reader.end()
  } catch (error) {
    throw (error as UnexpectedOutputError).at({host: host.name, step})
  }
}

/**
 * A unified backend's live local entries, as the document `ctl_mboxlist -u` loads, written to
 * `doc` ON the host: `ctl_mboxlist -d` piped into LOCAL_ONLY_AWK, so the dump never crosses SSH.
 * A FALLBACK result means the awk met a line it cannot read with certainty: the caller makes
 * the list with scanDump instead. `sha256` is the document's.
 */
export async function localOnlyDocOnHost(
  ctx: MurderContext,
  host: Host,
  doc: string,
  nameFile: string,
  step: string,
  /** The host's dump as scanNames kept it (a complete `ctl_mboxlist -d` that exited 0), read instead of dumping again. */
  source?: string,
): Promise<LocalOnlyResult & {sha256?: string}> {
  const producer = source ? `cat -- ${shellQuote(source)}` : `${shellQuote(tool(host, 'ctl_mboxlist'))} -d`
  const env = `MURDERCTL_DOC=${shellQuote(doc)} MURDERCTL_NAME=${shellQuote(nameFile)}`
  const script = [
    'a=$(command -v mawk || echo awk)',
    // A subshell: withExit ends with exit.
    `(\n${withExit(producer, `${env} LC_ALL=C "$a" ${shellQuote(LOCAL_ONLY_AWK)}`)}\n)`,
    // The document's checksum, for the journal (only once the awk has closed it).
    `s=$?; [ $s = 0 ] || exit $s; printf 'SHA256 %s\\n' "$(sha256sum < ${shellQuote(doc)} 2>/dev/null | cut -c1-64)"`,
  ].join('\n')
  const r = await ctx.pool.exec(host, {shell: script})
  assertDumpPipeOk(r, host, step, 'the local-only list')
  const sum = /^SHA256 ([0-9a-f]{64})$/m.exec(r.stdout)?.[1]
  try {
    const result = readLocalOnlyOutput(r.stdout.replace(/^SHA256 .*$/m, ''), host.name)
    return result.fallback ? result : {...result, sha256: sum}
  } catch (error) {
    throw (error as UnexpectedOutputError).at({host: host.name, step})
  }
}

/** Every entry's location (`server!partition`, or `partition` for a local one), by name. */
export async function mailboxLocations(ctx: MurderContext, host: Host, step = 'dump'): Promise<{locations: Map<string, string>} & DumpScan> {
  const locations = new Map<string, string>()
  // A murder has a handful of locations: one string each, not one per entry (a third of the map at 200,000).
  const shared = new Map<string, string>()
  const scan = await scanDump(
    ctx,
    host,
    (e) => {
      const at = isRemote(e) && e.server ? `${e.server}!${e.partition}` : e.partition
      let one = shared.get(at)
      if (one === undefined) shared.set(at, (one = at))
      locations.set(e.name, one)
    },
    step,
  )
  return {locations, ...scan}
}

export interface WarnResult {
  plan: MupdateWarnPlan
  /** Lines printed, all kinds together. */
  changes: number
  command: string
  durationMs: number
}

/** A ctl_mboxlist -m run that printed to stderr or exited non-zero, in Cyrus's words plus what to do. */
function pushFailure(r: ExecResult, args: string, host: Host, step: string): RemoteCommandError {
  const d = classifyMupdateStderr(r.stderr)
  const message = d
    ? `ctl_mboxlist ${args}: ${d.reason} (${d.line})`
    : `ctl_mboxlist ${args} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n')[0] ?? ''}`
  return new RemoteCommandError(message, {command: r.command, exitCode: r.exitCode, stderr: r.stderr}, {host: host.name, step, hint: d?.hint})
}

/**
 * `ctl_mboxlist -m -w` on a backend: what `-m` would change. Anything on stderr, a non-zero
 * exit or a line we do not know is a failure, in Cyrus's own words plus what to do. With
 * authoritative, `-m -w -a`: only for a master that must not be asked (see fresh-master.ts).
 */
export async function mupdateWarn(ctx: MurderContext, host: Host, step = 'ctl_mboxlist -m -w', opts: {authoritative?: boolean} = {}): Promise<WarnResult> {
  const args = ['-m', '-w', ...(opts.authoritative ? ['-a'] : [])]
  const r = await ctx.pool.exec(host, [tool(host, 'ctl_mboxlist'), ...args])
  if (r.exitCode !== 0 || r.stderr.trim()) throw pushFailure(r, args.join(' '), host, step)
  let plan: MupdateWarnPlan
  try {
    plan = parseMupdateWarn(r.stdout, {host: host.name})
  } catch (error) {
    throw (error as UnexpectedOutputError).at({host: host.name, step})
  }
  const changes = plan.activate.length + plan.removeFromMupdate.length + plan.removeRemoteFlag.length + plan.removeLocal.length
  return {plan, changes, command: r.command, durationMs: r.durationMs}
}

/**
 * `ctl_mboxlist -m -w` counted as it streams: its figures and a few names of each kind, never
 * every line (a backend far from its master prints one per mailbox). Failures as mupdateWarn.
 */
export async function countMupdateWarn(
  ctx: MurderContext,
  host: Host,
  step = 'ctl_mboxlist -m -w',
  keep = 5,
  /** -a, with the activations it would print for these names (a unified backend's remote entries) left out. */
  opts: {authoritative?: boolean; skipActivate?: (name: string) => boolean} = {},
): Promise<WarnCounts> {
  const counter = createWarnCounter(keep, {host: host.name, skipActivate: opts.skipActivate})
  let bad: UnexpectedOutputError | undefined
  const args = ['-m', '-w', ...(opts.authoritative ? ['-a'] : [])]
  const r = await ctx.pool.exec(host, [tool(host, 'ctl_mboxlist'), ...args], {
    onStdoutLine: (l) => {
      if (bad) return
      try {
        counter.push(l)
      } catch (error) {
        bad = error as UnexpectedOutputError
      }
    },
  })
  if (r.exitCode !== 0 || r.stderr.trim()) throw pushFailure(r, args.join(' '), host, step)
  if (bad) throw bad.at({host: host.name, step})
  return counter.result()
}

/**
 * `-m -w` counting only what concerns this backend's OWN mailboxes. A unified backend also
 * holds remote entries; with its slave off they may lag behind the master (another backend's
 * push, a deletion since a backup), and -m -w offers to activate them as this backend's: on an
 * empty master a plain -m would claim them. Those lines are left out, as claimsAvoided; the
 * slave's resync settles the remote entries once it is back.
 */
export async function localMupdateWarn(
  ctx: MurderContext,
  host: Host,
  step = 'ctl_mboxlist -m -w',
  /** The backend's remote names when the caller has them (read while -m -w runs); else read here. */
  remoteNames?: Promise<ReadonlySet<string>>,
  opts: {authoritative?: boolean} = {},
): Promise<WarnResult & {claimsAvoided: string[]}> {
  const readRemote = async () => {
    const names = new Set<string>()
    await scanDump(
      ctx,
      host,
      (e) => {
        if (isRemote(e)) names.add(e.name)
      },
      step,
    )
    return names
  }
  const [w, remote] = await Promise.all([mupdateWarn(ctx, host, step, opts), remoteNames ?? readRemote()])
  const claimsAvoided = w.plan.activate.filter((n) => remote.has(n))
  return {...w, plan: {...w.plan, activate: w.plan.activate.filter((n) => !remote.has(n))}, changes: w.changes - claimsAvoided.length, claimsAvoided}
}

/**
 * `ctl_mboxlist -m` (with -a: local copies are authoritative; with file: of that mailbox list
 * instead of the host's). `record` sees the result before it is judged, so a failed push is
 * journaled too. Verified by the caller with -m -w.
 */
export async function mupdatePush(
  ctx: MurderContext,
  host: Host,
  opts: {authoritative?: boolean; file?: string; step?: string; record?: (r: ExecResult) => void} = {},
) {
  const args = ['-m', ...(opts.authoritative ? ['-a'] : []), ...(opts.file ? ['-f', opts.file] : [])]
  const r = await ctx.pool.exec(host, [tool(host, 'ctl_mboxlist'), ...args])
  opts.record?.(r)
  if (r.exitCode !== 0 || r.stderr.trim()) throw pushFailure(r, args.join(' '), host, opts.step ?? 'ctl_mboxlist -m')
  return r
}
