// sync-backends: what `ctl_mboxlist -m` would change on each backend (plan), then doing
// exactly that (apply) and proving it (verify). Plan and apply are separate steps: a plan can
// be written to a file, reviewed, and applied later; apply refuses a plan that went stale.
import {z} from 'zod'
import {asMurderctlError, MurderctlError, RefusedError} from '../errors.js'
import {MupdateWarnPlan} from '../cyrus/mboxlist-warn.js'
import {imapdBool} from '../cyrus/imapd-conf.js'
import type {Host} from '../inventory/schema.js'
import {hostsByRole, master, slaveHosts} from '../inventory/load.js'
import {poll} from '../util/poll.js'
import type {Journal} from '../engine/journal.js'
import {mapLimit} from '../util/limit.js'
import type {MurderContext} from '../host/context.js'
import {mailboxLocations, mupdatePush, mupdateWarn, scanDump} from '../host/mboxlist.js'
import {isLiveLocal} from '../cyrus/mboxlist-dump.js'
import {readImapdConf, type SavedCopy} from '../host/remote.js'
import {saveDbAside} from '../engine/journal.js'
import {acquireLock, ownerHere, releaseLock} from '../host/lock.js'

export const Conflict = z.object({
  mailbox: z.string(),
  /** Where the master places it (`server!partition`). */
  masterSays: z.string(),
})

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
  /** sha256 of the backend's dump when planned: apply refuses if it changed. */
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

export const changeCount = (d: BackendDiff) =>
  d.warn ? d.warn.activate.length + d.warn.removeFromMupdate.length + d.warn.removeRemoteFlag.length + d.warn.removeLocal.length : 0

export function selectBackends(ctx: MurderContext, names: string[] | undefined): Host[] {
  const all = hostsByRole(ctx.inv, 'backend')
  if (!names?.length) return all
  return names.map((n) => {
    const h = all.find((b) => b.name === n)
    if (!h) throw new RefusedError(`"${n}" is not a backend in ${ctx.inv.path}`, {hint: `backends: ${all.map((b) => b.name).join(', ')}`})
    return h
  })
}

async function diffBackend(ctx: MurderContext, host: Host, masterLocations: Map<string, string>): Promise<BackendDiff> {
  const d: BackendDiff = {backend: host.name, servername: host.servername, ok: false, conflicts: [], localMailboxes: 0}
  try {
    const [warn, scan] = await Promise.all([
      mupdateWarn(ctx, host),
      scanDump(ctx, host, (e) => {
        if (!isLiveLocal(e)) return
        d.localMailboxes++
        const where = masterLocations.get(e.name)
        const server = where?.split('!')[0]
        if (where && where.includes('!') && server !== host.servername) d.conflicts.push({mailbox: e.name, masterSays: where})
      }),
    ])
    d.warn = warn.plan
    d.fingerprint = scan.fingerprint
    d.ok = true
  } catch (error) {
    const e = asMurderctlError(error).at({host: host.name})
    d.error = {message: e.message, hint: e.hint, code: e.code}
  }
  return d
}

/** Plan: `-m -w` and the conflict check on every selected backend, in parallel. Changes nothing. */
export async function planSync(ctx: MurderContext, backends: Host[]): Promise<SyncPlan> {
  const m = master(ctx.inv)
  const masterList = await mailboxLocations(ctx, m, 'dump master')
  const diffs = await mapLimit(backends, ctx.concurrency, (b) => diffBackend(ctx, b, masterList.locations))
  return {
    kind: 'murderctl-sync-plan',
    version: 1,
    murder: ctx.inv.name,
    mode: ctx.inv.mode,
    createdAt: new Date().toISOString(),
    master: {host: m.name, entries: masterList.entries, fingerprint: masterList.fingerprint},
    backends: diffs,
  }
}

export interface ApplyOptions {
  /** Push with `-m -a`: local copies win; nothing local is deleted. */
  localAuthoritative?: boolean
  /** Let `-m` delete local mailboxes the master places elsewhere (needs delete_mode: delayed). */
  allowLocalDeletes?: boolean
  /** Apply on the backends that planned fine even though others failed. */
  skipFailed?: boolean
  journal: Journal
}

/** Refusals before anything runs: failed backends, local deletions without consent. */
export function checkApplicable(plan: SyncPlan, opts: Omit<ApplyOptions, 'journal'>): void {
  const failed = plan.backends.filter((b) => !b.ok)
  // A backend out of reach exits as it does in every command (4, or 5 for its host key).
  const code = failed.some((b) => b.error?.code === 'hostKey') ? 'hostKey' : failed.some((b) => b.error?.code === 'unreachable') ? 'unreachable' : 'refused'
  if (failed.length && !opts.skipFailed)
    throw new MurderctlError(code, `${failed.map((b) => `${b.backend} (${b.error?.message})`).join('; ')}: nothing was applied anywhere`, {
      host: failed[0].backend,
      step: 'plan',
      hint: 'fix that backend and plan again, or re-run with --skip-failed to apply on the others',
    })
  const deleting = plan.backends.filter((b) => (b.warn?.removeLocal.length ?? 0) > 0)
  if (deleting.length && !opts.localAuthoritative && !opts.allowLocalDeletes) {
    const names = deleting.flatMap((b) => b.warn!.removeLocal.map((n) => `${b.backend}:${n}`))
    throw new RefusedError(`ctl_mboxlist -m would delete ${names.length} local mailboxes (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''})`, {
      host: deleting[0].backend,
      step: 'plan',
      hint: 'choose: --local-authoritative (ctl_mboxlist -m -a: keep the local copies and make the master point at them) or --allow-local-deletes (delayed delete: moved aside, not destroyed)',
    })
  }
}

export interface BackendOutcome {
  backend: string
  applied: boolean
  skipped?: string
  savedCopies: SavedCopy[]
  verified: boolean
  remaining?: number
  error?: {message: string; hint?: string}
}

export interface ApplyResult {
  backends: BackendOutcome[]
  agreement: {host: string; entries: number}[]
  agreed: boolean
}

/** A plan's content, without when it was made: two plans saying the same compare equal. */
const planContent = (p: SyncPlan) =>
  JSON.stringify({
    murder: p.murder,
    mode: p.mode,
    master: p.master,
    backends: [...p.backends]
      .sort((a, b) => a.backend.localeCompare(b.backend))
      .map((b) => ({
        backend: b.backend,
        servername: b.servername,
        ok: b.ok,
        warn: b.warn ?? null,
        conflicts: b.conflicts,
        localMailboxes: b.localMailboxes,
        fingerprint: b.fingerprint ?? null,
      })),
  })

/**
 * A reviewed plan file, checked against the hosts: planned again now, and the WHOLE fresh plan
 * (each backend's diff, conflicts and fingerprint, the master's fingerprint) must say what the
 * file says. Returns the fresh plan: that is what gets applied, never the file's.
 */
export async function freshPlanMatching(ctx: MurderContext, plan: SyncPlan): Promise<SyncPlan> {
  const now = await planSync(
    ctx,
    selectBackends(
      ctx,
      plan.backends.map((b) => b.backend),
    ),
  )
  if (planContent(now) !== planContent(plan)) {
    const changed = plan.backends.filter((b) => {
      const n = now.backends.find((x) => x.backend === b.backend)
      return !n || planContent({...plan, backends: [n]}) !== planContent({...plan, backends: [b]})
    })
    const what = [
      now.master.fingerprint !== plan.master.fingerprint || now.master.entries !== plan.master.entries ? `the master ${plan.master.host}` : '',
      ...changed.map((b) => b.backend),
    ].filter(Boolean)
    throw new RefusedError(`the plan is stale or was edited: ${what.join(', ') || 'the murder'} differs from the plan made ${plan.createdAt}`, {
      host: changed[0]?.backend ?? plan.master.host,
      step: 'apply plan',
      hint: 'make a new plan with --dry-run --out FILE, review it, and apply that',
    })
  }
  return now
}

async function ensureDelayedDelete(ctx: MurderContext, host: Host): Promise<void> {
  const imapd = await readImapdConf(ctx, host)
  const mode = imapd.get('delete_mode') ?? 'delayed' // the 3.x default
  if (mode !== 'delayed' && !imapdBool(imapd.get('delete_mode_delayed_override')))
    throw new RefusedError(`delete_mode is ${mode}: ctl_mboxlist -m would destroy local mailboxes, not move them aside`, {
      host: host.name,
      step: 'apply',
      hint: 'set delete_mode: delayed first, or use --local-authoritative',
    })
}

/** Apply a (fresh, checked) plan: copy dbs aside, push on each backend, verify. */
export async function applySync(ctx: MurderContext, plan: SyncPlan, opts: ApplyOptions): Promise<ApplyResult> {
  const m = master(ctx.inv)
  // One run at a time: refused while a recovery (or another sync) holds the murder's lock.
  await acquireLock(ctx, m, ownerHere(opts.journal.run, 'sync-backends'), 'lock')
  opts.journal.write({event: 'step-done', step: 'lock', host: m.name})
  try {
    return await applyLocked(ctx, plan, opts)
  } finally {
    await releaseLock(ctx, m, opts.journal.run).catch(() => {})
  }
}

async function applyLocked(ctx: MurderContext, plan: SyncPlan, opts: ApplyOptions): Promise<ApplyResult> {
  const {journal} = opts
  const m = master(ctx.inv)
  const todo = plan.backends.filter((b) => b.ok && (changeCount(b) > 0 || b.conflicts.length > 0))
  const outcomes: BackendOutcome[] = plan.backends
    .filter((b) => !todo.includes(b))
    .map((b) => ({backend: b.backend, applied: false, skipped: b.ok ? 'nothing to change' : 'failed to plan', savedCopies: [], verified: b.ok}))

  // Nothing lost: the master's and each backend's mailboxes.db are copied aside first.
  const saved: SavedCopy[] = []
  if (todo.length) {
    const save = (h: Host) => saveDbAside(ctx, h, journal, 'copy aside')
    saved.push(await save(m))
    if (opts.allowLocalDeletes) for (const b of todo) if (b.warn?.removeLocal.length) await ensureDelayedDelete(ctx, selectBackends(ctx, [b.backend])[0])
    const perBackend = await mapLimit(todo, ctx.concurrency, async (b) => {
      const host = selectBackends(ctx, [b.backend])[0]
      const out: BackendOutcome = {backend: b.backend, applied: false, savedCopies: [], verified: false}
      try {
        out.savedCopies.push(await save(host))
        journal.write({event: 'step-start', step: 'push', host: host.name})
        await mupdatePush(ctx, host, {authoritative: opts.localAuthoritative, record: (r) => journal.command('push', host.name, r)})
        out.applied = true
        // Done means a fresh diff is empty (-m -w prints nothing, no conflict left), not that -m exited 0.
        const after = await diffBackend(ctx, host, (await mailboxLocations(ctx, m, 'verify')).locations)
        out.remaining = after.ok ? changeCount(after) + after.conflicts.length : undefined
        out.verified = out.remaining === 0
        journal.write({event: out.verified ? 'step-done' : 'step-failed', step: 'verify', host: host.name, data: {remaining: out.remaining}})
        if (!out.verified)
          out.error = {
            message: after.ok ? `${out.remaining} changes remain after the push` : `verification failed: ${after.error?.message}`,
            hint: 'run murderctl sync-backends --dry-run to see them',
          }
      } catch (error) {
        const e = asMurderctlError(error).at({host: host.name})
        out.error = {message: e.message, hint: e.hint}
        journal.write({event: 'step-failed', step: 'push', host: host.name, data: {error: e.message}})
      }
      return out
    })
    outcomes.push(...perBackend)
  }
  const agreement = await waitForAgreement(ctx)
  return {backends: outcomes.sort((a, b) => a.backend.localeCompare(b.backend)), ...agreement}
}

/** The master and every slave (frontends; unified backends) hold the same number of entries. */
export async function waitForAgreement(ctx: MurderContext, timeoutMs = 30_000): Promise<{agreement: {host: string; entries: number}[]; agreed: boolean}> {
  const hosts = [master(ctx.inv), ...slaveHosts(ctx.inv)]
  const count = () => mapLimit(hosts, ctx.concurrency, async (h) => ({host: h.name, entries: (await scanDump(ctx, h, () => {})).entries}))
  const same = (a: {entries: number}[]) => a.every((x) => x.entries === a[0].entries)
  // Slaves hear of changes a moment after the master: give them a little time.
  const agreement = await poll(count, same, {timeoutMs, intervalMs: 1000})
  return {agreement, agreed: same(agreement)}
}
