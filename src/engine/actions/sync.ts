// sync-backends as engine actions. The diff and the push are push.ts's (shared with
// recover-master); here: what a sync plan is, how a backend's diff is classified (pure, unit
// tested on captured outputs), the review of the whole plan before anything changes (local
// deletions, conflicts, failed backends, a reviewed plan gone stale) and the verification.
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {z} from 'zod'
import {isLiveLocal, type MailboxEntry} from '../../cyrus/mboxlist-dump.js'
import {imapdBool} from '../../cyrus/imapd-conf.js'
import {MupdateWarnPlan} from '../../cyrus/mboxlist-warn.js'
import {AbortError, MurderctlError, RefusedError} from '../../errors.js'
import type {MurderContext} from '../../host/context.js'
import {countEntriesOnHost, countMupdateWarn, mailboxLocations, scanDump} from '../../host/mboxlist.js'
import {readImapdConf} from '../../host/remote.js'
import {hostsByRole, master, slaveHosts} from '../../inventory/load.js'
import type {Host} from '../../inventory/schema.js'
import {mapLimit} from '../../util/limit.js'
import {poll} from '../../util/poll.js'
import {type RunContext, sharedFact} from '../context.js'
import {defineAction} from './types.js'

export const Conflict = z.object({
  mailbox: z.string(),
  /** Where the master places it (`server!partition`). */
  masterSays: z.string(),
})
export type Conflict = z.infer<typeof Conflict>

export const BackendDiff = z.object({
  backend: z.string(),
  servername: z.string(),
  ok: z.boolean(),
  /** Why the backend could not be planned, in Cyrus's words, with what to do. */
  error: z.object({message: z.string(), hint: z.string().optional(), code: z.string().optional()}).optional(),
  warn: MupdateWarnPlan.optional(),
  /** Local mailboxes the master places on another server: `-m -w` hides these in a unified murder. */
  conflicts: z.array(Conflict),
  localMailboxes: z.number(),
  /** sha256 of the backend's dump when planned: a reviewed plan is refused if it changed. */
  fingerprint: z.string().optional(),
})
export type BackendDiff = z.infer<typeof BackendDiff>

export const SyncPlan = z.object({
  kind: z.literal('murderctl-sync-plan'),
  version: z.literal(1),
  murder: z.string(),
  mode: z.enum(['standard', 'unified']),
  createdAt: z.string(),
  master: z.object({host: z.string(), entries: z.number(), fingerprint: z.string()}),
  backends: z.array(BackendDiff),
})
export type SyncPlan = z.infer<typeof SyncPlan>

/** sync-backends' options, as journaled at the run's start. */
export const SyncOptions = z.object({
  /** The backends diffed (and pushed where they differ). */
  backends: z.array(z.string()).min(1),
  /** Push with `-m -a`: local copies win; nothing local is deleted. */
  localAuthoritative: z.boolean().default(false),
  /** Let `-m` delete local mailboxes the master places elsewhere (needs delete_mode: delayed). */
  allowLocalDeletes: z.boolean().default(false),
  /** Push from the backends that diffed fine even though others failed. */
  skipFailed: z.boolean().default(false),
  /** A reviewed plan file is kept in the run folder (REVIEWED_PLAN): the fresh plan must say the same. */
  reviewed: z.boolean().default(false),
})
export type SyncOptions = z.infer<typeof SyncOptions>

/** File names in the run folder. */
export const SYNC_PLAN_FILE = 'sync-plan.json'
export const REVIEWED_PLAN_FILE = 'reviewed-plan.json'

export const changeCount = (d: BackendDiff) =>
  d.warn ? d.warn.activate.length + d.warn.removeFromMupdate.length + d.warn.removeRemoteFlag.length + d.warn.removeLocal.length : 0

/** A backend the push must act on: it diffed fine and something differs. */
export const needsPush = (d: BackendDiff) => d.ok && changeCount(d) + d.conflicts.length > 0

// ---- classification (pure) ----

export const emptyDiff = (host: Pick<Host, 'name' | 'servername'>): BackendDiff => ({
  backend: host.name,
  servername: host.servername,
  ok: false,
  conflicts: [],
  localMailboxes: 0,
})

/**
 * One entry of the backend's own dump: counted when live and local, and a conflict when the
 * master places it on another server (`-m -w` prints that as Remove Local Mailbox in a standard
 * murder, and not at all in a unified one).
 */
export function addLocalEntry(d: BackendDiff, e: Pick<MailboxEntry, 'name' | 'mbtype' | 'server'>, masterLocations: ReadonlyMap<string, string>): void {
  if (!isLiveLocal(e)) return
  d.localMailboxes++
  const where = masterLocations.get(e.name)
  if (where && where.includes('!') && where.split('!')[0] !== d.servername) d.conflicts.push({mailbox: e.name, masterSays: where})
}

/** A backend's diff from its `-m -w` and its dump, against the master's locations. */
export function classifyBackend(
  host: Pick<Host, 'name' | 'servername'>,
  warn: MupdateWarnPlan,
  entries: Iterable<Pick<MailboxEntry, 'name' | 'mbtype' | 'server'>>,
  masterLocations: ReadonlyMap<string, string>,
  fingerprint?: string,
): BackendDiff {
  const d = emptyDiff(host)
  for (const e of entries) addLocalEntry(d, e, masterLocations)
  return {...d, ok: true, warn, fingerprint}
}

/**
 * What a real run must refuse before anything changes: a backend that failed to diff (unless
 * skipFailed), local deletions without --local-authoritative or --allow-local-deletes, and (in
 * a unified murder, where -m would skip them silently) conflicts without --local-authoritative.
 */
export function refusalOf(plan: SyncPlan, o: Pick<SyncOptions, 'localAuthoritative' | 'allowLocalDeletes' | 'skipFailed'>): MurderctlError | undefined {
  const failed = plan.backends.filter((b) => !b.ok)
  // A backend out of reach exits as it does in every command (4, or 5 for its host key).
  if (failed.length && !o.skipFailed) {
    const code = failed.some((b) => b.error?.code === 'hostKey') ? 'hostKey' : failed.some((b) => b.error?.code === 'unreachable') ? 'unreachable' : 'refused'
    return new MurderctlError(code, `${failed.map((b) => `${b.backend} (${b.error?.message})`).join('; ')}: nothing was applied anywhere`, {
      host: failed[0].backend,
      hint: 'fix that backend and run again, or re-run with --skip-failed to push from the others',
    })
  }
  const deleting = plan.backends.filter((b) => (b.warn?.removeLocal.length ?? 0) > 0)
  if (deleting.length && !o.localAuthoritative && !o.allowLocalDeletes) {
    const names = deleting.flatMap((b) => b.warn!.removeLocal.map((n) => `${b.backend}:${n}`))
    return new RefusedError(
      `ctl_mboxlist -m would delete ${names.length} local mailboxes (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''})`,
      {
        host: deleting[0].backend,
        hint: 'choose: --local-authoritative (ctl_mboxlist -m -a: keep the local copies and make the master point at them) or --allow-local-deletes (delayed delete: moved aside, not destroyed)',
      },
    )
  }
  const silent = plan.backends.filter((b) => b.conflicts.length && !b.warn?.removeLocal.length)
  if (silent.length && !o.localAuthoritative)
    return new RefusedError(
      `${silent.map((b) => `${b.backend} has ${b.conflicts.length} local mailboxes the master places elsewhere`).join('; ')}: ctl_mboxlist -m would skip them silently`,
      {host: silent[0].backend, hint: 'decide which server really holds each one; --local-authoritative makes the master point at this backend'},
    )
  return undefined
}

/** A backend's part of a plan, without when it was made. */
const backendContent = (b: BackendDiff) =>
  JSON.stringify({
    backend: b.backend,
    servername: b.servername,
    ok: b.ok,
    warn: b.warn ?? null,
    conflicts: b.conflicts,
    localMailboxes: b.localMailboxes,
    fingerprint: b.fingerprint ?? null,
  })

/**
 * Where a fresh plan differs from a reviewed one (the master, by name, then each backend);
 * empty when it says the same. Backends in `skip` (pushed earlier in this run) and, once any
 * was, the master are not compared: the run changed them itself.
 */
export function planDifferences(reviewed: SyncPlan, fresh: SyncPlan, skip: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = []
  const masterSame =
    reviewed.murder === fresh.murder &&
    reviewed.mode === fresh.mode &&
    reviewed.master.host === fresh.master.host &&
    reviewed.master.entries === fresh.master.entries &&
    reviewed.master.fingerprint === fresh.master.fingerprint
  if (!skip.size && !masterSame) out.push(`the master ${reviewed.master.host}`)
  const names = [...new Set([...reviewed.backends, ...fresh.backends].map((b) => b.backend))].sort()
  for (const n of names) {
    if (skip.has(n)) continue
    const r = reviewed.backends.find((b) => b.backend === n)
    const f = fresh.backends.find((b) => b.backend === n)
    if (!r || !f || backendContent(r) !== backendContent(f)) out.push(n)
  }
  return out
}

// ---- facts one step leaves for the next ----

const MASTER_LIST = 'sync-master-list'
const DIFFS = 'sync-diffs'
const PLAN = 'sync-plan'

/** The master's list, read once per run (by the first backend's diff); every backend's diff compares with it. */
export function masterList(rc: RunContext, step: string): ReturnType<typeof mailboxLocations> {
  // Each backend's diff reports a failure itself.
  return sharedFact(rc, MASTER_LIST, () => mailboxLocations(rc.murder, master(rc.murder.inv), step))
}

export function recordDiff(rc: RunContext, d: BackendDiff): void {
  let m = rc.facts.get(DIFFS) as Map<string, BackendDiff> | undefined
  if (!m) rc.facts.set(DIFFS, (m = new Map()))
  m.set(d.backend, d)
}

/** The plan the review step made in this run (this process), if it ran. */
export const reviewedPlanOf = (rc: RunContext) => rc.facts.get(PLAN) as SyncPlan | undefined

/** The backends the push acts on: those the review found different; before the review, all of them. */
export function pushTargets(rc: RunContext, backends: Host[]): Host[] {
  const plan = reviewedPlanOf(rc)
  if (!plan) return backends
  return backends.filter((h) => {
    const d = plan.backends.find((b) => b.backend === h.name)
    return d !== undefined && needsPush(d)
  })
}

// ---- the review ----

async function assertDelayedDelete(ctx: MurderContext, host: Host, step: string): Promise<void> {
  const imapd = await readImapdConf(ctx, host)
  const mode = imapd.get('delete_mode') ?? 'delayed' // the 3.x default
  if (mode !== 'delayed' && !imapdBool(imapd.get('delete_mode_delayed_override')))
    throw new RefusedError(`delete_mode is ${mode}: ctl_mboxlist -m would destroy local mailboxes, not move them aside`, {
      host: host.name,
      step,
      hint: 'set delete_mode: delayed first, or use --local-authoritative',
    })
}

function readReviewed(rc: RunContext): SyncPlan {
  const path = join(rc.journal.dir, REVIEWED_PLAN_FILE)
  if (!existsSync(path)) throw new AbortError(`the reviewed plan ${path} is missing from the run folder`, {hint: 'start a new run with --apply FILE'})
  return SyncPlan.parse(JSON.parse(readFileSync(path, 'utf8')))
}

async function review(rc: RunContext, stepId: string) {
  const o = SyncOptions.parse(rc.options)
  const inv = rc.murder.inv
  const m = master(inv)
  const list = await masterList(rc, stepId)
  const diffs = (rc.facts.get(DIFFS) as Map<string, BackendDiff> | undefined) ?? new Map()
  const backends = o.backends.map((name) => {
    const h = hostsByRole(inv, 'backend').find((b) => b.name === name)
    return diffs.get(name) ?? {...emptyDiff({name, servername: h?.servername ?? name}), error: {message: 'not diffed in this run'}}
  })
  const plan: SyncPlan = {
    kind: 'murderctl-sync-plan',
    version: 1,
    murder: inv.name,
    mode: inv.mode,
    createdAt: new Date().toISOString(),
    master: {host: m.name, entries: list.entries, fingerprint: list.fingerprint},
    backends,
  }
  const planFile = rc.journal.keep(SYNC_PLAN_FILE, `${JSON.stringify(plan, null, 2)}\n`)
  rc.facts.set(PLAN, plan)
  const changes = backends.reduce((n, b) => n + changeCount(b) + b.conflicts.length, 0)
  const figures = {
    planFile,
    changes,
    backendsToPush: backends.filter(needsPush).map((b) => b.backend),
    failed: backends.filter((b) => !b.ok).map((b) => b.backend),
    conflicts: backends.reduce((n, b) => n + b.conflicts.length, 0),
    removeLocal: backends.reduce((n, b) => n + (b.warn?.removeLocal.length ?? 0), 0),
  }
  const summary = `${changes} changes on ${figures.backendsToPush.length} of ${backends.length} backends${figures.failed.length ? `, ${figures.failed.length} failed` : ''}`
  // A reviewed plan is applied only if it is still true: the fresh plan is what gets pushed.
  let stale: string | undefined
  if (o.reviewed) {
    const reviewed = readReviewed(rc)
    const pushed = new Set(
      rc.journal
        .events()
        .filter((e) => e.event === 'step-done' && e.step === 'push' && e.host)
        .map((e) => e.host!),
    )
    const what = planDifferences(reviewed, plan, pushed)
    if (what.length) stale = `the plan is stale or was edited: ${what.join(', ')} differs from the plan made ${reviewed.createdAt}`
  }
  // A dry run shows what a real run would refuse; the command reports it.
  if (rc.dryRun) return {summary, ...figures, stale, wouldRefuse: refusalOf(plan, o)?.message}
  if (stale) throw new RefusedError(stale, {host: m.name, step: stepId, hint: 'make a new plan with --dry-run --out FILE, review it, and apply that'})
  const refusal = refusalOf(plan, o)
  if (refusal) throw refusal.at({step: stepId})
  if (o.allowLocalDeletes)
    for (const b of backends.filter((x) => x.warn?.removeLocal.length))
      await assertDelayedDelete(
        rc.murder,
        hostsByRole(inv, 'backend').find((h) => h.name === b.backend)!,
        stepId,
      )
  return {summary, ...figures}
}

// ---- verification ----

/** The master and every slave (frontends; unified backends) hold the same number of entries. */
export async function waitForAgreement(ctx: MurderContext, step: string, timeoutMs = 30_000) {
  const hosts = [master(ctx.inv), ...slaveHosts(ctx.inv)]
  const count = () => mapLimit(hosts, ctx.concurrency, async (h) => ({host: h.name, entries: (await countEntriesOnHost(ctx, h, step)).total}))
  const same = (a: {entries: number}[]) => a.every((x) => x.entries === a[0].entries)
  // Slaves hear of changes a moment after the master: give them a little time.
  const agreement = await poll(count, same, {timeoutMs, intervalMs: 1000, firstIntervalMs: 250})
  return {agreement, agreed: same(agreement)}
}

/** Done means a fresh diff of each pushed backend is empty and no conflict is left, not that -m exited 0. */
async function verifySync(rc: RunContext, stepId: string) {
  const o = SyncOptions.parse(rc.options)
  const ctx = rc.murder
  const plan = reviewedPlanOf(rc)
  const pushed = (plan?.backends ?? []).filter(needsPush).map((b) => b.backend)
  const hosts = hostsByRole(ctx.inv, 'backend').filter((h) => o.backends.includes(h.name) && pushed.includes(h.name))
  const {locations} = await mailboxLocations(ctx, master(ctx.inv), stepId)
  const backends = await mapLimit(hosts, ctx.concurrency, async (h) => {
    const d = emptyDiff(h)
    const [w] = await Promise.all([countMupdateWarn(ctx, h, stepId), scanDump(ctx, h, (e) => addLocalEntry(d, e, locations), stepId)])
    return {backend: h.name, remaining: w.changes + d.conflicts.length}
  })
  const {agreement, agreed} = await waitForAgreement(ctx, stepId)
  const problems = [
    ...backends.filter((b) => b.remaining).map((b) => `${b.backend}: ${b.remaining} changes remain after the push`),
    ...(agreed ? [] : [`the master and its slaves disagree (${agreement.map((a) => `${a.host}=${a.entries}`).join(', ')})`]),
  ]
  if (problems.length)
    throw new AbortError(`verification failed: ${problems.join('; ')}`, {step: stepId, hint: 'murderctl sync-backends --dry-run shows what differs'})
  return {summary: `${backends.length} pushed backends in sync; ${agreement.map((a) => `${a.host}=${a.entries}`).join(', ')}`, backends, agreement, agreed}
}

export const syncReview = defineAction({
  mutating: false,
  params: z.object({}).strict(),
  describe: () => 'refuse local deletions, silent conflicts, failed backends and a reviewed plan gone stale; keep the plan in the run folder',
  run: (rc, s) => review(rc, s.id),
})

export const verifySyncAction = defineAction({
  mutating: false,
  planOnly: true,
  params: z.object({}).strict(),
  describe: () => 'each pushed backend: -m -w empty and no conflict left; the master and its slaves agree',
  run: (rc, s) => verifySync(rc, s.id),
})
