// Starting and resuming a journaled playbook run: what every mutating command's service shares.
// The run's start record keeps what a resume needs (playbook, options, dry-run), so a resumed
// run does exactly what the first invocation set out to do.
import {AbortError, InventoryError} from '../errors.js'
import type {RunContext} from '../engine/context.js'
import {type EngineHooks, type RunOutcome, runPlaybook} from '../engine/engine.js'
import {Journal, newRunId} from '../engine/journal.js'
import type {Playbook} from '../engine/schema.js'
import type {MurderContext} from '../host/context.js'
import type {Host} from '../inventory/schema.js'

export interface RunStart {
  command: string
  playbook: string
  playbookFile?: string
  options: Record<string, unknown>
  dryRun: boolean
}

/** A new run folder with its start record. */
export function newRun(ctx: MurderContext, start: RunStart): Journal {
  const journal = new Journal(ctx.inv.stateDir, newRunId(start.dryRun ? `${start.command}-dry` : start.command))
  journal.write({event: 'run-start', data: {...start, murder: ctx.inv.name}})
  return journal
}

/** An earlier run of this command, to resume: its journal and start record. */
export function openRun(ctx: MurderContext, run: string, command: string): {journal: Journal; start: RunStart} {
  let journal: Journal
  try {
    journal = Journal.open(ctx.inv.stateDir, run)
  } catch (error) {
    throw new InventoryError((error as Error).message, {hint: `runs are in ${ctx.inv.stateDir}/runs`})
  }
  const start = journal.events().find((e) => e.event === 'run-start')?.data as (RunStart & {command?: string}) | undefined
  if (!start) throw new AbortError(`run ${run} has no start record`, {hint: 'start a new run'})
  if ((start.command ?? 'recover-master') !== command) throw new AbortError(`run ${run} is a ${start.command} run, not ${command}`, {hint: `resume it with murderctl ${start.command} --resume ${run}`})
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
  run: {options: Record<string, unknown>; dryRun: boolean; resumed: boolean; selectors?: Record<string, Host[]>; resumeHint: string},
  hooks: EngineHooks,
): Promise<PlaybookRunResult> {
  const rc: RunContext = {
    murder: ctx,
    journal,
    runId: journal.run,
    dryRun: run.dryRun,
    resumed: run.resumed,
    options: run.options,
    selectors: run.selectors ?? {},
    facts: new Map(),
    diffs: new Map(),
    pending: new Map(),
  }
  const outcome = await runPlaybook(rc, playbook, hooks, run.resumeHint)
  journal.write({event: 'run-end', data: {completed: outcome.completed, dryRun: run.dryRun}})
  return {...outcome, run: journal.run, playbook: playbook.name, dryRun: run.dryRun, journal: journal.path}
}
