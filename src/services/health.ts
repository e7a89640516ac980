// murderctl check: every failure the runbooks repair, as Nagios-style results. Read-only.
// Facts come from the same per-host reading as `status`; a host that hangs costs at most the
// deadline, after which whatever did not finish is UNKNOWN.
import {buildReport, type CheckReport, type CheckResult, KNOWN_CHECKS, type KnownCheck} from '../check/model.js'
import {evaluateMasterCount, loadCheckState, nextCheckState, saveCheckState} from '../check/state-file.js'
import {asMurderctlError} from '../errors.js'
import {hostsByRole, master, slaveHosts} from '../inventory/load.js'
import type {Host} from '../inventory/schema.js'
import {mapLimit} from '../util/limit.js'
import type {MurderContext} from '../host/context.js'
import {masterLooksLost} from '../host/facts.js'
import {countMupdateWarn} from '../host/mboxlist.js'
import {pairsOf, syncBacklog} from '../host/pair.js'
import {readImapdConf} from '../host/remote.js'
import {type DbPathFact, tmpfsKeyCheck} from '../check/tmpfs-key.js'
import {listFences} from '../store/fence.js'
import {type HostStatus, hostStatus, murderLock} from './status.js'
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
  if (m.mupdate.banner === 'slave')
    return [{...base, state: 'CRITICAL', message: `${m.name} answers as a MUPDATE slave, not the master: check its cyrus.conf (mupdate -m)`}]
  const why = m.mupdate.bannerDetail ?? m.error ?? (m.cyrusMaster.running ? 'no answer' : 'cyrus-master is not running')
  return [
    {
      ...base,
      state: 'CRITICAL',
      message: `the MUPDATE master ${m.name} does not answer (${why}); start it, and if its mailbox list is lost run the fix`,
      fix: 'murderctl recover-master --dry-run',
    },
  ]
}

function masterCountCheck(ctx: MurderContext, facts: Facts, opts: CheckOptions): CheckResult[] {
  const m = facts.get(master(ctx.inv).name)!
  if (!m.mailboxes)
    return [
      {name: 'master-count', host: m.name, state: 'UNKNOWN', message: `cannot count the master's mailboxes: ${m.error ?? m.notes.join('; ')}`, figures: {}},
    ]
  const unifiedSlavesEnabled = ctx.inv.mode === 'unified' && murderBackends(ctx, facts).some((b) => facts.get(b.name)?.mupdate.enabled)
  const previous = loadCheckState(opts.statePath, ctx.inv.name)
  let result = evaluateMasterCount({count: m.mailboxes.total, previous, thresholds: ctx.inv.thresholds, unifiedSlavesEnabled, masterHost: m.name})
  // Whatever the history says, a master holding far less than the backends is a lost master.
  const backendsLocal = murderBackends(ctx, facts).reduce((n, b) => n + liveLocal(facts.get(b.name)), 0)
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
  // A unified pair's slave runs on whichever member is in the murder.
  const slaves = slaveHosts(ctx.inv).map((h) => inMurder(ctx, facts, h))
  return slaves.map((s): CheckResult => {
    const h = facts.get(s.name)!
    if (unread(h)) return unreachable('slaves', h)
    const figures: Record<string, number> = {}
    if (h.mailboxes) figures.mailboxes = h.mailboxes.total
    if (!h.mupdate.enabled)
      return {
        name: 'slaves',
        host: h.name,
        state: 'CRITICAL',
        message: `${h.name}'s mupdate slave is disabled in cyrus.conf: it hears nothing from the master`,
        figures,
      }
    if (h.mupdate.slaveConnected !== true)
      return {name: 'slaves', host: h.name, state: 'CRITICAL', message: `${h.name}'s mupdate slave is not connected to the master ${m.name}`, figures}
    if (h.mailboxes && m.mailboxes && h.mailboxes.total !== m.mailboxes.total)
      return {
        name: 'slaves',
        host: h.name,
        state: 'WARNING',
        message: `${h.name} holds ${h.mailboxes.total} entries, the master ${m.mailboxes.total}`,
        figures,
        fix: 'murderctl sync-backends --dry-run',
      }
    return {name: 'slaves', host: h.name, state: 'OK', message: `${h.name} is connected and holds the master's ${h.mailboxes?.total ?? '?'} entries`, figures}
  })
}

async function consistencyCheck(ctx: MurderContext, facts: Facts): Promise<CheckResult[]> {
  return mapLimit(murderBackends(ctx, facts), ctx.concurrency, async (b): Promise<CheckResult> => {
    const h = facts.get(b.name)!
    if (unread(h)) return unreachable('backend-consistency', h)
    try {
      // Counted as it streams: a backend far from its master prints a line per mailbox.
      const w = await countMupdateWarn(ctx, b, 'check')
      const figures = {changes: w.changes, local_deletes: w.counts.removeLocal}
      if (w.counts.removeLocal)
        return {
          name: 'backend-consistency',
          host: b.name,
          state: 'CRITICAL',
          message: `ctl_mboxlist -m would delete ${w.counts.removeLocal} local mailboxes on ${b.name} (${w.examples.removeLocal.join(', ')}${w.counts.removeLocal > w.examples.removeLocal.length ? ', ...' : ''})`,
          figures,
          fix: `murderctl sync-backends --backend ${b.name} --dry-run`,
        }
      if (w.changes)
        return {
          name: 'backend-consistency',
          host: b.name,
          state: 'WARNING',
          message: `${b.name} diverged from the master (${w.changes} changes)`,
          figures,
          fix: `murderctl sync-backends --backend ${b.name}`,
        }
      return {name: 'backend-consistency', host: b.name, state: 'OK', message: `${b.name} agrees with the master`, figures}
    } catch (error) {
      const e = asMurderctlError(error)
      return {name: 'backend-consistency', host: b.name, state: 'CRITICAL', message: `${b.name}: ${e.message}${e.hint ? ` (${e.hint})` : ''}`, figures: {}}
    }
  })
}

function cyrusMasterCheck(ctx: MurderContext, facts: Facts): CheckResult[] {
  const fences = listFences(ctx.inv.stateDir)
  return ctx.inv.hosts.map((host): CheckResult => {
    const h = facts.get(host.name)!
    // A fenced old master is expected down (or stopped) until reconcile: known, not an outage.
    const fence = fences.find((f) => f.member === host.name)
    if (fence && (unread(h) || !h.cyrusMaster.running))
      return {
        name: 'cyrus-master',
        host: h.name,
        state: 'WARNING',
        message: `${h.name} is FENCED since ${fence.at} and ${unread(h) ? 'unreachable' : 'stopped'}: run murderctl pair fence ${h.name} once it is back, then reconcile`,
        figures: {},
      }
    if (unread(h)) return unreachable('cyrus-master', h)
    return h.cyrusMaster.running
      ? {name: 'cyrus-master', host: h.name, state: 'OK', message: `cyrus-master runs on ${h.name} (pid ${h.cyrusMaster.pid})`, figures: {}}
      : {
          name: 'cyrus-master',
          host: h.name,
          state: 'CRITICAL',
          message: `cyrus-master is not running on ${h.name}: start it (${host.cyrus.start})`,
          figures: {},
        }
  })
}

/**
 * The backends taking part in the murder: a pair member stands for its pair only while it holds
 * the master config, so after a failover the promoted replica is checked in its backend's place.
 */
function murderBackends(ctx: MurderContext, facts: Facts): Host[] {
  return hostsByRole(ctx.inv, 'backend').map((b) => inMurder(ctx, facts, b))
}

/** The member of b's pair that is in the murder (b itself when it has no pair or it is unclear). */
function inMurder(ctx: MurderContext, facts: Facts, b: Host): Host {
  const pair = pairsOf(ctx.inv).find((p) => p.name === b.name)
  if (!pair) return b
  const members = pair.members.filter((m) => facts.get(m.name)?.mupdateServer)
  return members.length === 1 ? members[0]! : b
}

async function replicationCheck(ctx: MurderContext, facts: Facts): Promise<CheckResult[]> {
  const t = ctx.inv.thresholds
  const fences = listFences(ctx.inv.stateDir)
  const fenced = (name: string) => fences.find((f) => f.member === name)
  const results = await mapLimit(pairsOf(ctx.inv), ctx.concurrency, async (pair): Promise<CheckResult[]> => {
    const [x, y] = pair.members.map((m) => facts.get(m.name)!) as [HostStatus, HostStatus]
    const name = `${pair.name}/${pair.members[1].name}`
    const inMurder = [x, y].filter((m) => m.mupdateServer || m.mupdatePush)
    const rolling = [x, y].filter((m) => m.replication.rollingClient === 'running')
    // Either way round is fine; both at once is a split brain in the making.
    if (inMurder.length === 2)
      return [
        {
          name: 'replication',
          host: pair.name,
          state: 'CRITICAL',
          message: `both members of pair ${name} are configured for the murder (${inMurder.map((m) => `${m.name}: ${m.mupdateServer ? 'mupdate_server' : 'mupdatepush'}`).join(', ')}); only one may be`,
          figures: {},
          fix: `murderctl pair status ${pair.name}`,
        },
      ]
    if (rolling.length === 2)
      return [
        {
          name: 'replication',
          host: pair.name,
          state: 'CRITICAL',
          message: `both members of pair ${name} run a rolling sync_client towards each other`,
          figures: {},
          fix: `murderctl pair status ${pair.name}`,
        },
      ]
    // The master: the member in the murder; with neither readable as such, the inventory's backend.
    const master = [x, y].find((m) => m.mupdateServer) ?? (unread(x) ? x : ([x, y].find((m) => m.replication.syncLog) ?? x))
    const replica = master === x ? y : x
    const masterHost = pair.members.find((m) => m.name === master.name)!
    const out: CheckResult[] = []
    const fence = fenced(replica.name)
    if (fence)
      out.push({
        name: 'replication',
        host: replica.name,
        state: 'WARNING',
        message: `${replica.name} is FENCED since ${fence.at} (hard failover to ${fence.promoted}): no replication towards it until reconcile`,
        figures: {},
      })
    else if (unread(replica))
      out.push({
        ...unreachable('replication', replica),
        message: `replica ${replica.name} of pair ${pair.name} cannot be read: ${replica.error ?? 'unreachable'}`,
      })
    else if (!replica.cyrusMaster.running)
      out.push({
        name: 'replication',
        host: replica.name,
        state: 'CRITICAL',
        message: `cyrus-master is not running on replica ${replica.name}: replication to it stops`,
        figures: {},
      })
    if (unread(master)) {
      out.push(unreachable('replication', master))
      return out
    }
    let backlog = {bytes: 0, ageSeconds: 0}
    try {
      backlog = await syncBacklog(ctx, masterHost, await readImapdConf(ctx, masterHost))
    } catch (error) {
      out.push({
        name: 'replication',
        host: master.name,
        state: 'UNKNOWN',
        message: `cannot read ${master.name}'s sync log: ${asMurderctlError(error).message}`,
        figures: {},
      })
      return out
    }
    const figures = {sync_log_bytes: backlog.bytes, sync_log_age_seconds: backlog.ageSeconds}
    const perf = {
      sync_log_bytes: {uom: 'B' as const, warn: t.syncLogWarnBytes, crit: t.syncLogCritBytes, min: 0},
      sync_log_age_seconds: {uom: 's' as const, warn: t.syncLogWarnAgeSeconds, crit: t.syncLogCritAgeSeconds, min: 0},
    }
    const base = {name: 'replication', host: master.name, figures, perf}
    if (master.replication.rollingClient !== 'running')
      out.push({
        ...base,
        state: fence ? 'WARNING' : 'CRITICAL',
        message: `the rolling sync_client on ${master.name} is ${master.replication.rollingClient === 'none' ? 'not configured' : master.replication.rollingClient}: changes are not reaching ${replica.name} (${backlog.bytes} bytes waiting)`,
      })
    else if (backlog.bytes > t.syncLogCritBytes || backlog.ageSeconds > t.syncLogCritAgeSeconds)
      out.push({
        ...base,
        state: 'CRITICAL',
        message: `${master.name}'s sync log to ${replica.name} is behind: ${backlog.bytes} bytes, oldest ${backlog.ageSeconds}s`,
      })
    else if (backlog.bytes > t.syncLogWarnBytes || backlog.ageSeconds > t.syncLogWarnAgeSeconds)
      out.push({
        ...base,
        state: 'WARNING',
        message: `${master.name}'s sync log to ${replica.name} is behind: ${backlog.bytes} bytes, oldest ${backlog.ageSeconds}s`,
      })
    else if (!out.length)
      out.push({...base, state: 'OK', message: `${master.name} -> ${replica.name} replicating (pair ${pair.name}), ${backlog.bytes} bytes waiting`})
    return out
  })
  return results.flat()
}

function uniqueidCheck(ctx: MurderContext, facts: Facts): CheckResult[] {
  return murderBackends(ctx, facts).map((b): CheckResult => {
    const h = facts.get(b.name)!
    if (unread(h)) return unreachable('uniqueid', h)
    if (!h.mailboxes) return {name: 'uniqueid', host: b.name, state: 'UNKNOWN', message: `cannot read ${b.name}'s mailbox list`, figures: {}}
    const n = h.mailboxes.withoutUniqueid
    return n
      ? {
          name: 'uniqueid',
          host: b.name,
          state: 'CRITICAL',
          message: `${n} local mailboxes on ${b.name} have no uniqueid: Cyrus 3.6 cannot open them (reconstruct them)`,
          figures: {without_uniqueid: n},
        }
      : {name: 'uniqueid', host: b.name, state: 'OK', message: `every local mailbox on ${b.name} has a uniqueid`, figures: {without_uniqueid: 0}}
  })
}

/** Local entries less delayed-delete tombstones (only local entries are ever tombstones). */
const liveLocal = (h?: HostStatus) => (h?.mailboxes ? h.mailboxes.local - h.mailboxes.deleted : 0)

const timedOut = (name: string, seconds: number): CheckResult => ({
  name,
  state: 'UNKNOWN',
  message: `did not finish within ${seconds}s (a host may hang)`,
  figures: {},
})

/** Run the checks; anything not finished by the deadline is UNKNOWN. Never throws for host trouble. */
export async function runChecks(ctx: MurderContext, opts: CheckOptions): Promise<CheckReport> {
  const started = new Date()
  const deadline = Date.now() + opts.deadlineMs
  const wanted = new Set<CheckName>(opts.only?.length ? opts.only : CHECK_NAMES)
  const within = <T>(p: Promise<T>, fallback: () => T): Promise<T> => {
    let timer: NodeJS.Timeout
    return Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(fallback()), Math.max(0, deadline - Date.now()))))]).finally(() =>
      clearTimeout(timer),
    )
  }
  const seconds = Math.round(opts.deadlineMs / 1000)
  // Only count mailboxes where a check needs them.
  const needCounts = wanted.has('master-count') || wanted.has('slaves') || wanted.has('uniqueid')
  const facts: Facts = new Map()
  const read = mapLimit(ctx.inv.hosts, ctx.concurrency, async (h) =>
    facts.set(h.name, await hostStatus(ctx, h, {counts: needCounts, probeTimeoutMs: Math.min(5000, opts.deadlineMs / 2)})),
  )
  const gotFacts = await within(
    read.then(() => true),
    () => false,
  )
  if (!gotFacts)
    return buildReport(
      ctx.inv.name,
      [...wanted].map((n) => timedOut(n, seconds)),
      started,
      Date.now() - started.getTime(),
    )
  const checks: Promise<CheckResult[]>[] = []
  const sync = (name: CheckName, fn: () => CheckResult[]) => wanted.has(name) && checks.push(Promise.resolve().then(fn))
  sync('mupdate-master', () => mupdateMasterCheck(ctx, facts))
  sync('master-count', () => masterCountCheck(ctx, facts, opts))
  sync('slaves', () => slavesCheck(ctx, facts))
  sync('cyrus-master', () => cyrusMasterCheck(ctx, facts))
  sync('uniqueid', () => uniqueidCheck(ctx, facts))
  if (wanted.has('tmpfs-key')) checks.push(within(tmpfsKey(ctx, facts), () => [timedOut('tmpfs-key', seconds)]))
  if (wanted.has('lock')) checks.push(within(lockCheck(ctx), () => [timedOut('lock', seconds)]))
  if (wanted.has('backend-consistency')) checks.push(within(consistencyCheck(ctx, facts), () => [timedOut('backend-consistency', seconds)]))
  if (wanted.has('replication')) checks.push(within(replicationCheck(ctx, facts), () => [timedOut('replication', seconds)]))
  if (wanted.has('replication-consistency'))
    checks.push(
      within(replicationConsistencyCheck(ctx, {statePath: opts.statePath, now: opts.now?.() ?? new Date()}), () => [
        timedOut('replication-consistency', seconds),
      ]),
    )
  const results = (await Promise.all(checks)).flat()
  return buildReport(ctx.inv.name, results, started, Date.now() - started.getTime())
}

/** Every readable host's mboxlist_db_path (imapd.conf was read with the facts: no extra command). */
async function tmpfsKey(ctx: MurderContext, facts: Facts): Promise<CheckResult[]> {
  const paths = await mapLimit(ctx.inv.hosts, ctx.concurrency, async (h): Promise<DbPathFact> => {
    const base = {host: h.name, imapdConf: h.cyrus.imapdConf}
    if (!facts.get(h.name)?.reachable) return {...base, read: false}
    return readImapdConf(ctx, h).then(
      (c) => ({...base, read: true, dbPath: c.get('mboxlist_db_path')}),
      () => ({...base, read: false}),
    )
  })
  return tmpfsKeyCheck(paths, master(ctx.inv).name)
}

/** A held run lock: WARNING (a recovery or sync is under way), CRITICAL once older than the threshold (likely left by a dead run). */
async function lockCheck(ctx: MurderContext): Promise<CheckResult[]> {
  const m = master(ctx.inv)
  let lock: Awaited<ReturnType<typeof murderLock>>
  try {
    lock = await murderLock(ctx)
  } catch (error) {
    return [{name: 'lock', host: m.name, state: 'UNKNOWN', message: `cannot read the run lock: ${asMurderctlError(error).message}`, figures: {}}]
  }
  if (!lock) return [{name: 'lock', host: m.name, state: 'OK', message: "no run holds the murder's lock", figures: {lockAgeSeconds: 0}}]
  const age = lock.ageSeconds ?? 0
  const crit = age > ctx.inv.thresholds.lockCritAgeSeconds
  return [
    {
      name: 'lock',
      host: m.name,
      state: crit ? 'CRITICAL' : 'WARNING',
      message: `the murder's run lock is held by ${lock.owner ?? `run ${lock.run}`} for ${age} s${crit ? ` (more than ${ctx.inv.thresholds.lockCritAgeSeconds} s: resume that run, or murderctl recover-master --break-lock if it is dead)` : ''}`,
      figures: {lockAgeSeconds: age},
    },
  ]
}
