// recover-master: choose the playbook for the murder's mode and the safest source, then run it.
import {AbortError, InventoryError, RefusedError} from '../errors.js'
import type {RecoverOptions, RunContext} from '../engine/context.js'
import {type EngineHooks, type RunOutcome, runPlaybook} from '../engine/engine.js'
import {Journal, newRunId} from '../engine/journal.js'
import {builtinPlaybook, loadPlaybook, type Playbook} from '../engine/playbook.js'
import {hostsByRole} from '../inventory/load.js'
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
  if (kind !== 'auto') throw new InventoryError(`--source ${spec}: expected auto, backends, frontend[=NAME] or backup[=DIR]`)
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

export async function recoverMaster(ctx: MurderContext, req: RecoverRequest, hooks: EngineHooks): Promise<RecoverResult> {
  let journal: Journal
  let options: RecoverOptions
  let playbook: Playbook
  let playbookName: string
  if (req.resume) {
    try {
      journal = Journal.open(ctx.inv.stateDir, req.resume)
    } catch (error) {
      throw new InventoryError((error as Error).message, {hint: `runs are in ${ctx.inv.stateDir}/runs`})
    }
    const start = journal.events().find((e) => e.event === 'run-start')
    if (!start?.data) throw new AbortError(`run ${req.resume} has no start record`, {hint: 'start a new run'})
    options = start.data.options as RecoverOptions
    playbookName = String(start.data.playbook)
    playbook = start.data.playbookFile ? loadPlaybook(String(start.data.playbookFile)) : builtinPlaybook(ctx.inv.mode, options.source)
    hooks.progress(`resuming run ${req.resume} (${playbookName})`)
  } else {
    options = {...(await resolveSource(ctx, req.source)), force: req.force}
    playbook = req.playbookFile ? loadPlaybook(req.playbookFile) : builtinPlaybook(ctx.inv.mode, options.source)
    if (playbook.mode !== ctx.inv.mode) throw new RefusedError(`playbook ${playbook.name} is for a ${playbook.mode} murder; the inventory says ${ctx.inv.mode}`)
    playbookName = playbook.name
    journal = new Journal(ctx.inv.stateDir, newRunId(req.dryRun ? 'recover-master-dry' : 'recover-master'))
    journal.write({event: 'run-start', data: {command: 'recover-master', playbook: playbook.name, playbookFile: req.playbookFile, options, dryRun: req.dryRun}})
  }
  const rc: RunContext = {murder: ctx, journal, runId: journal.run, dryRun: req.dryRun, resumed: Boolean(req.resume), options, diffs: new Map(), pending: new Map()}
  const resumeHint = `continue with: murderctl recover-master -i ${ctx.inv.path} --resume ${journal.run}`
  hooks.progress(`${req.dryRun ? 'dry run of' : 'running'} ${playbook.name} (source: ${options.source}${options.frontend ? ` ${options.frontend}` : ''}${options.backupPath ? ` ${options.backupPath}` : ''}); journal ${journal.path}`)
  const outcome = await runPlaybook(rc, playbook, hooks, resumeHint)
  journal.write({event: 'run-end', data: {completed: outcome.completed, dryRun: req.dryRun}})
  return {...outcome, run: journal.run, playbook: playbookName, source: options, dryRun: req.dryRun, journal: journal.path}
}
