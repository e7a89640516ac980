// sync-backends: playbooks/sync-backends.yaml run through the engine, like recover-master: the
// lock, each backend's diff and the review of the whole plan, shown and confirmed, copies
// aside, the push, the verification; journaled, resumable. A dry run stops after the review
// and keeps the plan; a reviewed plan file (--apply) is applied only while it is still true.
// A run that stops before its first change gives its lock back and is closed: run it again.
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {AbortError, MurderctlError, RefusedError, UsageError} from '../errors.js'
import type {EngineHooks, PlannedStep, UnitResult} from '../engine/engine.js'
import {ACTIONS} from '../engine/actions/index.js'
import {needsPush, pushTargets, REVIEWED_PLAN_FILE, SYNC_PLAN_FILE, SyncOptions, SyncPlan} from '../engine/actions/sync.js'
import type {Journal} from '../engine/journal.js'
import {builtinPlaybook, type Playbook} from '../engine/playbook.js'
import type {MurderContext} from '../host/context.js'
import {releaseLock} from '../host/lock.js'
import type {SavedCopy} from '../host/remote.js'
import {hostsByRole, master} from '../inventory/load.js'
import type {Host} from '../inventory/schema.js'
import {writePrivateFile} from '../util/files.js'
import {executeRun, newRun, openRun, rollbackStoppedRun, type RollbackResult} from './runs.js'

export {BackendDiff, changeCount, Conflict, needsPush, SyncOptions, SyncPlan} from '../engine/actions/sync.js'

const COMMAND = 'sync-backends'
const SELECTORS = ['sync-backends', 'sync-master', 'sync-targets'] as const

export function selectBackends(ctx: MurderContext, names: string[] | undefined): Host[] {
  const all = hostsByRole(ctx.inv, 'backend')
  if (!names?.length) return all
  return names.map((n) => {
    const h = all.find((b) => b.name === n)
    if (!h) throw new RefusedError(`"${n}" is not a backend in ${ctx.inv.path}`, {hint: `backends: ${all.map((b) => b.name).join(', ')}`})
    return h
  })
}

/** A plan file written by --dry-run --out, for this murder. */
export function loadPlanFile(path: string, murder: string): SyncPlan {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new UsageError(`${path}: not a readable plan: ${(error as Error).message}`, {hint: 'make one with sync-backends --dry-run --out FILE'})
  }
  const parsed = SyncPlan.safeParse(raw)
  if (!parsed.success)
    throw new UsageError(`${path}: not a murderctl sync plan (${parsed.error.issues[0]?.message})`, {hint: 'make one with sync-backends --dry-run --out FILE'})
  if (parsed.data.murder !== murder) throw new RefusedError(`${path} is a plan for murder "${parsed.data.murder}", not "${murder}"`)
  return parsed.data
}

export interface SyncRequest {
  backends?: string[]
  /** A reviewed plan (--apply FILE): its backends are the run's, and it must still be true. */
  reviewed?: SyncPlan
  localAuthoritative: boolean
  allowLocalDeletes: boolean
  skipFailed: boolean
  dryRun: boolean
  resume?: string
  /** Also write the plan here (--out). */
  out?: string
}

export interface BackendOutcome {
  backend: string
  applied: boolean
  skipped?: string
  savedCopies: SavedCopy[]
  verified: boolean
  remaining?: number
}

export interface ApplyResult {
  backends: BackendOutcome[]
  /** The master's copy aside (and any other host's that is not a backend). */
  savedCopies: SavedCopy[]
  agreement: {host: string; entries: number}[]
  agreed: boolean
}

export interface SyncResult {
  run: string
  journal: string
  playbook: string
  dryRun: boolean
  completed: boolean
  /** The plan: each backend's diff, conflicts and fingerprint (null when no review ran). */
  plan: SyncPlan | null
  planPath?: string
  /** The steps a dry run would take (what the consent covered in a real one). */
  steps: PlannedStep[]
  results: UnitResult[]
  /** What a real run would refuse (a dry run reports it and changes nothing). */
  wouldRefuse?: string
  /** After a real run: what was pushed and verified. */
  result: ApplyResult | null
}

/** The steps before the first change but the lock: a stop there leaves nothing to resume. */
function beforeFirstChange(p: Playbook): Set<string> {
  const ids = new Set<string>()
  for (const s of p.steps) {
    if (ACTIONS[s.action as keyof typeof ACTIONS]?.mutating && s.action !== 'lock') break
    ids.add(s.id)
  }
  return ids
}

function changedAnything(journal: Journal, early: Set<string>): boolean {
  return journal
    .events()
    .some((e) => e.event === 'saved-copy' || e.event === 'command' || ((e.event === 'step-start' || e.event === 'step-done') && e.step && !early.has(e.step)))
}

const readPlan = (journal: Journal): SyncPlan | null => {
  const p = join(journal.dir, SYNC_PLAN_FILE)
  return existsSync(p) ? SyncPlan.parse(JSON.parse(readFileSync(p, 'utf8'))) : null
}

function outcomeOf(journal: Journal, plan: SyncPlan, results: UnitResult[]): ApplyResult {
  const events = journal.events()
  const copies = events.filter((e) => e.event === 'saved-copy').map((e) => e.data as unknown as SavedCopy)
  const pushed = new Set(events.filter((e) => e.event === 'step-done' && e.step === 'push').map((e) => e.host))
  const verify = results.findLast((r) => r.step === 'verify' && r.status === 'done')?.data as
    {backends: {backend: string; remaining: number}[]; agreement: ApplyResult['agreement']; agreed: boolean} | undefined
  const backends = plan.backends.map((b): BackendOutcome => {
    const v = verify?.backends.find((x) => x.backend === b.backend)
    const applied = pushed.has(b.backend)
    return {
      backend: b.backend,
      applied,
      skipped: applied ? undefined : b.ok ? 'nothing to change' : 'failed to plan (--skip-failed)',
      savedCopies: copies.filter((c) => c.host === b.backend),
      // Not pushed by this invocation: its diff under this run's lock found it in sync.
      verified: b.ok && (v ? v.remaining === 0 : !needsPush(b)),
      remaining: v?.remaining,
    }
  })
  return {
    backends,
    savedCopies: copies.filter((c) => !plan.backends.some((b) => b.backend === c.host)),
    agreement: verify?.agreement ?? [],
    agreed: verify?.agreed ?? false,
  }
}

const syncPlaybook = (ctx: MurderContext) => builtinPlaybook('sync-backends', {command: COMMAND, mode: ctx.inv.mode, selectors: SELECTORS})

export async function syncBackends(ctx: MurderContext, req: SyncRequest, hooks: EngineHooks): Promise<SyncResult> {
  const playbook = syncPlaybook(ctx)
  let options: SyncOptions
  let journal: Journal
  if (req.resume) {
    const opened = openRun(ctx, req.resume, COMMAND, hooks.progress)
    journal = opened.journal
    options = SyncOptions.parse(opened.start.options)
    hooks.progress(`resuming run ${req.resume} (${options.backends.join(', ')})`)
  } else {
    const backends = req.reviewed
      ? selectBackends(
          ctx,
          req.reviewed.backends.map((b) => b.backend),
        )
      : selectBackends(ctx, req.backends)
    options = SyncOptions.parse({
      backends: backends.map((b) => b.name),
      localAuthoritative: req.localAuthoritative,
      allowLocalDeletes: req.allowLocalDeletes,
      skipFailed: req.skipFailed,
      reviewed: Boolean(req.reviewed),
    })
    journal = newRun(ctx, {command: COMMAND, playbook: playbook.name, options, dryRun: req.dryRun})
    if (req.reviewed) journal.keep(REVIEWED_PLAN_FILE, `${JSON.stringify(req.reviewed, null, 2)}\n`)
  }
  const backends = selectBackends(ctx, options.backends)
  const m = master(ctx.inv)
  const selectors = {
    'sync-backends': backends,
    'sync-targets': (rc: Parameters<typeof pushTargets>[0]) => pushTargets(rc, backends),
    'sync-master': (rc: Parameters<typeof pushTargets>[0]) => (pushTargets(rc, backends).length ? [m] : []),
  }
  const again = `run it again: murderctl ${COMMAND} -i ${ctx.inv.path}`
  const resumeHint = `continue with: murderctl ${COMMAND} -i ${ctx.inv.path} --resume ${journal.run}`
  const rollbackHint = `murderctl ${COMMAND} -i ${ctx.inv.path} --rollback ${journal.run}`
  hooks.progress(`${req.dryRun ? 'dry run of' : 'running'} ${playbook.name} on ${options.backends.join(', ')}; journal ${journal.path}`)
  const keepOut = () => {
    const p = join(journal.dir, SYNC_PLAN_FILE)
    if (req.out && existsSync(p)) writePrivateFile(req.out, readFileSync(p, 'utf8'))
  }
  let run
  try {
    run = await executeRun(ctx, journal, playbook, {options, dryRun: req.dryRun, resumed: Boolean(req.resume), selectors, resumeHint, rollbackHint}, hooks)
  } catch (error) {
    keepOut()
    if (req.dryRun || !(error instanceof MurderctlError) || changedAnything(journal, beforeFirstChange(playbook))) throw error
    // Nothing but the lock was taken: give it back and close the run; the answer is to run again.
    await releaseLock(ctx, m, journal.run).catch(() => false)
    journal.write({event: 'run-end', data: {completed: false, closed: true, reason: error.message}})
    throw new MurderctlError(error.code, error.message, {
      host: error.host,
      step: error.step,
      hint: `${(error.hint ?? '').replace(resumeHint, again) || again}; nothing was changed`,
    })
  }
  keepOut()
  const plan = readPlan(journal)
  const review = run.results.find((r) => r.step === 'review')?.data as {stale?: string; wouldRefuse?: string} | undefined
  // A dry run of a reviewed plan gone stale says so as a real run would, and exits as it would.
  if (req.dryRun && review?.stale)
    throw new RefusedError(review.stale, {host: m.name, step: 'review', hint: 'make a new plan with --dry-run --out FILE, review it, and apply that'})
  if (!plan) throw new AbortError('the run ended without a plan', {step: 'review'})
  return {
    run: run.run,
    journal: run.journal,
    playbook: run.playbook,
    dryRun: run.dryRun,
    completed: run.completed,
    plan,
    planPath: req.out ?? join(journal.dir, SYNC_PLAN_FILE),
    steps: run.plan,
    results: run.results,
    wouldRefuse: review?.wouldRefuse,
    result: req.dryRun ? null : outcomeOf(journal, plan, run.results),
  }
}

/**
 * --rollback RUN: a stopped sync-backends run undone: each mailboxes.db it copied aside (the
 * master's, the pushed backends') put back from its journaled copy, cyrus-master stopped
 * meanwhile, the lock given back, then verified. The master's slaves take its old list again.
 */
export function rollbackSync(ctx: MurderContext, run: string, dryRun: boolean, hooks: EngineHooks): Promise<RollbackResult> {
  return rollbackStoppedRun(ctx, run, COMMAND, () => syncPlaybook(ctx), {dryRun}, hooks)
}
