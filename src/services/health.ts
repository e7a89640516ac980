// murderctl check: every failure the runbooks repair, as Nagios-style results. Read-only.
// Facts come from the same per-host reading as `status`; a host that hangs costs at most the
// deadline, after which whatever did not finish is UNKNOWN.
import {buildReport, type CheckReport, type CheckResult, KNOWN_CHECKS, type KnownCheck} from '../check/model.js'
import {evaluateMasterCount, loadCheckState, nextCheckState, saveCheckState} from '../check/state-file.js'
import {asMurderctlError} from '../errors.js'
import {hostsByRole, master, slaveHosts} from '../inventory/load.js'
import type {Host} from '../inventory/schema.js'
import {shellQuote} from '../ssh/quote.js'
import {mapLimit} from '../util/limit.js'
import {dbInfo} from '../host/db.js'
import type {MurderContext} from '../host/context.js'
import {masterLooksLost} from '../host/facts.js'
import {mupdateWarn} from '../host/mboxlist.js'
import {type HostStatus, hostStatus} from './status.js'
import {replicationConsistencyCheck} from './replication-consistency.js'

/** The checks this murderctl runs: the check model's known ones, in report order. */
export const CHECK_NAMES = KNOWN_CHECKS
export type CheckName = KnownCheck

export interface CheckOptions {
  only?: CheckName[]
  deadlineMs: number
  statePath: string
  now?: () => Date
}

type Facts = Map<string, HostStatus>

/** A host that could not be read (fully): SSH down, or a command that failed or hung. */
const unread = (h: HostStatus) => !h.reachable || h.error !== undefined

const unreachable = (name: string, h: HostStatus): CheckResult => ({
  name,
  host: h.name,
  state: 'CRITICAL',
  message: `${h.name} cannot be read: ${h.error ?? 'unreachable'}`,
  figures: {},
})

function mupdateMasterCheck(ctx: MurderContext, facts: Facts): CheckResult[] {
  const m = facts.get(master(ctx.inv).name)!
  const base = {name: 'mupdate-master', host: m.name, figures: {}}
  if (m.mupdate.banner === 'master') return [{...base, state: 'OK', message: `${m.name} answers as the MUPDATE master`}]
  if (m.mupdate.banner === 'slave') return [{...base, state: 'CRITICAL', message: `${m.name} answers as a MUPDATE slave, not the master: check its cyrus.conf (mupdate -m)`}]
  const why = m.mupdate.bannerDetail ?? m.error ?? (m.cyrusMaster.running ? 'no answer' : 'cyrus-master is not running')
  return [{...base, state: 'CRITICAL', message: `the MUPDATE master ${m.name} does not answer (${why}); start it, and if its mailbox list is lost run the fix`, fix: 'murderctl recover-master --dry-run'}]
}

function masterCountCheck(ctx: MurderContext, facts: Facts, opts: CheckOptions): CheckResult[] {
  const m = facts.get(master(ctx.inv).name)!
  if (!m.mailboxes) return [{name: 'master-count', host: m.name, state: 'UNKNOWN', message: `cannot count the master's mailboxes: ${m.error ?? m.notes.join('; ')}`, figures: {}}]
  const unifiedSlavesEnabled = ctx.inv.mode === 'unified' && hostsByRole(ctx.inv, 'backend').some((b) => facts.get(b.name)?.mupdate.enabled)
  const previous = loadCheckState(opts.statePath, ctx.inv.name)
  let result = evaluateMasterCount({count: m.mailboxes.total, previous, thresholds: ctx.inv.thresholds, unifiedSlavesEnabled, masterHost: m.name})
  // Whatever the history says, a master holding far less than the backends is a lost master.
  const backendsLocal = hostsByRole(ctx.inv, 'backend').reduce((n, b) => n + liveLocal(facts.get(b.name)), 0)
  if (masterLooksLost(m.mailboxes.total, backendsLocal, ctx.inv.thresholds))
    result = {
      ...result,
      state: 'CRITICAL',
      message: `the master ${m.name} holds ${m.mailboxes.total} entries, the backends ${backendsLocal} local mailboxes: its list is lost`,
      figures: {...result.figures, backends_local_mailboxes: backendsLocal},
      fix: 'murderctl recover-master --dry-run',
    }
  const next = nextCheckState({murder: ctx.inv.name, count: m.mailboxes.total, previous, result, now: opts.now?.() ?? new Date()})
  if (next) saveCheckState(opts.statePath, next)
  return [result]
}

function slavesCheck(ctx: MurderContext, facts: Facts): CheckResult[] {
  const m = facts.get(master(ctx.inv).name)!
  const slaves = slaveHosts(ctx.inv)
  return slaves.map((s): CheckResult => {
    const h = facts.get(s.name)!
    if (unread(h)) return unreachable('slaves', h)
    const figures: Record<string, number> = {}
    if (h.mailboxes) figures.mailboxes = h.mailboxes.total
    if (!h.mupdate.enabled) return {name: 'slaves', host: h.name, state: 'CRITICAL', message: `${h.name}'s mupdate slave is disabled in cyrus.conf: it hears nothing from the master`, figures}
    if (h.mupdate.slaveConnected !== true) return {name: 'slaves', host: h.name, state: 'CRITICAL', message: `${h.name}'s mupdate slave is not connected to the master ${m.name}`, figures}
    if (h.mailboxes && m.mailboxes && h.mailboxes.total !== m.mailboxes.total)
      return {name: 'slaves', host: h.name, state: 'WARNING', message: `${h.name} holds ${h.mailboxes.total} entries, the master ${m.mailboxes.total}`, figures, fix: 'murderctl sync-backends --dry-run'}
    return {name: 'slaves', host: h.name, state: 'OK', message: `${h.name} is connected and holds the master's ${h.mailboxes?.total ?? '?'} entries`, figures}
  })
}

async function consistencyCheck(ctx: MurderContext, facts: Facts): Promise<CheckResult[]> {
  return mapLimit(hostsByRole(ctx.inv, 'backend'), ctx.concurrency, async (b): Promise<CheckResult> => {
    const h = facts.get(b.name)!
    if (unread(h)) return unreachable('backend-consistency', h)
    try {
      const w = await mupdateWarn(ctx, b, 'check')
      const figures = {changes: w.changes, local_deletes: w.plan.removeLocal.length}
      if (w.plan.removeLocal.length)
        return {name: 'backend-consistency', host: b.name, state: 'CRITICAL', message: `ctl_mboxlist -m would delete ${w.plan.removeLocal.length} local mailboxes on ${b.name}`, figures, fix: `murderctl sync-backends --backend ${b.name} --dry-run`}
      if (w.changes)
        return {name: 'backend-consistency', host: b.name, state: 'WARNING', message: `${b.name} diverged from the master (${w.changes} changes)`, figures, fix: `murderctl sync-backends --backend ${b.name}`}
      return {name: 'backend-consistency', host: b.name, state: 'OK', message: `${b.name} agrees with the master`, figures}
    } catch (error) {
      const e = asMurderctlError(error)
      return {name: 'backend-consistency', host: b.name, state: 'CRITICAL', message: `${b.name}: ${e.message}${e.hint ? ` (${e.hint})` : ''}`, figures: {}}
    }
  })
}

function cyrusMasterCheck(ctx: MurderContext, facts: Facts): CheckResult[] {
  return ctx.inv.hosts.map((host): CheckResult => {
    const h = facts.get(host.name)!
    if (unread(h)) return unreachable('cyrus-master', h)
    return h.cyrusMaster.running
      ? {name: 'cyrus-master', host: h.name, state: 'OK', message: `cyrus-master runs on ${h.name} (pid ${h.cyrusMaster.pid})`, figures: {}}
      : {name: 'cyrus-master', host: h.name, state: 'CRITICAL', message: `cyrus-master is not running on ${h.name}: start it (${host.cyrus.start})`, figures: {}}
  })
}

/** Size and age (seconds) of the sync log backlog: sync/log and sync/log-run together. */
async function syncBacklog(ctx: MurderContext, b: Host): Promise<{bytes: number; ageSeconds: number}> {
  const {configDirectory} = await dbInfo(ctx, b)
  const files = ['log', 'log-run'].map((f) => shellQuote(`${configDirectory}/sync/${f}`))
  const r = await ctx.pool.exec(b, {shell: `date +%s; for f in ${files.join(' ')}; do [ -s "$f" ] && stat -c '%s %W %Y' -- "$f"; done; true`})
  const [now, ...rows] = r.stdout.trim().split('\n')
  let bytes = 0
  let oldest = Number(now)
  for (const row of rows) {
    const [size, born, modified] = row.split(' ').map(Number)
    bytes += size
    // Birth time when the filesystem keeps it (the oldest unsent change), else the last write.
    oldest = Math.min(oldest, born > 0 ? born : modified)
  }
  return {bytes, ageSeconds: bytes ? Number(now) - oldest : 0}
}

async function replicationCheck(ctx: MurderContext, facts: Facts): Promise<CheckResult[]> {
  const t = ctx.inv.thresholds
  const pairs = hostsByRole(ctx.inv, 'replica').map((r) => ({replica: r, backend: ctx.inv.hosts.find((h) => h.name === r.replicaOf)!}))
  const results = await mapLimit(pairs, ctx.concurrency, async ({replica, backend}): Promise<CheckResult[]> => {
    const b = facts.get(backend.name)!
    const r = facts.get(replica.name)!
    const out: CheckResult[] = []
    const pair = `${backend.name}/${replica.name}`
    if (unread(r)) out.push({...unreachable('replication', r), message: `replica ${replica.name} of ${backend.name} cannot be read: ${r.error ?? 'unreachable'}`})
    else if (r.mupdateServer || r.mupdatePush)
      out.push({name: 'replication', host: replica.name, state: 'CRITICAL', message: `both members of pair ${pair} are in the murder: ${replica.name} has ${r.mupdateServer ? 'mupdate_server' : 'mupdatepush'} set; only one member may be`, figures: {}})
    else if (!r.cyrusMaster.running) out.push({name: 'replication', host: replica.name, state: 'CRITICAL', message: `cyrus-master is not running on replica ${replica.name}: replication to it stops`, figures: {}})
    if (unread(b)) {
      out.push(unreachable('replication', b))
      return out
    }
    let backlog = {bytes: 0, ageSeconds: 0}
    try {
      backlog = await syncBacklog(ctx, backend)
    } catch (error) {
      out.push({name: 'replication', host: backend.name, state: 'UNKNOWN', message: `cannot read ${backend.name}'s sync log: ${asMurderctlError(error).message}`, figures: {}})
      return out
    }
    const figures = {sync_log_bytes: backlog.bytes, sync_log_age_seconds: backlog.ageSeconds}
    const perf = {sync_log_bytes: {uom: 'B' as const, warn: t.syncLogWarnBytes, crit: t.syncLogCritBytes, min: 0}, sync_log_age_seconds: {uom: 's' as const, warn: t.syncLogWarnAgeSeconds, crit: t.syncLogCritAgeSeconds, min: 0}}
    const base = {name: 'replication', host: backend.name, figures, perf}
    if (b.replication.rollingClient !== 'running')
      out.push({...base, state: 'CRITICAL', message: `the rolling sync_client on ${backend.name} is ${b.replication.rollingClient === 'none' ? 'not configured' : b.replication.rollingClient}: changes are not reaching ${replica.name} (${backlog.bytes} bytes waiting)`})
    else if (backlog.bytes > t.syncLogCritBytes || backlog.ageSeconds > t.syncLogCritAgeSeconds)
      out.push({...base, state: 'CRITICAL', message: `${backend.name}'s sync log to ${replica.name} is behind: ${backlog.bytes} bytes, oldest ${backlog.ageSeconds}s`})
    else if (backlog.bytes > t.syncLogWarnBytes || backlog.ageSeconds > t.syncLogWarnAgeSeconds)
      out.push({...base, state: 'WARNING', message: `${backend.name}'s sync log to ${replica.name} is behind: ${backlog.bytes} bytes, oldest ${backlog.ageSeconds}s`})
    else if (!out.length) out.push({...base, state: 'OK', message: `${pair} replicating, ${backlog.bytes} bytes waiting`})
    return out
  })
  return results.flat()
}

function uniqueidCheck(ctx: MurderContext, facts: Facts): CheckResult[] {
  return hostsByRole(ctx.inv, 'backend').map((b): CheckResult => {
    const h = facts.get(b.name)!
    if (unread(h)) return unreachable('uniqueid', h)
    if (!h.mailboxes) return {name: 'uniqueid', host: b.name, state: 'UNKNOWN', message: `cannot read ${b.name}'s mailbox list`, figures: {}}
    const n = h.mailboxes.withoutUniqueid
    return n
      ? {name: 'uniqueid', host: b.name, state: 'CRITICAL', message: `${n} local mailboxes on ${b.name} have no uniqueid: Cyrus 3.6 cannot open them (reconstruct them)`, figures: {without_uniqueid: n}}
      : {name: 'uniqueid', host: b.name, state: 'OK', message: `every local mailbox on ${b.name} has a uniqueid`, figures: {without_uniqueid: 0}}
  })
}

/** Local entries less delayed-delete tombstones (only local entries are ever tombstones). */
const liveLocal = (h?: HostStatus) => (h?.mailboxes ? h.mailboxes.local - h.mailboxes.deleted : 0)

const timedOut = (name: string, seconds: number): CheckResult => ({name, state: 'UNKNOWN', message: `did not finish within ${seconds}s (a host may hang)`, figures: {}})

/** Run the checks; anything not finished by the deadline is UNKNOWN. Never throws for host trouble. */
export async function runChecks(ctx: MurderContext, opts: CheckOptions): Promise<CheckReport> {
  const started = new Date()
  const deadline = Date.now() + opts.deadlineMs
  const wanted = new Set<CheckName>(opts.only?.length ? opts.only : CHECK_NAMES)
  const within = <T>(p: Promise<T>, fallback: () => T): Promise<T> => {
    let timer: NodeJS.Timeout
    return Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(fallback()), Math.max(0, deadline - Date.now()))))]).finally(() => clearTimeout(timer))
  }
  const seconds = Math.round(opts.deadlineMs / 1000)
  // Only count mailboxes where a check needs them.
  const needCounts = wanted.has('master-count') || wanted.has('slaves') || wanted.has('uniqueid')
  const facts: Facts = new Map()
  const read = mapLimit(ctx.inv.hosts, ctx.concurrency, async (h) => facts.set(h.name, await hostStatus(ctx, h, {counts: needCounts, probeTimeoutMs: Math.min(5000, opts.deadlineMs / 2)})))
  const gotFacts = await within(read.then(() => true), () => false)
  if (!gotFacts) return buildReport(ctx.inv.name, [...wanted].map((n) => timedOut(n, seconds)), started, Date.now() - started.getTime())
  const checks: Promise<CheckResult[]>[] = []
  const sync = (name: CheckName, fn: () => CheckResult[]) => wanted.has(name) && checks.push(Promise.resolve().then(fn))
  sync('mupdate-master', () => mupdateMasterCheck(ctx, facts))
  sync('master-count', () => masterCountCheck(ctx, facts, opts))
  sync('slaves', () => slavesCheck(ctx, facts))
  sync('cyrus-master', () => cyrusMasterCheck(ctx, facts))
  sync('uniqueid', () => uniqueidCheck(ctx, facts))
  if (wanted.has('backend-consistency')) checks.push(within(consistencyCheck(ctx, facts), () => [timedOut('backend-consistency', seconds)]))
  if (wanted.has('replication')) checks.push(within(replicationCheck(ctx, facts), () => [timedOut('replication', seconds)]))
  if (wanted.has('replication-consistency'))
    checks.push(within(replicationConsistencyCheck(ctx, {statePath: opts.statePath, now: opts.now?.() ?? new Date()}), () => [timedOut('replication-consistency', seconds)]))
  const results = (await Promise.all(checks)).flat()
  return buildReport(ctx.inv.name, results, started, Date.now() - started.getTime())
}
