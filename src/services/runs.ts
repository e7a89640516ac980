// Starting and resuming a journaled playbook run: what every mutating command's service shares.
// The run's start record keeps what a resume needs (playbook, options, dry-run), so a resumed
// run does exactly what the first invocation set out to do.
import {AbortError, RefusedError} from '../errors.js'
import {newRunContext, type RunContext} from '../engine/context.js'
import {type EngineHooks, type RunOutcome, RunStoppedError, runPlaybook} from '../engine/engine.js'
import {type RollbackOutcome, rollbackRun} from '../engine/rollback.js'
import {Journal, newRunId} from '../engine/journal.js'
import type {Playbook} from '../engine/schema.js'
import type {MurderContext} from '../host/context.js'
import {inventoryFingerprint} from '../inventory/load.js'
import {type LockOwner, ownerAlive, ownerHere} from '../host/lock.js'

export interface RunStart {
  command: string
  playbook: string
  playbookFile?: string
  options: Record<string, unknown>
  dryRun: boolean
}

/**
 * A new run folder with its start record: with the murder's name and an inventory fingerprint,
 * so that it is only ever resumed on the same murder with the same hosts.
 */
export function newRun(ctx: MurderContext, start: RunStart): Journal {
  const journal = new Journal(ctx.inv.stateDir, newRunId(start.dryRun ? `${start.command}-dry` : start.command))
  journal.write({event: 'run-start', data: {...start, murder: ctx.inv.name, inventory: inventoryFingerprint(ctx.inv)}})
  return journal
}

/**
 * An earlier run of this command, to resume: its journal and start record. Refused: a bad or
 * missing run id (nothing is created), a dry run, a complete run, another command's or
 * murder's run, a run made with other hosts, a run whose process still runs.
 */
export function openRun(
  ctx: MurderContext,
  run: string,
  command: string,
  progress: (line: string) => void = () => {},
  purpose: 'resume' | 'rollback' = 'resume',
): {journal: Journal; start: RunStart} {
  const journal = Journal.open(ctx.inv.stateDir, run)
  const events = journal.events()
  if (journal.tornLine)
    progress(`note: the journal's last line was cut short (murderctl stopped while writing it) and is ignored: ${journal.tornLine.slice(0, 120)}`)
  const start = events.find((e) => e.event === 'run-start')?.data as (RunStart & {command?: string; murder?: string; inventory?: string}) | undefined
  if (!start) throw new AbortError(`run ${run} has no start record`, {hint: 'start a new run'})
  if ((start.command ?? 'recover-master') !== command)
    throw new RefusedError(`run ${run} is a ${start.command} run, not ${command}`, {hint: `resume it with murderctl ${start.command} --resume ${run}`})
  if (start.dryRun)
    throw new RefusedError(`run ${run} was a dry run: there is nothing to ${purpose === 'resume' ? 'resume' : 'roll back'}`, {
      hint: 'start a real run (without --dry-run)',
    })
  if (start.murder !== ctx.inv.name)
    throw new RefusedError(`run ${run} was made on murder "${start.murder ?? 'unknown'}", not "${ctx.inv.name}"`, {
      hint: "resume it with that murder's inventory",
    })
  if (start.inventory !== inventoryFingerprint(ctx.inv))
    throw new RefusedError(`the murder's hosts are not those run ${run} started with (inventory fingerprint differs)`, {
      hint: 'resume with the inventory and the --skip-host flags the run started with, or start a new run',
    })
  const rollback = events.findLast((e) => e.event === 'rollback-end' || e.event === 'rollback-start')
  if (purpose === 'resume' && rollback)
    throw new RefusedError(
      `run ${run} was rolled back${rollback.event === 'rollback-start' || !rollback.data?.completed ? ' (its rollback stopped part-way)' : ''}`,
      {
        hint: rollback.data?.completed ? 'start a new run' : `finish the rollback: murderctl ${command} --rollback ${run}`,
      },
    )
  if (purpose === 'rollback' && rollback?.event === 'rollback-end' && rollback.data?.completed)
    throw new RefusedError(`run ${run} is already rolled back`, {hint: 'nothing to undo; murderctl check shows the murder'})
  const end = events.findLast((e) => e.event === 'run-end')?.data
  if (end?.completed)
    throw new RefusedError(`run ${run} is complete`, {
      hint:
        purpose === 'resume'
          ? 'nothing to resume; murderctl check shows the murder'
          : 'a finished run is not rolled back; its copies stay on the hosts (murderctl report lists them)',
    })
  // A run that stopped before its first change, and gave its lock back, is over.
  if (end?.closed)
    throw new RefusedError(`run ${run} stopped before changing anything and was closed`, {
      hint: `nothing to ${purpose === 'resume' ? 'resume' : 'undo'}: run murderctl ${command} again`,
    })
  const owner = events.findLast((e) => e.event === 'note' && e.data?.owner)?.data?.owner as LockOwner | undefined
  if (owner && owner.pid !== process.pid && ownerAlive(owner) === true)
    throw new RefusedError(`run ${run} is still running: pid ${owner.pid} on ${owner.host} since ${owner.startedAt}`, {
      hint: 'wait for it to finish or stop it (Ctrl-C stops it resumably); never run one journal twice at once',
    })
  return {journal, start: {...start, command}}
}

export interface PlaybookRunResult extends RunOutcome {
  run: string
  playbook: string
  dryRun: boolean
  journal: string
}

/** Run (or go on with) a playbook in a journaled run, and close the journal with its outcome. */
export async function executeRun(
  ctx: MurderContext,
  journal: Journal,
  playbook: Playbook,
  run: {options: Record<string, unknown>; dryRun: boolean; resumed: boolean; selectors?: RunContext['selectors']; resumeHint: string; rollbackHint?: string},
  hooks: EngineHooks,
): Promise<PlaybookRunResult> {
  const rc = newRunContext(ctx, journal, run)
  // Who runs this journal now: a resume while this process lives is refused.
  if (!run.dryRun) journal.write({event: 'note', data: {owner: ownerHere(journal.run, journal.run.split('-').slice(1, -1).join('-'))}})
  let outcome: RunOutcome
  try {
    outcome = await runPlaybook(rc, playbook, hooks, run.resumeHint, run.rollbackHint)
  } catch (error) {
    // A refusal before anything changed is the answer, not a stop to resume from.
    if (error instanceof RunStoppedError && error.code === 'refused' && !journal.events().some((e) => e.event === 'step-done' && e.step !== 'preflight')) {
      const first = error.results.find((u) => u.status === 'failed')?.data?.error as {message?: string; hint?: string} | undefined
      throw new RefusedError(first?.message ?? error.message, {host: error.host, step: error.step, hint: first?.hint ?? 'nothing was changed'})
    }
    throw error
  }
  journal.write({event: 'run-end', data: {completed: outcome.completed, dryRun: run.dryRun}})
  return {...outcome, run: journal.run, playbook: playbook.name, dryRun: run.dryRun, journal: journal.path}
}

export interface RollbackResult extends RollbackOutcome {
  run: string
  playbook: string
  dryRun: boolean
  journal: string
}

/**
 * --rollback RUN: the stopped run undone, journaled in its own journal (a dry run shows the
 * plan and writes nothing). `playbookOf` gives the playbook the run ran, from its start record.
 */
export async function rollbackStoppedRun(
  ctx: MurderContext,
  run: string,
  command: string,
  playbookOf: (start: RunStart) => Playbook,
  req: {dryRun: boolean; selectors?: RunContext['selectors']},
  hooks: EngineHooks,
): Promise<RollbackResult> {
  const {journal, start} = openRun(ctx, run, command, hooks.progress, 'rollback')
  const playbook = playbookOf(start)
  const rc = newRunContext(ctx, journal, {dryRun: req.dryRun, resumed: true, options: start.options, selectors: req.selectors})
  if (!req.dryRun) journal.write({event: 'note', data: {owner: ownerHere(journal.run, command)}})
  hooks.progress(`${req.dryRun ? 'dry run of the rollback of' : 'rolling back'} run ${run} (${playbook.name}); journal ${journal.path}`)
  const outcome = await rollbackRun(rc, playbook, hooks)
  return {...outcome, run, playbook: playbook.name, dryRun: req.dryRun, journal: journal.path}
}
