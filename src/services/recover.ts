// recover-master: choose the playbook for the murder's mode and the safest source, then run it.
import {AbortError, RefusedError, UsageError} from '../errors.js'
import type {EngineHooks} from '../engine/engine.js'
import {RecoverOptions} from '../engine/actions/master-rebuild.js'
import {builtinPlaybook, loadPlaybook, type Playbook, type PlaybookFor} from '../engine/playbook.js'
import type {MurderContext} from '../host/context.js'
import {countEntriesOnHost} from '../host/mboxlist.js'
import {masterPid} from '../host/remote.js'
import {hostsByRole, master} from '../inventory/load.js'
import {breakLock, describeLock, type HeldLock, ownerAlive, readLock} from '../host/lock.js'
import {executeRun, newRun, openRun, type PlaybookRunResult, rollbackStoppedRun, type RollbackResult} from './runs.js'

export interface RecoverRequest {
  /** auto, backends, frontend[=NAME], backup[=DIR] */
  source: string
  playbookFile?: string
  resume?: string
  force: boolean
  /** Rebuild the master's list on a tmpfs (false: --no-tmpfs). */
  tmpfs?: boolean
  dryRun: boolean
}

type Source = Pick<RecoverOptions, 'source' | 'backupPath' | 'frontend'>

/** The source to use when the operator said auto: the fullest live frontend, else the backends. */
export async function resolveSource(ctx: MurderContext, spec: string): Promise<Source> {
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
  // A master that runs (restarted empty) empties the frontends within mupdate_retry_delay: their
  // lists are only worth copying while it stays down.
  if ((await masterPid(ctx, master(ctx.inv))) !== null) return {source: 'backends'}
  for (const fe of hostsByRole(ctx.inv, 'frontend')) {
    const n = await countEntriesOnHost(ctx, fe, 'choose source').then(
      (c) => c.total,
      () => 0,
    )
    if (n > 0) return {source: 'frontend'}
  }
  return {source: 'backends'}
}

export interface RecoverResult extends PlaybookRunResult {
  source: RecoverOptions
}

const playbookFor = (ctx: MurderContext, options: RecoverOptions): PlaybookFor => ({command: 'recover-master', mode: ctx.inv.mode, source: options.source})

function choosePlaybook(ctx: MurderContext, options: RecoverOptions, file?: string): Playbook {
  const expect = playbookFor(ctx, options)
  return file ? loadPlaybook(file, expect) : builtinPlaybook(`recover-master-${ctx.inv.mode}-${options.source}`, expect)
}

export async function recoverMaster(ctx: MurderContext, req: RecoverRequest, hooks: EngineHooks): Promise<RecoverResult> {
  let options: RecoverOptions
  let playbook: Playbook
  let journal
  let decided = false
  if (req.resume) {
    const opened = openRun(ctx, req.resume, 'recover-master', hooks.progress)
    journal = opened.journal
    // The original run's decision that the master was lost stands only once the run acted on
    // it; a run refused at its preflight meets the same refusal again.
    const events = journal.events()
    decided = events.some((e) => e.event === 'step-done' && e.step === 'preflight') && events.some((e) => e.event === 'step-done' && e.step !== 'preflight')
    options = RecoverOptions.parse(opened.start.options)
    playbook = choosePlaybook(ctx, options, opened.start.playbookFile)
    hooks.progress(`resuming run ${req.resume} (${playbook.name})`)
  } else {
    options = RecoverOptions.parse({...(await resolveSource(ctx, req.source)), force: req.force, tmpfs: req.tmpfs ?? true})
    playbook = choosePlaybook(ctx, options, req.playbookFile)
    journal = newRun(ctx, {command: 'recover-master', playbook: playbook.name, playbookFile: req.playbookFile, options, dryRun: req.dryRun})
  }
  const resumeHint = `continue with: murderctl recover-master -i ${ctx.inv.path} --resume ${journal.run}`
  const rollbackHint = `murderctl recover-master -i ${ctx.inv.path} --rollback ${journal.run}`
  hooks.progress(
    `${req.dryRun ? 'dry run of' : 'running'} ${playbook.name} (source: ${options.source}${options.frontend ? ` ${options.frontend}` : ''}${options.backupPath ? ` ${options.backupPath}` : ''}); journal ${journal.path}`,
  )
  // The preflight reaches every host of the murder: their SSH handshakes start now, side by side.
  ctx.pool.warm?.(ctx.inv.hosts)
  const result = await executeRun(ctx, journal, playbook, {options, dryRun: req.dryRun, resumed: decided, resumeHint, rollbackHint}, hooks)
  return {...result, source: options}
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
    throw new RefusedError(`the lock is held by a live run: ${describeLock(held)}`, {
      host: m.name,
      step: 'break-lock',
      hint: "wait for it to finish; a live run's lock is never broken",
    })
  if (
    !(await confirm(`Remove the lock ${held.dir} on ${m.name}, held by ${describeLock(held)}${held.ageSeconds === null ? '' : ` for ${held.ageSeconds} s`}?`))
  )
    throw new AbortError('not confirmed: the lock is still held', {host: m.name, step: 'break-lock'})
  await breakLock(ctx, m, held)
  return {broken: true, lock: held}
}

/** --rollback RUN: undo what a stopped recover-master run did, with the playbook it ran. */
export function rollbackRecovery(ctx: MurderContext, run: string, dryRun: boolean, hooks: EngineHooks): Promise<RollbackResult> {
  return rollbackStoppedRun(
    ctx,
    run,
    'recover-master',
    (start) => choosePlaybook(ctx, RecoverOptions.parse(start.options), start.playbookFile),
    {dryRun},
    hooks,
  )
}
