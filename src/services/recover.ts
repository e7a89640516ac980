// recover-master: choose the playbook for the murder's mode and the safest source, then run it.
import {AbortError, RefusedError, UsageError} from '../errors.js'
import type {RecoverOptions, RunContext} from '../engine/context.js'
import {type EngineHooks, type RunOutcome, RunStoppedError, runPlaybook} from '../engine/engine.js'
import {Journal, newRunId} from '../engine/journal.js'
import {builtinPlaybook, loadPlaybook, type Playbook} from '../engine/playbook.js'
import {hostsByRole, inventoryFingerprint, master} from '../inventory/load.js'
import {breakLock, describeLock, type HeldLock, type LockOwner, ownerAlive, ownerHere, readLock} from '../host/lock.js'
import type {MurderContext} from '../host/context.js'
import {scanDump} from '../host/mboxlist.js'

export interface RecoverRequest {
  /** auto, backends, frontend[=NAME], backup[=DIR] */
  source: string
  playbookFile?: string
  resume?: string
  force: boolean
  dryRun: boolean
}

/** The source to use when the operator said auto: the fullest live frontend, else the backends. */
export async function resolveSource(ctx: MurderContext, spec: string): Promise<Pick<RecoverOptions, 'source' | 'backupPath' | 'frontend'>> {
  const [kind, arg] = spec.split(/=(.*)/s)
  if (kind === 'backends') return {source: 'backends'}
  if (kind === 'backup') return {source: 'backup', backupPath: arg || undefined}
  if (kind === 'frontend') {
    if (ctx.inv.mode === 'unified') throw new RefusedError('a unified murder has no frontends to copy', {hint: 'use --source backends or --source backup'})
    return {source: 'frontend', frontend: arg || undefined}
  }
  if (kind !== 'auto') throw new UsageError(`--source ${spec}: expected auto, backends, frontend[=NAME] or backup[=DIR]`)
  // Unified: the backends are the authority on their own mailboxes. Standard: a frontend's list
  // is the master's list as it last was, so it keeps remote flags and ACLs exactly.
  if (ctx.inv.mode === 'unified') return {source: 'backends'}
  for (const fe of hostsByRole(ctx.inv, 'frontend')) {
    const n = await scanDump(ctx, fe, () => {}, 'choose source').then(
      (s) => s.entries,
      () => 0,
    )
    if (n > 0) return {source: 'frontend'}
  }
  return {source: 'backends'}
}

export interface RecoverResult extends RunOutcome {
  run: string
  playbook: string
  source: RecoverOptions
  dryRun: boolean
  journal: string
}

/** Why a journal must not be resumed here, or the events to resume from. */
function checkResumable(ctx: MurderContext, journal: Journal, progress: (line: string) => void) {
  const events = journal.events()
  if (journal.tornLine) progress(`note: the journal's last line was cut short (murderctl stopped while writing it) and is ignored: ${journal.tornLine.slice(0, 120)}`)
  const start = events.find((e) => e.event === 'run-start')
  const run = journal.run
  if (!start?.data) throw new AbortError(`run ${run} has no start record`, {hint: 'start a new run'})
  const d = start.data
  if (d.command !== 'recover-master') throw new RefusedError(`run ${run} is a ${String(d.command)} run, not recover-master`, {hint: 'resume it with its own command'})
  if (d.dryRun) throw new RefusedError(`run ${run} was a dry run: there is nothing to resume`, {hint: 'start a real run (without --dry-run)'})
  if (d.murder !== ctx.inv.name) throw new RefusedError(`run ${run} was made on murder "${String(d.murder ?? 'unknown')}", not "${ctx.inv.name}"`, {hint: `resume it with that murder's inventory`})
  if (d.inventory !== inventoryFingerprint(ctx.inv))
    throw new RefusedError(`the murder's hosts are not those run ${run} started with (inventory fingerprint differs)`, {
      hint: 'resume with the inventory and the --skip-host flags the run started with, or start a new run',
    })
  const end = events.findLast((e) => e.event === 'run-end')
  if (end?.data?.completed) throw new RefusedError(`run ${run} is complete`, {hint: 'nothing to resume; murderctl check shows the murder'})
  const owner = events.findLast((e) => e.event === 'note' && e.data?.owner)?.data?.owner as LockOwner | undefined
  if (owner && owner.pid !== process.pid && ownerAlive(owner) === true)
    throw new RefusedError(`run ${run} is still running: pid ${owner.pid} on ${owner.host} since ${owner.startedAt}`, {
      hint: 'wait for it to finish or stop it (Ctrl-C stops it resumably); never run one journal twice at once',
    })
  return {start: d, events}
}

export async function recoverMaster(ctx: MurderContext, req: RecoverRequest, hooks: EngineHooks): Promise<RecoverResult> {
  let journal: Journal
  let options: RecoverOptions
  let playbook: Playbook
  let playbookName: string
  // A resumed run keeps the original's decision that the master was lost only once the run
  // acted on it; a run refused at its preflight is refused again.
  let decided = false
  if (req.resume) {
    journal = Journal.open(ctx.inv.stateDir, req.resume)
    const {start, events} = checkResumable(ctx, journal, hooks.progress)
    options = start.options as RecoverOptions
    playbookName = String(start.playbook)
    playbook = start.playbookFile ? loadPlaybook(String(start.playbookFile)) : builtinPlaybook(ctx.inv.mode, options.source)
    decided = events.some((e) => e.event === 'step-done' && e.step === 'preflight') && events.some((e) => e.event === 'step-done' && e.step !== 'preflight')
    hooks.progress(`resuming run ${req.resume} (${playbookName})`)
  } else {
    options = {...(await resolveSource(ctx, req.source)), force: req.force}
    playbook = req.playbookFile ? loadPlaybook(req.playbookFile) : builtinPlaybook(ctx.inv.mode, options.source)
    if (playbook.mode !== ctx.inv.mode) throw new RefusedError(`playbook ${playbook.name} is for a ${playbook.mode} murder; the inventory says ${ctx.inv.mode}`)
    playbookName = playbook.name
    journal = new Journal(ctx.inv.stateDir, newRunId(req.dryRun ? 'recover-master-dry' : 'recover-master'))
    journal.write({
      event: 'run-start',
      data: {command: 'recover-master', playbook: playbook.name, playbookFile: req.playbookFile, options, dryRun: req.dryRun, murder: ctx.inv.name, inventory: inventoryFingerprint(ctx.inv)},
    })
  }
  // Who runs this journal now: a resume while this process lives is refused.
  if (!req.dryRun) journal.write({event: 'note', data: {owner: ownerHere(journal.run, 'recover-master')}})
  const rc: RunContext = {murder: ctx, journal, runId: journal.run, dryRun: req.dryRun, resumed: decided, options, diffs: new Map(), pending: new Map()}
  const resumeHint = `continue with: murderctl recover-master -i ${ctx.inv.path} --resume ${journal.run}`
  hooks.progress(`${req.dryRun ? 'dry run of' : 'running'} ${playbook.name} (source: ${options.source}${options.frontend ? ` ${options.frontend}` : ''}${options.backupPath ? ` ${options.backupPath}` : ''}); journal ${journal.path}`)
  let outcome: RunOutcome
  try {
    outcome = await runPlaybook(rc, playbook, hooks, resumeHint)
  } catch (error) {
    // A refusal before anything changed is the answer, not a stop to resume from.
    if (error instanceof RunStoppedError && error.code === 'refused' && !journal.events().some((e) => e.event === 'step-done' && e.step !== 'preflight')) {
      const first = error.results.find((u) => u.status === 'failed')?.data?.error as {message?: string; hint?: string} | undefined
      throw new RefusedError(first?.message ?? error.message, {host: error.host, step: error.step, hint: first?.hint ?? 'nothing was changed'})
    }
    throw error
  }
  journal.write({event: 'run-end', data: {completed: outcome.completed, dryRun: req.dryRun}})
  return {...outcome, run: journal.run, playbook: playbookName, source: options, dryRun: req.dryRun, journal: journal.path}
}

export interface BrokenLock {
  broken: boolean
  lock: HeldLock | null
}

/**
 * --break-lock: show who holds the murder's lock and remove it once confirmed. A lock whose
 * process is known alive is never broken.
 */
export async function breakRecoveryLock(ctx: MurderContext, confirm: (question: string) => Promise<boolean>): Promise<BrokenLock> {
  const m = master(ctx.inv)
  const held = await readLock(ctx, m)
  if (!held) return {broken: false, lock: null}
  if (held.owner && ownerAlive(held.owner) === true)
    throw new RefusedError(`the lock is held by a live run: ${describeLock(held)}`, {host: m.name, step: 'break-lock', hint: 'wait for it to finish; a live run\'s lock is never broken'})
  if (!(await confirm(`Remove the lock ${held.dir} on ${m.name}, held by ${describeLock(held)}${held.ageSeconds === null ? '' : ` for ${held.ageSeconds} s`}?`)))
    throw new AbortError('not confirmed: the lock is still held', {host: m.name, step: 'break-lock'})
  await breakLock(ctx, m, held)
  return {broken: true, lock: held}
}
