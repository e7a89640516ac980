// Rolling back a run that stopped: what its journal says it did, undone in reverse order. Each
// done step's `undo` action runs (start what it stopped, unlock), and every mailboxes.db,
// cyrus.conf or imapd.conf it copied or moved aside is COPIED back (the journaled copy stays),
// the file in place first copied aside itself, so a rollback loses nothing either. Journaled in
// the run's own journal (rollback-start/-step/-end): a rollback that stops goes on where it
// stopped. Generic: it reads only the journal, the playbook's undo names and the actions' `proves`.
import {MEMORY_DIR_MARKER} from '../host/memory-db.js'
import {basename} from 'node:path'
import {AbortError, asMurderctlError, ExitCode, NeedsConfirmationError, RefusedError, RemoteCommandError} from '../errors.js'
import {countDbFile, dbInfo} from '../host/db.js'
import {countEntriesOnHost} from '../host/mboxlist.js'
import {copyAside, fileSha256, hupMaster, masterPid} from '../host/remote.js'
import {master, slaveHosts} from '../inventory/load.js'
import type {Host, Inventory} from '../inventory/schema.js'
import {shellQuote} from '../ssh/quote.js'
import {ACTIONS, type ActionRegistry} from './actions/index.js'
import {checkCondition} from './conditions.js'
import type {RunContext} from './context.js'
import {type EngineHooks, pastNoReturn, type PlannedStep} from './engine.js'
import {watchInterrupts} from './interrupt.js'
import type {JournalEvent} from './journal.js'
import type {Playbook, Step} from './schema.js'

/** The files a rollback puts back; any other saved copy (message files, indexes) is kept, not restored. */
export type RestoredKind = 'mailboxes.db' | 'cyrus.conf' | 'imapd.conf'

export interface RestoreFile {
  kind: RestoredKind
  path: string
  /** The journaled copy made before the run changed the file: what goes back. */
  copy: string
  sha256: string
  moved: boolean
}

export interface RollbackUnit {
  /** Unique in the rollback: `restore-<step>` or `undo-<step>`, with the host. */
  id: string
  /** The run's step it reverses. */
  step: string
  host: string
  kind: 'restore' | 'undo'
  /** kind undo: the action named by the step's `undo`. */
  action?: string
  restore?: RestoreFile
  does: string
}

export interface NotRestored {
  host: string
  path: string
  copy: string
  step?: string
  reason: string
}

export interface RollbackPlan {
  units: RollbackUnit[]
  /** Saved copies left as they are (superseded by an earlier copy of the same file, or not a Cyrus config/db). */
  notRestored: NotRestored[]
  /** Per host: whether cyrus-master ran before the run, as the journal shows it (absent: the run never changed it). */
  runningBefore: Record<string, boolean>
}

const unitKey = (step?: string, host?: string) => `${step ?? ''}@${host ?? ''}`

/** The host name of a rollback unit that runs on murderctl's own machine (an undo of a step on no host). */
export const LOCAL = 'local'

/** Which of a host's Cyrus files a path is, if any. */
export function restoredKind(host: Host | undefined, path: string, dbPath?: string): RestoredKind | undefined {
  if (host && path === host.cyrus.cyrusConf) return 'cyrus.conf'
  if (host && path === host.cyrus.imapdConf) return 'imapd.conf'
  if (path === dbPath || basename(path) === 'mailboxes.db') return 'mailboxes.db'
  return undefined
}

/**
 * Whether cyrus-master ran on each host before the run: the first unit of the run on that host
 * whose step is proved by cyrus-stopped or cyrus-running says so (a step skipped because its
 * post-condition already held changed nothing: the state was already that).
 */
export function runningBeforeRun(events: JournalEvent[], playbook: Playbook): Record<string, boolean> {
  const post = new Map(playbook.steps.map((s) => [s.id, s.post]))
  const out: Record<string, boolean> = {}
  // A step that ran before a stop and was found done on resume did change the state.
  const started = new Set(events.filter((e) => e.event === 'step-start' || e.event === 'command').map((e) => unitKey(e.step, e.host)))
  for (const e of events) {
    if (e.event !== 'step-done' || !e.host || e.host in out) continue
    const p = post.get(e.step ?? '')
    const already = e.data?.alreadyHeld !== undefined && !started.has(unitKey(e.step, e.host))
    if (p === 'cyrus-stopped') out[e.host] = !already
    else if (p === 'cyrus-running') out[e.host] = already
  }
  return out
}

/**
 * The rollback of a run from its journal, in reverse playbook order: for each step the run
 * started on a host (not one skipped because its post-condition already held), first its
 * files back (per file, the EARLIEST copy the run made: the file as it was before the run),
 * then its undo action. Units the journal says a rollback already did are left out.
 */
export function planRollback(
  events: JournalEvent[],
  playbook: Playbook,
  inv: Inventory,
  opts: {actions?: ActionRegistry; dbPaths?: Record<string, string>; rc?: RunContext} = {},
): RollbackPlan {
  const actions = opts.actions ?? (ACTIONS as ActionRegistry)
  const hostOf = (name: string) => inv.hosts.find((h) => h.name === name)
  // A unit the run started (even one it did not finish) is undone; one skipped because its
  // post-condition already held changed nothing and is not.
  const attempted = new Set(events.filter((e) => e.event === 'step-start' || e.event === 'command').map((e) => unitKey(e.step, e.host)))
  const rolledBack = new Set(events.filter((e) => e.event === 'rollback-step' && e.data?.status !== 'failed').map((e) => unitKey(e.step, e.host)))

  // Per (host, file): the first copy is the file before the run; later ones are kept, not restored.
  const restores = new Map<string, {step: string; host: string; file: RestoreFile}>()
  const notRestored: NotRestored[] = []
  // A rollback's own copies of what it replaced (after its start) are never put back by a rollback.
  const rollbackFrom = events.findIndex((e) => e.event === 'rollback-start')
  for (const [i, e] of events.entries()) {
    if (e.event !== 'saved-copy' || (rollbackFrom >= 0 && i > rollbackFrom)) continue
    const d = e.data ?? {}
    const host = typeof d.host === 'string' ? d.host : e.host
    const path = typeof d.path === 'string' ? d.path : undefined
    const copy = typeof d.copy === 'string' ? d.copy : undefined
    if (!host || !path || !copy || typeof d.sha256 !== 'string') continue
    const h = hostOf(host)
    const kind = restoredKind(h, path, opts.dbPaths?.[host])
    const key = `${host}:${path}`
    // The run's temporary in-memory list (the push's work, installed on disk later) is not a
    // file from before the run: the undo of the step that made it takes it down.
    if (path.includes(`/${MEMORY_DIR_MARKER}`))
      notRestored.push({host, path, copy, step: e.step, reason: "the run's temporary in-memory list: kept for the operator, not put back"})
    else if (!h || !kind)
      notRestored.push({host, path, copy, step: e.step, reason: h ? 'not a mailboxes.db or Cyrus config: kept for the operator' : 'not a host of this murder'})
    else if (restores.has(key)) notRestored.push({host, path, copy, step: e.step, reason: `superseded by the earlier copy ${restores.get(key)!.file.copy}`})
    else restores.set(key, {step: e.step ?? '', host, file: {kind, path, copy, sha256: d.sha256, moved: d.moved === true}})
  }

  const hostOrder = (name: string) => inv.hosts.findIndex((h) => h.name === name)
  const units: RollbackUnit[] = []
  for (const step of [...playbook.steps].reverse()) {
    const undo = step.undo ? actions[step.undo] : undefined
    if (step.undo && !undo) throw new AbortError(`step ${step.id} names undo action ${step.undo}, which does not exist`, {step: step.id})
    const restoreUnits: RollbackUnit[] = []
    const undoUnits: RollbackUnit[] = []
    const stepRestores = [...restores.values()].filter((r) => r.step === step.id).sort((a, b) => hostOrder(a.host) - hostOrder(b.host))
    for (const r of stepRestores) {
      // Two files of one host in one step (cyrus.conf and imapd.conf) are two units.
      const several = stepRestores.filter((x) => x.host === r.host).length > 1
      const id = `restore-${step.id}${several ? `-${r.file.kind.replace('.', '-')}` : ''}`
      if (rolledBack.has(unitKey(id, r.host))) continue
      restoreUnits.push({
        id,
        step: step.id,
        host: r.host,
        kind: 'restore',
        restore: r.file,
        does: `copy ${r.file.path} aside, cp -p ${r.file.copy} back over it, sha256 checked${r.file.kind === 'mailboxes.db' ? ' (cyrus-master stopped meanwhile)' : r.file.kind === 'cyrus.conf' ? ', HUP cyrus-master' : ''}`,
      })
    }
    if (!step.undo || !undo) {
      units.push(...restoreUnits)
      continue
    }
    // A step on no host (run here, e.g. the pair's address move) is undone here: host LOCAL.
    const hosts =
      step.hosts === 'none'
        ? attempted.has(unitKey(step.id, undefined))
          ? [LOCAL]
          : []
        : [...new Set(events.filter((e) => e.step === step.id && e.host && attempted.has(unitKey(e.step, e.host))).map((e) => e.host!))].sort(
            (a, b) => hostOrder(a) - hostOrder(b),
          )
    for (const host of hosts) {
      const id = `undo-${step.id}`
      if (rolledBack.has(unitKey(id, host))) continue
      const h = host === LOCAL ? undefined : hostOf(host)
      if (!h && host !== LOCAL) continue
      undoUnits.push({
        id,
        step: step.id,
        host,
        kind: 'undo',
        action: step.undo,
        does: `${step.undo}: ${undo.describe(opts.rc ?? ({options: {}, runId: '', selectors: {}} as unknown as RunContext), undo.params.parse({}), h)}`,
      })
    }
    units.push(...(undo.restoresOwnFiles ? [...undoUnits, ...restoreUnits] : [...restoreUnits, ...undoUnits]))
  }
  // Copies of steps this playbook does not name (an edited playbook): restored last.
  const named = new Set(playbook.steps.map((s) => s.id))
  for (const r of restores.values())
    if (!named.has(r.step) && !rolledBack.has(unitKey(`restore-${r.step}`, r.host)))
      units.push({id: `restore-${r.step}`, step: r.step, host: r.host, kind: 'restore', restore: r.file, does: `cp -p ${r.file.copy} back over ${r.file.path}`})
  return {units, notRestored, runningBefore: runningBeforeRun(events, playbook)}
}

/** The rollback plan as the plan gate shows it. */
export function rollbackPlanSteps(plan: RollbackPlan): PlannedStep[] {
  return plan.units.map((u) => ({
    step: `${u.id}@${u.host}`,
    title: u.kind === 'restore' ? `Put ${u.restore!.path} back as before step ${u.step}` : `Undo step ${u.step} (${u.action})`,
    hosts: [{host: u.host, does: u.does}],
    confirm: false,
  }))
}

export interface RollbackUnitResult {
  id: string
  step: string
  host: string
  status: 'done' | 'skipped' | 'planned' | 'failed'
  detail?: string
  data?: Record<string, unknown>
}

export interface RollbackOutcome {
  plan: PlannedStep[]
  results: RollbackUnitResult[]
  notRestored: NotRestored[]
  /** The checks after: each restored file's sha256, services, entry counts, slaves. */
  verified: {check: string; host: string; ok: boolean; detail: string}[]
}

/** Raised when a rollback stops part-way: a second --rollback goes on from there. */
export class RollbackStoppedError extends AbortError {}

const sumOf = (out: string, line: number) => out.trim().split('\n')[line]?.split(/\s+/)[0]

async function serviceCommand(rc: RunContext, h: Host, id: string, which: 'start' | 'stop'): Promise<void> {
  const r = await rc.murder.pool.exec(h, {shell: h.cyrus[which]})
  rc.journal.command(id, h.name, r)
  if (r.exitCode !== 0) throw new AbortError(`${which} command failed (exit ${r.exitCode})`, {host: h.name, step: id, hint: `check: ${h.cyrus[which]}`})
  const ok = await checkCondition(rc, which === 'start' ? 'cyrus-running' : 'cyrus-stopped', h, {settle: true})
  if (!ok.ok) throw new AbortError(`after ${which}: ${ok.detail}`, {host: h.name, step: id})
}

/** One file back: checked copy, the file in place copied aside, cp -p back, sha256 checked. */
async function restoreFile(rc: RunContext, u: RollbackUnit, h: Host, runningBefore: boolean | undefined): Promise<Record<string, unknown>> {
  const f = u.restore!
  const id = u.id
  const now = await fileSha256(rc.murder, h, f.path)
  if (now === f.sha256) return {path: f.path, sha256: f.sha256, already: true}
  const copySum = await fileSha256(rc.murder, h, f.copy)
  if (copySum !== f.sha256)
    throw new AbortError(
      `the saved copy ${f.copy} is ${copySum === null ? 'missing' : `changed (sha256 ${copySum.slice(0, 12)}…, journaled ${f.sha256.slice(0, 12)}…)`}: not restoring from it`,
      {
        host: h.name,
        step: id,
        hint: 'nothing was changed on this host by this step; find the file as it was (murderctl report lists every copy) and put it back by hand',
      },
    )
  const isDb = f.kind === 'mailboxes.db'
  const wasRunning = isDb ? (await masterPid(rc.murder, h)) !== null : false
  if (isDb && wasRunning) await serviceCommand(rc, h, id, 'stop')
  // What is there now is kept too, under a name of its own (run id + rollback step).
  const aside = now === null ? undefined : rc.journal.saved(id, await copyAside(rc.murder, h, f.path, rc.runId, id))
  const tmp = `${f.path}.murderctl-${rc.runId}-${id}.tmp`
  const r = await rc.murder.pool.exec(h, {
    shell: `cp -p -- ${shellQuote(f.copy)} ${shellQuote(tmp)} && mv -f -- ${shellQuote(tmp)} ${shellQuote(f.path)} && sha256sum -- ${shellQuote(f.path)} ${shellQuote(f.copy)}`,
  })
  rc.journal.command(id, h.name, r)
  if (r.exitCode !== 0 || sumOf(r.stdout, 0) !== f.sha256 || sumOf(r.stdout, 1) !== f.sha256)
    throw new RemoteCommandError(
      `could not put ${f.path} back with the journaled sha256`,
      {command: r.command, exitCode: r.exitCode, stderr: r.stderr},
      {
        host: h.name,
        step: id,
        hint: `the file that was there is kept as ${aside?.copy ?? '(there was none)'}; free space if the disk is full, then run --rollback again`,
      },
    )
  // Started again when it ran before the run (the journal knows), else as it was found.
  const start = isDb && (runningBefore ?? wasRunning) && (await masterPid(rc.murder, h)) === null
  if (start) await serviceCommand(rc, h, id, 'start')
  else if (f.kind === 'cyrus.conf' && (await masterPid(rc.murder, h)) !== null) await hupMaster(rc.murder, h, id)
  return {path: f.path, sha256: f.sha256, from: f.copy, replacedKeptAs: aside?.copy, stopped: isDb && wasRunning, started: start}
}

/** An action run on its own, as no playbook step (an undo, the playbook's rollbackVerify), with its default params. */
async function runAlone(rc: RunContext, actions: ActionRegistry, name: string, id: string, title: string, h?: Host): Promise<Record<string, unknown>> {
  const action = actions[name]!
  const step: Step = {id, title, hosts: 'none', action: name, confirm: false, recheck: false, alongside: false, params: {}}
  return (await action.run(rc, step, action.params.parse({}), h)) ?? {}
}

/** An undo action on its host; skipped when what it proves already holds. */
async function runUndo(rc: RunContext, u: RollbackUnit, h: Host | undefined, actions: ActionRegistry): Promise<Record<string, unknown> & {skipped?: string}> {
  const action = actions[u.action!]!
  // A condition is proved on a host; an undo on no host has only its own exit to go by.
  const proves = h ? action.proves : undefined
  if (proves) {
    const already = await checkCondition(rc, proves, h!)
    if (already.ok) return {skipped: `${already.detail} already`}
  }
  const data = await runAlone(rc, actions, u.action!, u.id, `undo ${u.step}`, h)
  if (proves) {
    const post = await checkCondition(rc, proves, h!, {settle: true})
    if (!post.ok) throw new AbortError(`${u.action} ran but ${proves} does not hold: ${post.detail}`, {host: h!.name, step: u.id})
    return {...data, proved: post.detail}
  }
  return data
}

/** After the rollback: each restored file as journaled, services as before the run, masters' lists counted, slaves connected. */
async function verifyRollback(
  rc: RunContext,
  plan: RollbackPlan,
  all: RollbackUnit[],
  playbook: Playbook,
  actions: ActionRegistry,
): Promise<RollbackOutcome['verified']> {
  const out: RollbackOutcome['verified'] = []
  const hostOf = (n: string) => rc.murder.inv.hosts.find((h) => h.name === n)!
  const slaves = new Set(slaveHosts(rc.murder.inv).map((h) => h.name))
  for (const u of all.filter((x) => x.kind === 'restore')) {
    const h = hostOf(u.host)
    const f = u.restore!
    // A running mupdate slave rewrites its list from the master's at once (an empty master
    // empties it, as before the run): its db was checked when it went back; the copy stays.
    if (f.kind === 'mailboxes.db' && slaves.has(h.name) && (await masterPid(rc.murder, h)) !== null) {
      out.push({
        check: `${f.kind} restored`,
        host: h.name,
        ok: true,
        detail: `${f.path} went back with sha256 ${f.sha256}; its mupdate slave now keeps it as the master's list (the copy ${f.copy} stays)`,
      })
      continue
    }
    const sum = await fileSha256(rc.murder, h, f.path)
    out.push({check: `${f.kind} restored`, host: h.name, ok: sum === f.sha256, detail: `${f.path} sha256 ${sum ?? 'missing'} (journaled ${f.sha256})`})
    if (f.kind === 'mailboxes.db' && (await masterPid(rc.murder, h)) !== null) {
      const [live, saved] = await Promise.all([countEntriesOnHost(rc.murder, h, 'rollback-verify'), countDbFile(rc.murder, h, f.copy, 'rollback-verify')])
      out.push({check: 'entries', host: h.name, ok: live.total === saved, detail: `${live.total} entries, the restored copy holds ${saved}`})
    }
  }
  for (const [name, before] of Object.entries(plan.runningBefore)) {
    const h = hostOf(name)
    if (!h) continue
    const r = await checkCondition(rc, before ? 'cyrus-running' : 'cyrus-stopped', h, {settle: true})
    out.push({check: before ? 'running as before the run' : 'stopped as before the run', host: name, ok: r.ok, detail: r.detail})
  }
  // Slaves that run talk to a master that runs, as before the run.
  const m = master(rc.murder.inv)
  if ((await masterPid(rc.murder, m)) !== null)
    for (const s of slaveHosts(rc.murder.inv)) {
      if ((await masterPid(rc.murder, s)) === null) continue
      const r = await checkCondition(rc, 'slave-connected', s, {settle: true})
      out.push({check: 'slave connected', host: s.name, ok: r.ok, detail: r.detail})
    }
  // The runbook's own check of the state it started from, when its playbook names one.
  if (playbook.rollbackVerify) {
    try {
      const data = await runAlone(rc, actions, playbook.rollbackVerify, 'rollback-verify', 'the state before the run')
      out.push({check: playbook.rollbackVerify, host: LOCAL, ok: true, detail: typeof data.detail === 'string' ? data.detail : 'as before the run'})
    } catch (error) {
      out.push({check: playbook.rollbackVerify, host: LOCAL, ok: false, detail: asMurderctlError(error).message})
    }
  }
  return out
}

/**
 * Roll back a stopped run: the plan shown and consented (the run's first gate), each unit
 * journaled as a rollback-step, then verified. A dry run journals nothing and changes nothing.
 */
export async function rollbackRun(rc: RunContext, playbook: Playbook, hooks: EngineHooks): Promise<RollbackOutcome> {
  const actions = hooks.actions ?? (ACTIONS as ActionRegistry)
  const events = rc.journal.events()
  const inv = rc.murder.inv
  const past = pastNoReturn(events)
  if (past) throw new RefusedError(`run ${rc.runId} cannot be rolled back: its step ${past.step} has started`, {step: 'rollback', hint: past.reason})
  // The db's path as each host's imapd.conf says (mboxlist_db_path may move it): read-only.
  const copyHosts = [...new Set(events.filter((e) => e.event === 'saved-copy').map((e) => (typeof e.data?.host === 'string' ? e.data.host : e.host)))]
  const dbPaths: Record<string, string> = {}
  for (const name of copyHosts) {
    const h = inv.hosts.find((x) => x.name === name)
    if (!h || !name) continue
    try {
      dbPaths[name] = (await dbInfo(rc.murder, h)).path
    } catch (error) {
      // Every host the rollback puts a file back on must answer before it changes anything.
      const e = asMurderctlError(error).at({host: name, step: 'rollback'})
      throw new RollbackStoppedError(
        `the rollback cannot start: ${e.message}`,
        {host: e.host, step: 'rollback', hint: `${e.hint ? `${e.hint}; ` : ''}nothing was changed: bring ${name} back, then --rollback ${rc.runId} again`},
        e.code,
      )
    }
  }
  const plan = planRollback(events, playbook, inv, {actions, dbPaths, rc})
  const all = planRollback(
    events.filter((e) => e.event !== 'rollback-step'),
    playbook,
    inv,
    {actions, dbPaths, rc},
  ).units
  const steps = rollbackPlanSteps(plan)
  if (rc.dryRun)
    return {
      plan: steps,
      results: plan.units.map((u) => ({id: u.id, step: u.step, host: u.host, status: 'planned', detail: u.does})),
      notRestored: plan.notRestored,
      verified: [],
    }

  // Another run holding the murder's lock (not this one) refuses the rollback before any change:
  // the prechecks of the done steps it undoes (the lock's), not those about going forward.
  for (const s of playbook.steps) {
    const check = actions[s.action]?.precheck
    if (!check || !s.undo || !events.some((e) => e.step === s.id && e.event === 'step-done')) continue
    const h = inv.hosts.filter((x) => events.some((e) => e.step === s.id && e.host === x.name))
    for (const x of h) await check(rc, s, x)
  }
  if (steps.length) {
    let ok: boolean
    try {
      ok = await hooks.consent(steps)
    } catch (error) {
      if (error instanceof NeedsConfirmationError)
        rc.journal.write({event: 'note', step: 'rollback', data: {gate: 'rollback', confirmed: false, reason: 'no terminal'}})
      throw error
    }
    rc.journal.write({event: 'note', step: 'rollback', data: {gate: 'rollback', confirmed: ok, by: hooks.consentBy}})
    if (!ok) throw new RefusedError('rollback not confirmed: nothing was changed', {step: 'rollback', hint: `murderctl … --rollback ${rc.runId} when ready`})
  }
  rc.journal.write({event: 'rollback-start', data: {units: plan.units.map((u) => ({id: u.id, host: u.host, does: u.does})), notRestored: plan.notRestored}})
  const results: RollbackUnitResult[] = []
  // Ctrl-C lets the unit in flight finish (a db half put back helps nobody), then stops resumably.
  const watch = hooks.interruptible
    ? watchInterrupts(
        () => process.stderr.write('\nmurderctl: interrupted: finishing this rollback unit, then stopping (interrupt again to stop at once)\n'),
        () => {
          rc.journal.write({event: 'interrupted', step: 'rollback', data: {atOnce: true}})
          process.stderr.write(`murderctl: stopped at once; run --rollback ${rc.runId} again to go on\n`)
          process.exit(ExitCode.interrupted)
        },
      )
    : undefined
  try {
    await runUnits()
  } finally {
    watch?.dispose()
  }
  async function runUnits() {
    for (const [i, u] of plan.units.entries()) {
      if (watch?.requested) {
        rc.journal.write({event: 'rollback-end', data: {completed: false, stoppedAt: u.id, interrupted: true}})
        throw new RollbackStoppedError(
          `interrupted: the rollback stopped before ${u.id} on ${u.host}`,
          {step: u.id, hint: `run --rollback ${rc.runId} again to go on`},
          'interrupted',
        )
      }
      const h = inv.hosts.find((x) => x.name === u.host)
      hooks.progress(`[${i + 1}/${plan.units.length}] ${steps[i].title} on ${u.host}`)
      try {
        const data = u.kind === 'restore' ? await restoreFile(rc, u, h!, plan.runningBefore[u.host]) : await runUndo(rc, u, h, actions)
        const status = data.skipped || data.already ? 'skipped' : 'done'
        rc.journal.write({event: 'rollback-step', step: u.id, host: u.host, data: {status, ...data}})
        results.push({id: u.id, step: u.step, host: u.host, status, detail: typeof data.skipped === 'string' ? data.skipped : undefined, data})
        hooks.progress(`    ${status} ${u.host}${data.skipped ? `: ${String(data.skipped)}` : ''}`)
      } catch (error) {
        const e = asMurderctlError(error).at({host: u.host, step: u.id})
        rc.journal.write({event: 'rollback-step', step: u.id, host: u.host, data: {status: 'failed', error: e.oneLine(), code: e.code}})
        rc.journal.write({event: 'rollback-end', data: {completed: false, stoppedAt: u.id}})
        throw new RollbackStoppedError(
          `rollback stopped at ${u.id} on ${u.host}: ${e.message}`,
          {
            host: u.host,
            step: u.id,
            hint: `${e.hint ? `${e.hint}; then ` : ''}run --rollback ${rc.runId} again: it goes on from there (what it replaced is kept, journaled)`,
          },
          e.code,
        )
      }
    }
  }
  const verified = await verifyRollback(rc, plan, all, playbook, actions)
  const ok = verified.every((v) => v.ok)
  rc.journal.write({event: 'rollback-end', data: {completed: ok, verified}})
  if (!ok)
    throw new RollbackStoppedError(
      `rolled back, but not verified: ${verified
        .filter((v) => !v.ok)
        .map((v) => `${v.host}: ${v.check}: ${v.detail}`)
        .join('; ')}`,
      {step: 'rollback-verify', hint: `look at the hosts (murderctl check), then run --rollback ${rc.runId} again`},
    )
  return {plan: steps, results, notRestored: plan.notRestored, verified}
}
