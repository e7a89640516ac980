// Runs a playbook: step after step, each on its hosts in parallel (bounded), journaled, each
// done when its post-condition holds. A run that stops says where and how to resume; a resumed
// run skips what the journal says is done.
import {writeSync} from 'node:fs'
import {AbortError, asMurderctlError, ExitCode, MurderctlError, NeedsConfirmationError} from '../errors.js'
import {hostsByRole, master, slaveHosts} from '../inventory/load.js'
import type {Host} from '../inventory/schema.js'
import {mapLimit} from '../util/limit.js'
import {ACTIONS, type ActionRegistry} from './actions/index.js'
import type {Action} from './actions/types.js'
import {checkCondition} from './conditions.js'
import type {PushDiff, RunContext} from './context.js'
import {watchInterrupts} from './interrupt.js'
import type {JournalEvent} from './journal.js'
import {batchesOf, type Playbook, type Step} from './schema.js'

export interface UnitResult {
  step: string
  host?: string
  status: 'done' | 'skipped' | 'already-done' | 'planned' | 'failed'
  detail?: string
  data?: Record<string, unknown>
}

/** One mutating step still to run, as the plan shows it before anything changes. */
export interface PlannedStep {
  step: string
  title: string
  hosts: {host?: string; does: string}[]
  /** Shows its diff and asks again before going on. */
  confirm: boolean
  undo?: string
}

export interface EngineHooks {
  /** A line of progress for people. */
  progress: (line: string) => void
  /**
   * Run a batch of steps (one, or steps that run alongside each other) with their own progress
   * display (listr2 on a terminal); default: plain lines. Every run is awaited; the results in
   * the batch's order.
   */
  runSteps?: (batch: StepRun[], total: number) => Promise<PromiseSettledResult<UnitResult[]>[]>
  /**
   * The first gate: the mutating steps still to run, shown once before the first of them
   * changes anything. false (or NeedsConfirmationError without a terminal) stops with nothing changed.
   */
  consent: (plan: PlannedStep[]) => Promise<boolean>
  /** The second gate: show the diffs collected so far and ask; false stops the run. */
  confirm: (step: Step, diffs: PushDiff[], fullDiffPath: string) => Promise<boolean>
  /** Who consents, for the journal: '--yes' or 'prompt'. */
  consentBy: '--yes' | 'prompt'
  /** Take Ctrl-C / SIGTERM: finish the step in flight, then stop resumably (commands, not tests). */
  interruptible?: boolean
  /** The actions to run by (tests give their own); default: the shipped ones. */
  actions?: ActionRegistry
}

/** One step of a batch: its place in the playbook and what runs it on its hosts. */
export interface StepRun {
  step: Step
  index: number
  run: () => Promise<UnitResult[]>
}

/** Raised when a run stops part-way: names the step and how to go on. */
export class RunStoppedError extends MurderctlError {
  constructor(
    message: string,
    readonly stoppedAt: string,
    readonly results: UnitResult[],
    ctx: {host?: string; hint: string; code?: 'failed' | 'refused' | 'needsConfirmation' | 'unreachable' | 'hostKey' | 'timeout' | 'interrupted'},
  ) {
    super(ctx.code ?? 'failed', message, {host: ctx.host, step: stoppedAt, hint: ctx.hint})
  }

  override toJSON(): Record<string, unknown> {
    return {...super.toJSON(), stoppedAt: this.stoppedAt, results: this.results}
  }
}

export function stepHosts(rc: RunContext, step: Step): (Host | undefined)[] {
  const inv = rc.murder.inv
  const provided = rc.selectors[step.hosts]
  if (provided) return typeof provided === 'function' ? provided(rc) : provided
  switch (step.hosts) {
    case 'master':
      return [master(inv)]
    case 'frontends':
      return hostsByRole(inv, 'frontend')
    case 'backends':
      return hostsByRole(inv, 'backend')
    case 'slaves':
      return slaveHosts(inv)
    case 'none':
      return [undefined]
  }
  throw new AbortError(`step ${step.id} names host selector "${step.hosts}", which this command does not provide`, {step: step.id})
}

const unitKey = (step: string, host?: string) => (host ? `${step}@${host}` : step)

/** (step, host) pairs a journal says are done. */
export function doneUnits(rc: RunContext): Set<string> {
  return new Set(
    rc.journal
      .events()
      .filter((e) => e.event === 'step-done' && e.step)
      .map((e) => unitKey(e.step!, e.host)),
  )
}

const actionOf = (hooks: EngineHooks, step: Step): Action<any> => {
  const a = (hooks.actions ?? (ACTIONS as ActionRegistry))[step.action]
  if (!a) throw new AbortError(`unknown action ${step.action}`, {step: step.id})
  return a
}

async function runUnit(rc: RunContext, hooks: EngineHooks, step: Step, host: Host | undefined, done: Set<string>): Promise<UnitResult> {
  const action = actionOf(hooks, step)
  const params = action.params.parse(step.params)
  const base = {step: step.id, host: host?.name}
  if (rc.dryRun && (action.mutating || action.planOnly)) return {...base, status: 'planned', detail: action.describe(rc, params, host)}
  // Read-only steps run again on resume (a preflight or a diff must be fresh); others do not.
  const doneEarlier = !rc.dryRun && action.mutating && done.has(unitKey(step.id, host?.name))
  if (doneEarlier && !(step.recheck && host && step.post)) return {...base, status: 'already-done', detail: 'done earlier in this run'}
  try {
    if (doneEarlier && host && step.post) {
      // recheck: done earlier; run again only if what it established was lost since.
      const still = await checkCondition(rc, step.post, host)
      if (still.ok) return {...base, status: 'already-done', detail: 'done earlier in this run'}
      rc.journal.write({event: 'note', step: step.id, host: host.name, data: {again: `done earlier, but ${step.post} no longer holds: ${still.detail}`}})
    }
    if (host && step.pre) {
      const pre = await checkCondition(rc, step.pre, host)
      if (!pre.ok) throw new AbortError(`precondition ${step.pre} does not hold: ${pre.detail}`, {host: host.name, step: step.id})
    }
    const pending = host && step.post ? rc.pending.get(`${step.post}@${host.name}`) : undefined
    if (host && step.post && action.mutating && pending === undefined) {
      const already = await checkCondition(rc, step.post, host)
      if (already.ok) {
        rc.journal.write({event: 'step-done', step: step.id, host: host.name, data: {alreadyHeld: already.detail}})
        return {...base, status: 'skipped', detail: `${already.detail} already`}
      }
    }
    // Journaled first: from here on a rollback is refused, even if the step then fails.
    if (step.irreversible) rc.journal.write({event: 'note', step: step.id, host: host?.name, data: {irreversible: withOptions(step.irreversible, rc.options)}})
    rc.journal.write({event: 'step-start', step: step.id, host: host?.name})
    const data = (await action.run(rc, step, params, host)) ?? {}
    if (host && step.post) rc.pending.delete(`${step.post}@${host.name}`)
    let detail: string | undefined
    if (host && step.post) {
      const post = await checkCondition(rc, step.post, host, {settle: true})
      if (!post.ok) throw new AbortError(`the step ran but ${step.post} does not hold: ${post.detail}`, {host: host.name, step: step.id})
      detail = post.detail
    }
    // Without a post-condition, the action's own one-line summary (a diff's counts) is the detail.
    if (detail === undefined && typeof data.summary === 'string') detail = data.summary
    if (!rc.dryRun) rc.journal.write({event: 'step-done', step: step.id, host: host?.name, data})
    return {...base, status: 'done', detail, data}
  } catch (error) {
    const e = asMurderctlError(error).at({host: host?.name, step: step.id})
    // In a dry run, a read-only step after planned changes (a diff against a master that is not
    // restored yet) may not be computable now: that is part of the plan, not a failure.
    if (rc.dryRun && step.action !== 'preflight')
      return {...base, status: 'planned', detail: `${action.describe(rc, params, host)} (cannot preview now: ${e.message})`}
    rc.journal.write({event: 'step-failed', step: step.id, host: host?.name, data: {error: e.oneLine(), code: e.code}})
    return {...base, status: 'failed', detail: `${e.host ? `${e.host}: ` : ''}${e.message}`, data: {error: e.toJSON()}}
  }
}

/**
 * Before a step changes anything, every host it will touch must answer: a step is done on all
 * its hosts or on none, never on some while another is out of reach.
 */
async function assertReachable(rc: RunContext, step: Step, results: UnitResult[], resumeHint: string): Promise<void> {
  const hosts = stepHosts(rc, step).filter((h): h is Host => h !== undefined)
  const down = (
    await mapLimit(hosts, rc.murder.concurrency, async (h) => {
      try {
        await rc.murder.pool.execOk(h, ['true'])
        return null
      } catch (error) {
        return asMurderctlError(error).at({host: h.name, step: step.id})
      }
    })
  ).filter((e): e is MurderctlError => e !== null)
  if (down.length) {
    rc.journal.write({event: 'step-failed', step: step.id, data: {unreachable: down.map((e) => e.oneLine())}})
    throw new RunStoppedError(`stopped before step ${step.id}, nothing done in it: ${down.map((e) => e.oneLine()).join('; ')}`, step.id, results, {
      host: down[0].host,
      code: down[0].code === 'hostKey' ? 'hostKey' : 'unreachable',
      hint: `bring ${down.map((e) => e.host).join(', ')} back, then ${resumeHint}`,
    })
  }
}

export interface RunOutcome {
  results: UnitResult[]
  completed: boolean
  /** The mutating steps this invocation planned (what a dry run would do; what consent covered). */
  plan: PlannedStep[]
}

/** The mutating steps from `from` on that are not done yet, each with what it does per host. */
export function planOf(rc: RunContext, hooks: EngineHooks, steps: Step[], done: Set<string>): PlannedStep[] {
  return steps.flatMap((step) => {
    const action = actionOf(hooks, step)
    if (!action.mutating) return []
    const params = action.params.parse(step.params)
    const hosts = stepHosts(rc, step)
      .filter((h) => !done.has(unitKey(step.id, h?.name)))
      .map((h) => ({host: h?.name, does: action.describe(rc, params, h)}))
    return hosts.length ? [{step: step.id, title: step.title, hosts, confirm: step.confirm, undo: step.undo}] : []
  })
}

/**
 * Straight to fd 2: a terminal's progress display (listr2) holds back process.stderr while it
 * renders, and an exit at once would lose the message with the resume command in it.
 */
const say = (msg: string) => {
  try {
    writeSync(2, msg)
  } catch {}
}

/**
 * How to go on after a stop: resume, and, once a mutating step has started (there is something
 * to undo), roll back.
 */
export function stopHint(rc: RunContext, playbook: Playbook, hooks: EngineHooks, resumeHint: string, rollbackHint?: string): string {
  if (!rollbackHint || rc.dryRun) return resumeHint
  const events = rc.journal.events()
  const past = pastNoReturn(events)
  if (past) return `${resumeHint} (it cannot be rolled back: ${past.reason})`
  const mutating = new Set(playbook.steps.filter((s) => actionOf(hooks, s).mutating).map((s) => s.id))
  const changed = events.some((e) => (e.event === 'step-start' || e.event === 'saved-copy') && mutating.has(e.step ?? ''))
  return changed ? `${resumeHint} or undo what it did: ${rollbackHint}` : resumeHint
}

/** A playbook's text with the run's options filled in ({pair}, {from}: the run's own names). */
export function withOptions(text: string, options: Record<string, unknown>): string {
  return text.replace(/\{([A-Za-z]+)\}/g, (m, k: string) => (typeof options[k] === 'string' ? (options[k] as string) : m))
}

/** The irreversible step a run has started, if any (its journaled note): past it, no rollback. */
export function pastNoReturn(events: readonly (Pick<JournalEvent, 'step' | 'data'> & {event: string})[]): {step: string; reason: string} | undefined {
  const e = events.find((x) => x.event === 'note' && typeof x.data?.irreversible === 'string')
  return e ? {step: e.step ?? '', reason: e.data!.irreversible as string} : undefined
}

export async function runPlaybook(rc: RunContext, playbook: Playbook, hooks: EngineHooks, resumeHint: string, rollbackHint?: string): Promise<RunOutcome> {
  let current = playbook.steps[0]?.id ?? ''
  const watch = hooks.interruptible
    ? watchInterrupts(
        () => say(`\nmurderctl: interrupted: finishing step ${current} on its hosts, then stopping (interrupt again to stop at once)\n`),
        () => {
          rc.journal.write({event: 'interrupted', step: current, data: {atOnce: true}})
          say(
            `murderctl: stopped at once during step ${current}; its commands may still be running on the hosts (the journal lists them): check with murderctl status, then ${stopHint(rc, playbook, hooks, resumeHint, rollbackHint)}\n`,
          )
          process.exit(ExitCode.interrupted)
        },
      )
    : undefined
  try {
    return await runSteps(rc, playbook, hooks, {resume: resumeHint, rollback: rollbackHint}, (steps) => {
      if (watch?.requested) {
        rc.journal.write({event: 'interrupted', step: steps[0].id})
        return true
      }
      current = steps.map((s) => s.id).join(' and ')
      return false
    })
  } finally {
    watch?.dispose()
    // Scratch no later step took (the run stopped before it): removed, best effort.
    await Promise.all([...rc.cleanups.values()].map((c) => c().catch(() => {})))
    rc.cleanups.clear()
  }
}

/** The steps in order, in batches (steps alongside each other run at once); `stopBefore` is asked before each batch (an interrupt came). */
async function runSteps(
  rc: RunContext,
  playbook: Playbook,
  hooks: EngineHooks,
  hints: {resume: string; rollback?: string},
  stopBefore: (steps: Step[]) => boolean,
): Promise<RunOutcome> {
  // Read when a stop is raised: rollback is offered once something was changed.
  const next = (resume = hints.resume) => stopHint(rc, playbook, hooks, resume, hints.rollback)
  const done = rc.dryRun ? new Set<string>() : doneUnits(rc)
  const results: UnitResult[] = []
  let plan: PlannedStep[] = []
  let consented = rc.dryRun
  const total = playbook.steps.length
  if (!rc.resumed) await precheck(rc, hooks, playbook.steps)
  for (const batch of batchesOf(playbook.steps)) {
    const [lead] = batch.steps
    if (stopBefore(batch.steps))
      throw new RunStoppedError(`interrupted: stopped before step ${lead.id}; every step before it is done`, lead.id, results, {
        code: 'interrupted',
        hint: next(),
      })
    const firstMutating = batch.steps.find((s) => actionOf(hooks, s).mutating)
    if (firstMutating && !consented) {
      // The first gate: everything this run will still change, shown before the first change.
      plan = planOf(rc, hooks, playbook.steps.slice(batch.index), done)
      if (plan.length) {
        rc.journal.keep('plan.json', `${JSON.stringify(plan, null, 2)}\n`)
        await gate(rc, firstMutating, results, hints.resume, next, 'plan', () => hooks.consent(plan), hooks.consentBy, 'nothing was changed')
      }
      consented = true
    }
    const runs: StepRun[] = batch.steps.map((step, j) => ({
      step,
      index: batch.index + j,
      run: async () => {
        if (!rc.dryRun && actionOf(hooks, step).mutating) await assertReachable(rc, step, results, next())
        return mapLimit(stepHosts(rc, step), rc.murder.concurrency, (h) => runUnit(rc, hooks, step, h, done))
      },
    }))
    let settled: PromiseSettledResult<UnitResult[]>[]
    if (hooks.runSteps) settled = await hooks.runSteps(runs, total)
    else {
      for (const r of runs) hooks.progress(`[${r.index + 1}/${total}] ${r.step.title}`)
      // Every step of the batch finishes (or fails) before the run goes on or stops.
      settled = await Promise.allSettled(runs.map((r) => r.run()))
      for (const x of settled)
        if (x.status === 'fulfilled')
          for (const u of x.value)
            hooks.progress(`    ${u.status === 'failed' ? 'FAILED' : u.status}${u.host ? ` ${u.host}` : ''}${u.detail ? `: ${u.detail}` : ''}`)
    }
    for (const x of settled) if (x.status === 'fulfilled') results.push(...x.value)
    // A step that could not start (a host out of reach) stops the run, once the others are done.
    const thrown = settled.find((x) => x.status === 'rejected')
    if (thrown) throw (thrown as PromiseRejectedResult).reason
    for (const [j, x] of settled.entries()) {
      const step = batch.steps[j]
      const failed = (x as PromiseFulfilledResult<UnitResult[]>).value.filter((u) => u.status === 'failed')
      if (!failed.length) continue
      const first = failed[0].data?.error as {message?: string; hint?: string; code?: string} | undefined
      const code = (
        first?.code === 'refused' || first?.code === 'unreachable' || first?.code === 'hostKey' || first?.code === 'timeout' ? first.code : 'failed'
      ) as 'failed'
      throw new RunStoppedError(`stopped at step ${step.id}: ${failed.map((f) => f.detail).join('; ')}`, step.id, results, {
        host: failed[0].host,
        code,
        hint: rc.dryRun ? (first?.hint ?? 'fix it and run again') : `${first?.hint ? `${first.hint}; then ` : ''}${next()}`,
      })
    }
    // Only a step on its own asks (the playbook refuses a confirm beside another step).
    if (lead.confirm && !rc.dryRun) {
      const diffs = [...rc.diffs.values()]
      // The screen shows a summary; every line goes to a file in the run folder.
      const full = rc.journal.keep(`diff-${lead.id}.json`, `${JSON.stringify(diffs, null, 2)}\n`)
      await gate(rc, lead, results, hints.resume, next, 'diff', () => hooks.confirm(lead, diffs, full), hooks.consentBy, `steps up to ${lead.id} are done`)
      // Shown and kept in the file: its names (200,000 on a large rebuild) are not held for the rest of the run.
      rc.diffs.clear()
    }
  }
  if (rc.dryRun) plan = planOf(rc, hooks, playbook.steps, new Set())
  return {results, completed: true, plan}
}

/** Every step's read-only precheck on its hosts, before the first step: a refusal stops the run with nothing done. */
async function precheck(rc: RunContext, hooks: EngineHooks, steps: Step[]): Promise<void> {
  for (const step of steps) {
    const check = actionOf(hooks, step).precheck
    if (!check) continue
    const failed = (
      await mapLimit(stepHosts(rc, step), rc.murder.concurrency, async (h) => {
        try {
          await check(rc, step, h)
          return null
        } catch (error) {
          return asMurderctlError(error).at({host: h?.name, step: step.id})
        }
      })
    ).find((e) => e !== null)
    if (failed) {
      rc.journal.write({event: 'step-failed', step: step.id, host: failed.host, data: {precheck: true, error: failed.oneLine(), code: failed.code}})
      throw failed
    }
  }
}

/** Ask at a gate; a no (or no terminal to ask on) stops the run resumably, journaled either way. */
async function gate(
  rc: RunContext,
  step: Step,
  results: UnitResult[],
  resumeHint: string,
  next: (resume?: string) => string,
  kind: 'plan' | 'diff',
  ask: () => Promise<boolean>,
  by: string,
  state: string,
): Promise<void> {
  const where = kind === 'plan' ? `before step ${step.id}` : `after step ${step.id}`
  let ok: boolean
  try {
    ok = await ask()
  } catch (error) {
    if (error instanceof NeedsConfirmationError) {
      rc.journal.write({event: 'note', step: step.id, data: {gate: kind, confirmed: false, reason: 'no terminal'}})
      throw new RunStoppedError(`stopped ${where} (${state}): ${error.message}`, step.id, results, {
        code: 'needsConfirmation',
        hint: `read the ${kind === 'plan' ? 'plan (--dry-run shows it)' : 'diff'}, then ${next(`${resumeHint} --yes`)}`,
      })
    }
    throw error
  }
  rc.journal.write({event: 'note', step: step.id, data: {gate: kind, confirmed: ok, by}})
  if (!ok) throw new RunStoppedError(`stopped ${where} (${state}): not confirmed`, step.id, results, {hint: next()})
}
