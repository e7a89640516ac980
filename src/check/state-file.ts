// What `murderctl check` remembers between runs: the master's mailbox count, so a sudden drop
// (a wiped or rebuilt mailboxes.db on the mupdate master) is seen even when the master is not
// empty. One small JSON file per murder. Reading it never fails the check: a missing, unreadable,
// corrupt or foreign file just means "no previous run".
import {mkdirSync, readFileSync} from 'node:fs'
import {dirname} from 'node:path'
import {z} from 'zod'
import {AbortError, BugError} from '../errors.js'
import {Thresholds} from '../inventory/schema.js'
import {writeFileAtomic} from '../util/files.js'
import {worstState, type CheckResult, type CheckState, type PerfSpec} from './model.js'

export const SavedCheckState = z.object({
  murder: z.string().min(1),
  /** Mailboxes in the master's mailbox list at `at`. */
  masterCount: z.number().int().nonnegative(),
  at: z.iso.datetime(),
})
export type SavedCheckState = z.infer<typeof SavedCheckState>

export type ReadCheckState =
  | {kind: 'found'; state: SavedCheckState}
  | {kind: 'missing'}
  /** Unreadable, not JSON, not the right shape, or another murder's: ignored, with the reason. */
  | {kind: 'ignored'; reason: string}

/** Read the state file and say what was found; never throws. With `murder`, another murder's file is ignored. */
export function readCheckState(path: string, murder?: string): ReadCheckState {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {kind: 'missing'}
    return {kind: 'ignored', reason: `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`}
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return {kind: 'ignored', reason: `${path} is not JSON`}
  }
  const parsed = SavedCheckState.safeParse(json)
  if (!parsed.success)
    return {
      kind: 'ignored',
      reason: `${path} is not a check state file (${parsed.error.issues[0]?.path.join('.') || 'top'}: ${parsed.error.issues[0]?.message})`,
    }
  if (murder !== undefined && parsed.data.murder !== murder) {
    return {kind: 'ignored', reason: `${path} belongs to murder ${parsed.data.murder}, not ${murder}`}
  }
  return {kind: 'found', state: parsed.data}
}

/** The previous run's state, or undefined when there is none usable (missing, corrupt, another murder's). */
export function loadCheckState(path: string, murder?: string): SavedCheckState | undefined {
  const r = readCheckState(path, murder)
  return r.kind === 'found' ? r.state : undefined
}

/** Write the state file atomically (creating its directory). Throws AbortError if it cannot. */
export function saveCheckState(path: string, state: SavedCheckState): void {
  const parsed = SavedCheckState.safeParse(state)
  if (!parsed.success) throw new BugError(`refusing to save an invalid check state: ${z.prettifyError(parsed.error)}`)
  try {
    mkdirSync(dirname(path), {recursive: true})
  } catch (err) {
    throw new AbortError(`could not create the directory of ${path}: ${err instanceof Error ? err.message : String(err)}`, {
      step: 'save-check-state',
      cause: err,
    })
  }
  writeFileAtomic(path, `${JSON.stringify(parsed.data, null, 2)}\n`, {mode: 0o644})
}

/** The inventory's `thresholds` for this check (an Inventory's `thresholds` can be passed as is). */
export const MasterCountThresholds = z
  .object({
    /** WARNING when the count fell by more than this percentage since the last run. */
    masterDropWarnPercent: z.number().min(0).max(100),
    /** CRITICAL when it fell by more than this. */
    masterDropCritPercent: z.number().min(0).max(100),
    /** Fewer mailboxes than this is "empty" (1: only zero is empty). 0 turns the empty test off. */
    masterEmptyBelow: z.number().int().nonnegative(),
  })
  .refine((t) => t.masterDropWarnPercent <= t.masterDropCritPercent, {message: 'masterDropWarnPercent must not exceed masterDropCritPercent'})
export type MasterCountThresholds = z.infer<typeof MasterCountThresholds>

/** The inventory's defaults (5 %, 20 %, empty below 1). */
export const DEFAULT_MASTER_COUNT_THRESHOLDS: MasterCountThresholds = (({masterDropWarnPercent, masterDropCritPercent, masterEmptyBelow}) => ({
  masterDropWarnPercent,
  masterDropCritPercent,
  masterEmptyBelow,
}))(Thresholds.parse({}))

export interface MasterCountInput {
  /** Mailboxes in the mupdate master's list now. */
  count: number
  /** The last run's state (loadCheckState); undefined on the first run or when the file was unusable. */
  previous?: SavedCheckState | undefined
  thresholds: MasterCountThresholds
  /** The murder's slaves run unified (they replace their list with the master's, so an empty master empties them). */
  unifiedSlavesEnabled: boolean
  /** The master's host name, for the message. */
  masterHost?: string
}

export const RECOVER_MASTER_FIX = 'murderctl recover-master --dry-run'

const round2 = (n: number): number => Math.round(n * 100) / 100

/**
 * The master-count check. States:
 *  - CRITICAL: the master is empty (count < masterEmptyBelow) while unified slaves are
 *    enabled, or the count fell by more than masterDropCritPercent since the last run;
 *  - WARNING: empty without unified slaves (a new murder, or a lost master list), or fell by
 *    more than masterDropWarnPercent;
 *  - UNKNOWN: the thresholds or the count are not usable;
 *  - OK otherwise, including the first run (nothing to compare with) and any growth.
 * "More than" is strict: with 5 %, a drop of exactly 5 % is OK.
 * The result is murder-wide (no `host`), so its figures keep stable names across a change of
 * master: master_mailboxes, and with a previous run master_mailboxes_previous and
 * master_drop_percent (0 when it grew).
 */
export function evaluateMasterCount(input: MasterCountInput): CheckResult {
  const name = 'master-count'
  const t = MasterCountThresholds.safeParse(input.thresholds)
  if (!t.success) {
    return {
      name,
      state: 'UNKNOWN',
      message: `master-count thresholds are invalid: ${t.error.issues.map((i) => `${i.path.join('.') || 'thresholds'}: ${i.message}`).join('; ')}`,
      figures: {},
    }
  }
  const th = t.data
  const {count, previous, unifiedSlavesEnabled} = input
  if (!Number.isInteger(count) || count < 0) {
    return {name, state: 'UNKNOWN', message: `the master's mailbox count is not a count (${count}); this is a murderctl bug`, figures: {}}
  }

  const master = input.masterHost ? `master ${input.masterHost}` : 'the master'
  const figures: Record<string, number> = {master_mailboxes: count}
  const perf: Record<string, PerfSpec> = {master_mailboxes: {min: 0}}
  if (th.masterEmptyBelow > 0) {
    const range = `${th.masterEmptyBelow}:` // Nagios: alert when below
    perf.master_mailboxes = unifiedSlavesEnabled ? {crit: range, min: 0} : {warn: range, min: 0}
  }

  let dropPercent: number | undefined // compared unrounded; the figure is rounded to 0.01
  if (previous) {
    dropPercent = previous.masterCount > 0 ? Math.max(0, ((previous.masterCount - count) / previous.masterCount) * 100) : 0
    figures.master_mailboxes_previous = previous.masterCount
    figures.master_drop_percent = round2(dropPercent)
    perf.master_mailboxes_previous = {min: 0}
    perf.master_drop_percent = {uom: '%', warn: th.masterDropWarnPercent, crit: th.masterDropCritPercent, min: 0, max: 100}
  }

  const empty = count < th.masterEmptyBelow
  const emptyState: CheckState = !empty ? 'OK' : unifiedSlavesEnabled ? 'CRITICAL' : 'WARNING'
  const dropState: CheckState =
    dropPercent === undefined ? 'OK' : dropPercent > th.masterDropCritPercent ? 'CRITICAL' : dropPercent > th.masterDropWarnPercent ? 'WARNING' : 'OK'
  const state = worstState([emptyState, dropState])
  const mailboxes = `${count} mailbox${count === 1 ? '' : 'es'}`
  const was = previous ? `${previous.masterCount} at ${previous.at}` : undefined

  if (empty) {
    const why = unifiedSlavesEnabled ? ' while unified slaves are enabled (they will copy the empty list)' : ''
    return {
      name,
      state,
      message: `${master} holds ${mailboxes}${was ? ` (was ${was})` : ''}${why}; run \`${RECOVER_MASTER_FIX}\``,
      figures,
      perf,
      fix: RECOVER_MASTER_FIX,
    }
  }
  if (dropState !== 'OK') {
    return {
      name,
      state,
      message: `${master} holds ${mailboxes}, ${round2(dropPercent!)}% fewer than the last run (${was}); unless mailboxes were deleted on purpose, run \`${RECOVER_MASTER_FIX}\``,
      figures,
      perf,
      fix: RECOVER_MASTER_FIX,
    }
  }
  return {
    name,
    state,
    message: `${master} holds ${mailboxes}${was ? ` (last run: ${was})` : ' (no previous run to compare with)'}`,
    figures,
    perf,
  }
}

/**
 * What to save after a run, or undefined to leave the file alone. A drop that raised an alarm
 * does not become the new baseline: the previous count is kept, so the alarm persists on every
 * run (Nagios needs several non-OK results in a row for a hard state) until the master is
 * repaired or the operator removes the state file to accept the new count.
 */
export function nextCheckState(args: {
  murder: string
  count: number
  previous?: SavedCheckState | undefined
  result: CheckResult
  now: Date
}): SavedCheckState | undefined {
  const {murder, count, previous, result, now} = args
  if (result.state === 'UNKNOWN' || !Number.isInteger(count) || count < 0) return previous
  if (previous && result.state !== 'OK' && count < previous.masterCount) return previous
  return {murder, masterCount: count, at: now.toISOString()}
}
