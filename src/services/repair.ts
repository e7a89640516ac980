// replication repair: find the pair's UID conflicts (an audit, read-only), then run
// playbooks/replication-repair.yaml through the engine with them as the run's options: plan,
// consent before the first change, journal, resume, like every mutating command.
import {RefusedError, AbortError} from '../errors.js'
import type {EngineHooks} from '../engine/engine.js'
import {RepairOptions, type RepairConflict} from '../engine/actions/replication.js'
import {builtinPlaybook} from '../engine/playbook.js'
import type {MurderContext} from '../host/context.js'
import {headerSummary, inspectMessageFile} from '../host/message-file.js'
import type {Host} from '../inventory/schema.js'
import {auditPair, type Pair, pairRoles} from './audit.js'
import {executeRun, newRun, openRun, type PlaybookRunResult} from './runs.js'

export {RepairOptions, type RepairConflict} from '../engine/actions/replication.js'

const COMMAND = 'replication-repair'
const SELECTORS = ['pair-master', 'pair-replica', 'pair-members'] as const

export interface RepairRequest {
  mailboxes?: string[]
  users?: string[]
  dryRun: boolean
  resume?: string
  /** Repair even though the rolling sync_client runs (Cyrus 3.6 would renumber by itself). */
  force?: boolean
}

export interface RepairResult extends PlaybookRunResult {
  pair: string
  master: string
  replica: string
  conflicts: RepairConflict[]
  /** Per conflict after the run: the new UID of each version (the same on both members). */
  verified: {mailbox: string; uid: number; uids: Record<string, number>}[]
}

/** The conflicts of a pair, each inspected (read-only). */
export async function planRepair(ctx: MurderContext, pair: Pair, req: RepairRequest): Promise<RepairOptions> {
  const audit = await auditPair(ctx, pair, {selection: {users: req.users ?? [], mailboxes: req.mailboxes ?? []}, settleSeconds: 0, logs: false})
  const bad = audit.members.filter((m) => !m.readable)
  if (bad.length)
    throw new AbortError(`cannot plan the repair: ${bad.map((b) => b.error).join('; ')}`, {step: 'plan', hint: 'bring the member back, then run again'})
  const roles = audit.roles!
  if (!req.force && roles.members.find((m) => m.host === roles.master)?.rollingClientRunning)
    throw new RefusedError(`the rolling sync_client runs on ${roles.master}: Cyrus 3.6 renumbers a conflict itself at the next sync of its mailbox`, {
      step: 'plan',
      hint: `run murderctl replication audit ${pair.backend.name} after a minute; repair is for conflicts replication does not resolve (stop the rolling sync_client first, or --force)`,
    })
  const member = (n: string) => [pair.backend, pair.replica].find((h) => h.name === n)!
  const conflicts: RepairConflict[] = []
  for (const m of audit.mailboxes)
    for (const c of m.conflicts) {
      const [mf, rf] = await Promise.all([
        inspectMessageFile(ctx, member(roles.master), m.name, c.uid),
        inspectMessageFile(ctx, member(roles.replica), m.name, c.uid),
      ])
      conflicts.push({
        mailbox: m.name,
        uid: c.uid,
        master: c.master,
        replica: c.replica,
        inspect: {master: mf && headerSummary(mf.headers), replica: rf && headerSummary(rf.headers)},
      })
    }
  return {pair: pair.backend.name, master: roles.master, replica: roles.replica, conflicts}
}

export async function repairPair(ctx: MurderContext, pair: Pair, req: RepairRequest, hooks: EngineHooks): Promise<RepairResult> {
  const playbook = builtinPlaybook('replication-repair', {command: COMMAND, selectors: SELECTORS})
  let options: RepairOptions
  let journal
  if (req.resume) {
    const opened = openRun(ctx, req.resume, COMMAND)
    journal = opened.journal
    options = RepairOptions.parse(opened.start.options)
    hooks.progress(`resuming run ${req.resume}: ${options.conflicts.length} conflicts`)
  } else {
    options = await planRepair(ctx, pair, req)
    if (!options.conflicts.length) {
      hooks.progress(`no UID conflicts on ${options.master}/${options.replica}: nothing to repair`)
      return {
        run: '',
        playbook: playbook.name,
        dryRun: req.dryRun,
        journal: '',
        results: [],
        completed: true,
        plan: [],
        pair: pair.backend.name,
        master: options.master,
        replica: options.replica,
        conflicts: [],
        verified: [],
      }
    }
    journal = newRun(ctx, {command: COMMAND, playbook: playbook.name, options, dryRun: req.dryRun})
  }
  const member = (n: string): Host => [pair.backend, pair.replica].find((h) => h.name === n)!
  // The members must not have swapped since the plan (a failover in between).
  const now = await pairRoles(ctx, pair)
  if (now.master !== options.master)
    throw new RefusedError(`the plan was made with ${options.master} as master; the hosts now say ${now.master}`, {hint: 'start a new run (without --resume)'})
  const selectors = {
    'pair-master': [member(options.master)],
    'pair-replica': [member(options.replica)],
    'pair-members': [member(options.master), member(options.replica)],
  }
  const resumeHint = `continue with: murderctl replication repair ${pair.backend.name} -i ${ctx.inv.path} --resume ${journal.run}`
  const result = await executeRun(ctx, journal, playbook, {options, dryRun: req.dryRun, resumed: Boolean(req.resume), selectors, resumeHint}, hooks)
  const verified = (result.results.find((r) => r.step === 'verify' && r.status === 'done')?.data?.verified ?? []) as RepairResult['verified']
  return {...result, pair: pair.backend.name, master: options.master, replica: options.replica, conflicts: options.conflicts, verified}
}
