// murderctl failover: which way a replication pair goes is read from its members, then the
// failover playbook (playbooks/failover-controlled.yaml or failover-hard.yaml) runs on the engine
// with the selectors old-master and new-master. `pair fence` and `pair replicate` are the two
// small runs around a hard failover.
import {AbortError, RefusedError, UnreachableError} from '../errors.js'
import {applyConfigs, configDiff, type Fc, FailoverOptions, replicate, startOld, type StepReport, stopMember} from '../engine/actions/pair.js'
import type {EngineHooks} from '../engine/engine.js'
import {Journal, newRunId} from '../engine/journal.js'
import {builtinPlaybook, loadPlaybook, type Playbook} from '../engine/playbook.js'
import {toReplicaConfig} from '../cyrus/pair-config.js'
import type {MurderContext} from '../host/context.js'
import {activeOf, findPair, otherMember, type Pair, readMember} from '../host/pair.js'
import type {Host} from '../inventory/schema.js'
import {readFence} from '../store/fence.js'
import {executeRun, newRun, openRun, type PlaybookRunResult, rollbackStoppedRun, type RollbackResult} from './runs.js'

export interface FailoverRequest {
  pair: string
  to?: string
  hard: boolean
  dryRun: boolean
  force: boolean
  full: boolean
  resume?: string
  playbookFile?: string
}

export interface FailoverResult extends PlaybookRunResult {
  pair: string
  kind: 'controlled' | 'hard'
  from: string
  to: string
  /** From the old master stopping (hard: the first change) until a frontend served the pair again. */
  serviceGapMs?: number
  verify?: Record<string, unknown>
  cutoff?: string
  fenced?: string
}

export interface PairRunResult {
  run: string
  journal: string
  pair: string
  kind: 'controlled' | 'hard' | 'fence'
  from: string
  to: string
  dryRun: boolean
  steps: StepReport[]
  fenced?: string
}

export const SELECTORS = ['old-master', 'new-master'] as const

/** Which member is master now, read from the hosts, and which one takes over. */
async function discover(ctx: MurderContext, pair: Pair, req: FailoverRequest): Promise<{from: Host; to: Host}> {
  const reads = await Promise.all(pair.members.map((m) => readMember(ctx, m)))
  const {active} = activeOf(reads.map((r) => r.state))
  let from: Host | undefined
  if (active) from = pair.members.find((m) => m.name === active)
  else if (req.hard) {
    // The dead master: the member that cannot be read (or whose files still say master with Cyrus down).
    const dead = reads.filter((r) => !r.state.reachable || (r.state.config === 'master' && !r.state.cyrusMaster.running))
    if (dead.length === 1) from = pair.members.find((m) => m.name === dead[0]!.state.name)
  }
  if (!from) {
    const desc = reads
      .map(
        (r) =>
          `${r.state.name}: ${r.state.reachable ? `${r.state.config} config, cyrus-master ${r.state.cyrusMaster.running ? 'up' : 'down'}` : 'unreachable'}`,
      )
      .join('; ')
    throw new RefusedError(`cannot tell which member of pair ${pair.name} is master (${desc})`, {
      step: 'discover',
      hint: req.hard ? 'a hard failover needs exactly one dead member' : `if the master is dead: murderctl failover ${pair.name} --hard`,
    })
  }
  if (req.to && !pair.members.some((m) => m.name === req.to))
    throw new RefusedError(`${req.to} is not a member of pair ${pair.name} (${pair.members.map((m) => m.name).join(', ')})`, {step: 'discover'})
  if (req.to && req.to === from.name)
    throw new RefusedError(`${req.to} is already the active member of pair ${pair.name}`, {step: 'discover', hint: 'nothing to do'})
  return {from, to: otherMember(pair, from.name)}
}

function choosePlaybook(kind: 'controlled' | 'hard', file?: string): Playbook {
  const expect = {command: 'failover', selectors: SELECTORS}
  return file ? loadPlaybook(file, expect) : builtinPlaybook(`failover-${kind}`, expect)
}

export async function failover(ctx: MurderContext, req: FailoverRequest, hooks: EngineHooks): Promise<FailoverResult> {
  const pair = findPair(ctx.inv, req.pair)
  let options: FailoverOptions
  let journal: Journal
  let playbook: Playbook
  if (req.resume) {
    const opened = openRun(ctx, req.resume, 'failover')
    journal = opened.journal
    options = FailoverOptions.parse(opened.start.options)
    if (options.pair !== pair.name) throw new RefusedError(`run ${req.resume} is a failover of pair ${options.pair}, not ${pair.name}`, {step: 'resume'})
    playbook = choosePlaybook(options.kind, opened.start.playbookFile)
    hooks.progress(`resuming run ${req.resume} (${playbook.name})`)
  } else {
    const {from, to} = await discover(ctx, pair, req)
    options = FailoverOptions.parse({pair: pair.name, kind: req.hard ? 'hard' : 'controlled', from: from.name, to: to.name, force: req.force, full: req.full})
    playbook = choosePlaybook(options.kind, req.playbookFile)
    journal = newRun(ctx, {command: 'failover', playbook: playbook.name, playbookFile: req.playbookFile, options, dryRun: req.dryRun})
  }
  const member = (n: string) => pair.members.find((m) => m.name === n)!
  hooks.progress(
    `${req.dryRun ? 'dry run of a ' : ''}${options.kind} failover of pair ${pair.name} (${pair.servername}): ${options.from} -> ${options.to}; journal ${journal.path}`,
  )
  const resumeHint = `continue with: murderctl failover ${pair.name} -i ${ctx.inv.path} --resume ${journal.run}`
  const rollbackHint = `murderctl failover ${pair.name} -i ${ctx.inv.path} --rollback ${journal.run}`
  const run = await executeRun(
    ctx,
    journal,
    playbook,
    {
      options,
      dryRun: req.dryRun,
      resumed: Boolean(req.resume),
      selectors: {'old-master': [member(options.from)], 'new-master': [member(options.to)]},
      resumeHint,
      rollbackHint,
    },
    hooks,
  )
  const result: FailoverResult = {...run, pair: pair.name, kind: options.kind, from: options.from, to: options.to}
  // The figures the actions journaled.
  const events = journal.events()
  const mark = (name: string) => (events.find((e) => e.event === 'note' && (e.data as {mark?: string})?.mark === name)?.data as {at?: number} | undefined)?.at
  const begin = mark('stopStartedAt') ?? mark('firstChangeAt')
  const served = mark('servedAt')
  if (begin && served) result.serviceGapMs = served - begin
  const verify = events.find((e) => e.event === 'note' && e.step === 'verify')?.data
  if (verify) result.verify = verify
  const cutoff = events.find((e) => e.event === 'note' && (e.data as {cutoff?: string})?.cutoff)?.data as {cutoff?: string} | undefined
  if (cutoff?.cutoff) result.cutoff = cutoff.cutoff
  if (options.kind === 'hard' && run.completed && !req.dryRun) result.fenced = options.from
  return result
}

/**
 * --rollback RUN: a failover that stopped before its new master started, undone: the service
 * address moved back, both members' configs put back from their journaled copies, each member
 * started as it ran before, the lock given back, verified. Refused once the new master started
 * (the playbook marks that step irreversible): it may have taken mail, and the way back is then
 * a failover the other way.
 */
export function rollbackFailover(ctx: MurderContext, pairName: string, run: string, dryRun: boolean, hooks: EngineHooks): Promise<RollbackResult> {
  const pair = findPair(ctx.inv, pairName)
  return rollbackStoppedRun(
    ctx,
    run,
    'failover',
    (start) => {
      const o = FailoverOptions.parse(start.options)
      if (o.pair !== pair.name) throw new RefusedError(`run ${run} is a failover of pair ${o.pair}, not ${pair.name}`, {step: 'rollback'})
      return choosePlaybook(o.kind, start.playbookFile)
    },
    {dryRun},
    hooks,
  )
}

// ---- pair fence --------------------------------------------------------------------------------

export interface FenceOptions {
  member: string
  dryRun: boolean
  confirm: (question: string, detail?: string) => Promise<boolean>
  progress: (line: string) => void
}

/**
 * Rewrite a returning old master's configs to the replica ones, without starting Cyrus (it is
 * stopped first if it runs). Refused when the member is the pair's only master.
 */
export async function fenceMember(ctx: MurderContext, opts: FenceOptions): Promise<PairRunResult> {
  const host = ctx.inv.hosts.find((h) => h.name === opts.member)
  const pair = host && (host.role === 'replica' ? findPair(ctx.inv, host.replicaOf!) : findPair(ctx.inv, host.name))
  if (!host || !pair) throw new RefusedError(`${opts.member} is not a member of a replication pair`, {step: 'fence'})
  const peer = otherMember(pair, host.name)
  const [me, other] = await Promise.all([readMember(ctx, host), readMember(ctx, peer)])
  if (!me.state.reachable) throw new UnreachableError(`${host.name} cannot be read: ${me.state.error}`, {host: host.name, step: 'fence'})
  if (!(other.state.config === 'master' && other.state.cyrusMaster.running) && !readFence(ctx.inv.stateDir, host.name))
    throw new RefusedError(
      `${peer.name} is not a running master and ${host.name} is not marked FENCED: fencing ${host.name} would leave the pair without a master`,
      {host: host.name, step: 'fence'},
    )
  const run = newRunId('fence')
  const journal = new Journal(ctx.inv.stateDir, run)
  journal.write({event: 'run-start', data: {pair: pair.name, kind: 'fence', from: host.name, to: peer.name, dryRun: opts.dryRun}})
  const fc: Fc = {ctx, opts: {force: false, full: false, progress: opts.progress}, pair, from: host, to: peer, journal, run, kind: 'hard', marks: {}, facts: {}}
  const steps: StepReport[] = []
  const result: PairRunResult = {run, journal: journal.path, pair: pair.name, kind: 'fence', from: host.name, to: peer.name, dryRun: opts.dryRun, steps}
  const cur = {imapd: me.imapdText!, cyrus: me.cyrusText!}
  const next = toReplicaConfig(cur, {unified: ctx.inv.mode === 'unified'})
  const running = me.state.cyrusMaster.running
  if (opts.dryRun) {
    if (running) steps.push({id: 'stop', title: `Stop cyrus-master on ${host.name}`, status: 'planned', detail: host.cyrus.stop})
    steps.push({
      id: 'fence',
      title: `Replica config on ${host.name}, Cyrus not started`,
      status: 'planned',
      detail: `${configDiff(cur.imapd, next.imapd)}\n${configDiff(cur.cyrus, next.cyrus)}`,
    })
    journal.write({event: 'run-end', data: {outcome: 'dry-run'}})
    return result
  }
  try {
    if (
      !(await opts.confirm(`Fence ${host.name}: ${running ? 'stop its cyrus-master and ' : ''}rewrite its configs to the replica ones (Cyrus is not started)?`))
    )
      throw new RefusedError('not confirmed: nothing changed', {step: 'fence'})
    if (running) steps.push({id: 'stop', title: `Stop cyrus-master on ${host.name}`, status: 'done', detail: await stopMember(fc, host, 'stop')})
    const detail = await applyConfigs(fc, host, next, 'fence')
    const after = await readMember(ctx, host)
    if (after.state.config !== 'replica')
      throw new AbortError(`${host.name} still does not hold the replica config (${after.state.config})`, {host: host.name, step: 'fence'})
    steps.push({id: 'fence', title: `Replica config on ${host.name}, Cyrus not started`, status: 'done', detail})
  } catch (error) {
    journal.write({event: 'run-end', data: {outcome: 'failed'}})
    throw error
  }
  journal.write({event: 'run-end', data: {outcome: 'done'}})
  result.fenced = host.name
  return result
}

// ---- pair replicate ----------------------------------------------------------------------------

/**
 * Start (or restart) replication from the pair's master towards the other member: the member must
 * hold the replica config and not be FENCED; its Cyrus is started if stopped, then the master's
 * rolling client is enabled. What a hard failover leaves for after reconcile.
 */
export async function startReplication(
  ctx: MurderContext,
  opts: {pair: string; dryRun: boolean; confirm: (q: string) => Promise<boolean>; progress: (l: string) => void},
): Promise<PairRunResult> {
  const pair = findPair(ctx.inv, opts.pair)
  const reads = await Promise.all(pair.members.map((m) => readMember(ctx, m)))
  const {active, conflict} = activeOf(reads.map((r) => r.state))
  if (conflict) throw new RefusedError(`pair ${pair.name}: ${conflict}`, {step: 'replicate'})
  if (!active) throw new RefusedError(`pair ${pair.name} has no running master`, {step: 'replicate'})
  const from = pair.members.find((m) => m.name === active)!
  const to = otherMember(pair, active)
  const target = reads.find((r) => r.state.name === to.name)!.state
  const f = readFence(ctx.inv.stateDir, to.name)
  if (f) throw new RefusedError(`${to.name} is FENCED since ${f.at}: no replication towards it until reconcile has run`, {host: to.name, step: 'replicate'})
  if (!target.reachable) throw new UnreachableError(`${to.name} cannot be read: ${target.error}`, {host: to.name, step: 'replicate'})
  if (target.config !== 'replica')
    throw new RefusedError(`${to.name} holds the ${target.config} config, not the replica one`, {
      host: to.name,
      step: 'replicate',
      hint: `murderctl pair fence ${to.name}`,
    })
  const run = newRunId('replicate')
  const journal = new Journal(ctx.inv.stateDir, run)
  journal.write({event: 'run-start', data: {pair: pair.name, kind: 'replicate', from: active, to: to.name, dryRun: opts.dryRun}})
  // Roles as in a failover's last steps: `from` is the replica side there, so swap.
  const fc: Fc = {
    ctx,
    opts: {force: false, full: false, progress: opts.progress},
    pair,
    from: to,
    to: from,
    journal,
    run,
    kind: 'controlled',
    marks: {},
    facts: {},
  }
  const steps: StepReport[] = []
  const result: PairRunResult = {run, journal: journal.path, pair: pair.name, kind: 'controlled', from: active, to: to.name, dryRun: opts.dryRun, steps}
  const plan = [
    ...(target.cyrusMaster.running ? [] : [{id: 'start-old', title: `Start ${to.name} as replica`, run: startOld}]),
    {id: 'replicate', title: `Rolling replication ${active} -> ${to.name}`, run: replicate},
  ]
  if (opts.dryRun) {
    for (const s of plan) steps.push({id: s.id, title: s.title, status: 'planned'})
    journal.write({event: 'run-end', data: {outcome: 'dry-run'}})
    return result
  }
  if (!(await opts.confirm(`Start replication ${active} -> ${to.name}?`))) throw new RefusedError('not confirmed: nothing changed', {step: 'replicate'})
  try {
    for (const s of plan) {
      journal.write({event: 'step-start', step: s.id})
      const detail = (await s.run(fc)) ?? ''
      journal.write({event: 'step-done', step: s.id, data: {detail}})
      steps.push({id: s.id, title: s.title, status: 'done', detail})
    }
  } catch (error) {
    journal.write({event: 'run-end', data: {outcome: 'failed'}})
    throw error
  }
  journal.write({event: 'run-end', data: {outcome: 'done'}})
  return result
}
