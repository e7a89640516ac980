// The `replication-consistency` check: cheap enough for cron. Per pair, the cheap per-mailbox
// state (counters + Cyrus's SYNC_CRC) of a random sample of users, plus every mailbox the logs
// name in a guid mismatch and every mailbox that drifted last time; per-message records only
// where those differ. CRITICAL on a conflict, a stalled guid mismatch or an unreadable member;
// WARNING when a mailbox has differed for longer than thresholds.replicationDriftWarnSeconds
// (rolling replication is always a moment behind, so young drift is OK).
import {existsSync, mkdirSync, readFileSync} from 'node:fs'
import {dirname} from 'node:path'
import {z} from 'zod'
import {writeFileAtomic} from '../util/files.js'
import type {CheckResult} from '../check/model.js'
import {asMurderctlError} from '../errors.js'
import type {MurderContext} from '../host/context.js'
import {scanNames} from '../host/mboxlist.js'
import type {Host} from '../inventory/schema.js'
import {mapLimit} from '../util/limit.js'
import {readFence} from '../store/fence.js'
import {auditPair, pairRoles, replicationPairs} from './audit.js'

const DriftState = z.object({
  version: z.literal(1),
  murder: z.string(),
  /** pair (backend name) -> mailbox -> when it was first seen differing (ISO). */
  drift: z.record(z.string(), z.record(z.string(), z.string())),
})
type DriftState = z.infer<typeof DriftState>

/** Beside check-state.json: `<name>.replication.json`. */
export const driftStatePath = (checkStatePath: string) => checkStatePath.replace(/(\.json)?$/, '.replication.json')

function loadDrift(path: string, murder: string): DriftState {
  try {
    if (existsSync(path)) {
      const s = DriftState.parse(JSON.parse(readFileSync(path, 'utf8')))
      if (s.murder === murder) return s
    }
  } catch {
    // A damaged file only costs the drift ages: start again.
  }
  return {version: 1, murder, drift: {}}
}

function sample<T>(items: T[], n: number): T[] {
  const a = [...items]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a.slice(0, n)
}

const inboxOf = (mailbox: string) => /^((?:[^!]*!)?user[./][^./]+)/.exec(mailbox)?.[1]

/** A member's live local mailboxes, from its dump read once on the host (names only cross SSH). */
async function localNames(ctx: MurderContext, h: Host): Promise<string[]> {
  const names: string[] = []
  await scanNames(ctx, h, (n, remote) => void (remote || names.push(n)), 'user-list')
  return names
}

export async function replicationConsistencyCheck(ctx: MurderContext, opts: {statePath: string; now: Date}): Promise<CheckResult[]> {
  const t = ctx.inv.thresholds
  const path = driftStatePath(opts.statePath)
  const state = loadDrift(path, ctx.inv.name)
  const results = await mapLimit(replicationPairs(ctx.inv), ctx.concurrency, async (pair): Promise<CheckResult> => {
    const base = {name: 'replication-consistency', host: pair.backend.name}
    const label = `${pair.backend.name}/${pair.replica.name}`
    const before = state.drift[pair.backend.name] ?? {}
    // A member fenced by a hard failover is known to differ: making the pair whole is reconcile's
    // job, and the fence itself is reported (WARNING) by the replication check.
    const fenced = [pair.backend, pair.replica].map((m) => readFence(ctx.inv.stateDir, m.name)).find((f) => f !== null)
    if (fenced)
      return {
        ...base,
        state: 'WARNING',
        message: `${label}: ${fenced.member} is FENCED since the hard failover of run ${fenced.run}; not compared until reconcile`,
        figures: {},
        fix: `murderctl reconcile ${pair.backend.name}`,
      }
    try {
      const roles = await pairRoles(ctx, pair)
      const master = roles.master === pair.backend.name ? pair.backend : pair.replica
      const other = master === pair.backend ? pair.replica : pair.backend
      // Each member's names once, and the sampled users' trees by exact name: mbexamine reads the
      // whole mailbox list for each wildcard (two a user), but looks an exact name up directly.
      const [onMaster, onOther] = await Promise.all([localNames(ctx, master), localNames(ctx, other)])
      const inboxes = onMaster.filter((n) => inboxOf(n) === n)
      const users = new Set([
        ...sample(inboxes, t.replicationSampleUsers),
        ...Object.keys(before)
          .map(inboxOf)
          .filter((x): x is string => !!x),
      ])
      const trees = [...new Set([...onMaster, ...onOther])].filter((n) => users.has(inboxOf(n) ?? ''))
      const audit = await auditPair(ctx, pair, {
        selection: {mailboxes: trees},
        settleSeconds: 2,
        includeLogged: true,
        logBytes: t.syslogScanMiB * 1024 * 1024,
      })
      const k = audit.counts
      const figures = {
        users_sampled: users.size,
        users_total: inboxes.length,
        mailboxes_compared: k.mailboxes,
        conflicts: k.conflict,
        drifting: k.drift + k.missingOnMaster + k.missingOnReplica,
      }
      if (audit.state === 'CRITICAL' || audit.state === 'UNKNOWN') {
        // Keep the drift ages as they were: nothing was learnt about them.
        return {...base, state: audit.state, message: audit.summary, figures, fix: `murderctl replication audit ${pair.backend.name}`}
      }
      const now = opts.now.toISOString()
      const drifting = audit.mailboxes.filter((m) => m.status !== 'in-sync').map((m) => m.name)
      state.drift[pair.backend.name] = Object.fromEntries(drifting.map((n) => [n, before[n] ?? now]))
      const ages = drifting.map((n) => (opts.now.getTime() - Date.parse(state.drift[pair.backend.name][n])) / 1000)
      const oldest = Math.max(0, ...ages)
      const perf = {oldest_drift_seconds: {uom: 's' as const, warn: t.replicationDriftWarnSeconds, min: 0}}
      const f = {...figures, oldest_drift_seconds: Math.round(oldest)}
      if (oldest > t.replicationDriftWarnSeconds)
        return {
          ...base,
          state: 'WARNING',
          message: `${label}: ${drifting.length} mailboxes differ between the members, the oldest for ${Math.round(oldest)}s (${drifting.slice(0, 3).join(', ')})`,
          figures: f,
          perf,
          fix: `murderctl replication audit ${pair.backend.name}`,
        }
      if (audit.state === 'WARNING' && !drifting.length) return {...base, state: 'WARNING', message: audit.summary, figures: f, perf}
      const tail = drifting.length ? `; ${drifting.length} mailboxes a moment behind (under ${t.replicationDriftWarnSeconds}s)` : ''
      return {...base, state: 'OK', message: `${label}: ${k.inSync} of ${k.mailboxes} sampled mailboxes (${users.size} users) in sync${tail}`, figures: f, perf}
    } catch (error) {
      const e = asMurderctlError(error)
      return {...base, state: 'CRITICAL', message: `${label} cannot be audited: ${e.oneLine()}`, figures: {}}
    }
  })
  try {
    mkdirSync(dirname(path), {recursive: true})
    writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`)
  } catch {
    // A read-only state dir costs the drift ages, not the check.
  }
  return results
}
