// replication audit: does each replication pair really hold the same mail? Cheap per-mailbox
// state (with Cyrus's own SYNC_CRC) on both members first, per-message records only where that
// differs (or --deep), and the members' syslog for the SYNCERROR events Cyrus logged, each
// judged against what the mailbox holds now. Read-only.
import {z} from 'zod'
import {CheckState, exitCodeFor, worstState} from '../check/model.js'
import {asMurderctlError, InventoryError} from '../errors.js'
import {imapdBool, murderRole} from '../cyrus/imapd-conf.js'
import {hasMupdatePush, syncClientDaemon} from '../cyrus/cyrus-conf.js'
import {hostsByRole} from '../inventory/load.js'
import {DEFAULT_SYSLOG_FILE, type Host, type Inventory} from '../inventory/schema.js'
import type {MurderContext} from '../host/context.js'
import {
  compareMessages,
  compareStates,
  type MailboxMessages,
  MailboxState,
  type MailboxSelection,
  mailboxStates,
  MessageRecord,
  messageRecords,
  messageRecordsMatching,
  StateDifference,
} from '../host/mailbox-state.js'
import {childRunning, masterPid, readImapdConf} from '../host/remote.js'
import {shellQuote} from '../ssh/quote.js'
import {readConfigs} from './status.js'

export interface Pair {
  /** The inventory's backend (replicaOf target) and replica; which one is master is read from the hosts. */
  backend: Host
  replica: Host
}

/** Every replication pair: a backend and the host whose replicaOf names it. */
export function replicationPairs(inv: Inventory): Pair[] {
  return hostsByRole(inv, 'replica').map((r) => ({replica: r, backend: inv.hosts.find((h) => h.name === r.replicaOf)!}))
}

/** A pair by either member's inventory name or the servername they share. */
export function findPair(inv: Inventory, name: string): Pair {
  const pairs = replicationPairs(inv)
  const p = pairs.find((x) => x.backend.name === name || x.replica.name === name) ?? pairs.find((x) => x.backend.servername === name)
  if (!p)
    throw new InventoryError(`no replication pair "${name}" in ${inv.path}`, {
      hint: pairs.length ? `pairs: ${pairs.map((x) => `${x.backend.name} (replica ${x.replica.name})`).join(', ')}` : 'no host has role replica with replicaOf',
    })
  return p
}

export const MemberRole = z.object({
  host: z.string(),
  /** sync_log on and a rolling sync_client configured: replication flows from here. */
  replicates: z.boolean(),
  rollingClientRunning: z.boolean(),
  /** mupdate_server set or mupdatepush at start: this member serves the murder. */
  inMurder: z.boolean(),
})
export type MemberRole = z.infer<typeof MemberRole>

export const PairRoles = z.object({
  master: z.string(),
  replica: z.string(),
  /** How the master was told apart, in words (the inventory is only the last resort). */
  decidedBy: z.string(),
  members: z.array(MemberRole),
})
export type PairRoles = z.infer<typeof PairRoles>

async function memberRole(ctx: MurderContext, host: Host): Promise<MemberRole> {
  const {imapd, cyrus} = await readConfigs(ctx, host)
  const daemon = syncClientDaemon(cyrus)
  const replicates = imapdBool(imapd.get('sync_log')) && !!daemon?.enabled
  return {
    host: host.name,
    replicates,
    rollingClientRunning: replicates && (await childRunning(ctx, host, 'sync_client')),
    inMurder: !!murderRole(imapd).mupdateServer || hasMupdatePush(cyrus),
  }
}

/** Which member is the master now, from the hosts themselves (a failover swaps them). */
export async function pairRoles(ctx: MurderContext, pair: Pair): Promise<PairRoles> {
  const members = [pair.backend, pair.replica]
  const roles = await Promise.all(members.map((h) => memberRole(ctx, h)))
  const pick = (why: string, test: (r: MemberRole) => boolean): PairRoles | null => {
    const hits = roles.filter(test)
    if (hits.length !== 1) return null
    const m = hits[0].host
    return {master: m, replica: members.find((h) => h.name !== m)!.name, decidedBy: why, members: roles}
  }
  return (
    pick('the only member running a rolling sync_client', (r) => r.rollingClientRunning) ??
    pick('the only member with sync_log and a rolling sync_client configured', (r) => r.replicates) ??
    pick('the only member in the murder (mupdate_server/mupdatepush)', (r) => r.inMurder) ?? {
      master: pair.backend.name,
      replica: pair.replica.name,
      decidedBy: 'the inventory (the hosts did not tell: neither or both replicate and serve the murder)',
      members: roles,
    }
  )
}

// ---- syslog ----------------------------------------------------------------------------------

export const SyncErrorEvent = z.object({
  host: z.string(),
  /** The syslog timestamp as written (ISO or "Nov 28 16:27:42"). */
  time: z.string(),
  mailbox: z.string(),
  uid: z.number().int(),
  /** The replica's and the master's GUID at that UID, as sync_client logged them. */
  rguid: z.string(),
  mguid: z.string(),
  /** What Cyrus did, judged from the mailbox now: both kept under new UIDs, still conflicting, or both gone since. */
  outcome: z.enum(['renumbered', 'stalled', 'gone', 'unknown']),
  detail: z.string(),
})
export type SyncErrorEvent = z.infer<typeof SyncErrorEvent>

const GUID_MISMATCH = /^(\S+(?: +\d+ \S+)?) .*?SYNCERROR: guid mismatch: mailbox=<([^>]*)> uid=<(\d+)> rguid=<([0-9a-f]*)> mguid=<([0-9a-f]*)>/

/** guid-mismatch events from syslog lines, one per (mailbox, uid, guids): Cyrus logs each twice. */
export function parseSyncErrors(host: string, text: string): Omit<SyncErrorEvent, 'outcome' | 'detail'>[] {
  const seen = new Map<string, Omit<SyncErrorEvent, 'outcome' | 'detail'>>()
  for (const line of text.split('\n')) {
    const m = GUID_MISMATCH.exec(line)
    if (!m) continue
    const key = [m[2], m[3], m[4], m[5]].join(' ')
    if (!seen.has(key)) seen.set(key, {host, time: m[1], mailbox: m[2], uid: Number(m[3]), rguid: m[4], mguid: m[5]})
  }
  return [...seen.values()]
}

/** Other SYNCERROR lines (not guid mismatches), counted: replication trouble worth a look. */
const otherSyncErrors = (text: string) => text.split('\n').filter((l) => /SYNCERROR/.test(l) && !/guid mismatch/.test(l))

/** The remote command that reads a syslog's SYNCERROR lines: all of it, or only its last `bytes`. */
export function syncLogScript(file: string, prefix: string | undefined, bytes?: number): string {
  const f = shellQuote(file)
  // Several Cyrus instances may log to one file (the lab does): keep this host's lines by its prefix.
  const filter = prefix ? ` | grep -a -F -- ${shellQuote(`${prefix}/`)}` : ''
  // tail -c on a regular file seeks: the cost is the window, whatever the file's size. The
  // window's first line is cut (unless the whole file fits): it is left out.
  const source =
    bytes === undefined
      ? `grep -a -h -E 'SYNCERROR|guid mismatch' ${f}`
      : `if [ "$(stat -c %s -- ${f})" -gt ${bytes} ]; then tail -c ${bytes} -- ${f} | tail -n +2; else cat -- ${f}; fi | grep -a -E 'SYNCERROR|guid mismatch'`
  return `[ -r ${f} ] || { echo NOLOG; exit 0; }; ${source}${filter} | tail -n 2000; true`
}

async function readSyncLog(ctx: MurderContext, host: Host, bytes?: number): Promise<{text: string; readable: boolean; file: string}> {
  const prefix = (await readImapdConf(ctx, host).catch(() => new Map<string, string>())).get('syslog_prefix')
  const file = host.cyrus.syslogFile ?? DEFAULT_SYSLOG_FILE
  const r = await ctx.pool.exec(host, {shell: syncLogScript(file, prefix, bytes)})
  if (r.stdout.startsWith('NOLOG')) return {text: '', readable: false, file}
  return {text: r.stdout, readable: true, file}
}

function judgeEvent(e: Omit<SyncErrorEvent, 'outcome' | 'detail'>, m: MessageRecord[] | undefined, r: MessageRecord[] | undefined): SyncErrorEvent {
  if (!m || !r) return {...e, outcome: 'unknown', detail: `${e.mailbox} is not on both members now`}
  const where = (ms: MessageRecord[], g: string) => ms.filter((x) => x.guid === g).map((x) => x.uid)
  const at = (ms: MessageRecord[]) => ms.find((x) => x.uid === e.uid)?.guid
  const held = [e.rguid, e.mguid].map((g) => ({g, m: where(m, g), r: where(r, g)}))
  if (at(m) && at(r) && at(m) !== at(r))
    return {...e, outcome: 'stalled', detail: `UID ${e.uid} still holds different messages (master ${at(m)}, replica ${at(r)})`}
  if (held.every((h) => h.m.length === 0 && h.r.length === 0))
    return {...e, outcome: 'gone', detail: 'neither message is in the mailbox any more (expunged since)'}
  if (held.every((h) => h.m.length === 1 && h.r.length === 1 && h.m[0] === h.r[0] && h.m[0] !== e.uid))
    return {...e, outcome: 'renumbered', detail: `both kept on both members: replica's as UID ${held[0].m[0]}, master's as UID ${held[1].m[0]}`}
  const missing = held.filter((h) => h.m.length !== 1 || h.r.length !== 1).map((h) => `${h.g.slice(0, 12)} on master ${h.m.length}x, on replica ${h.r.length}x`)
  return {...e, outcome: 'stalled', detail: `not converged: ${missing.join('; ') || 'UIDs differ between the members'}`}
}

// ---- the report ------------------------------------------------------------------------------

export const MailboxStatus = z.enum(['in-sync', 'drift', 'conflict', 'missing-on-replica', 'missing-on-master'])
export type MailboxStatus = z.infer<typeof MailboxStatus>

const Side = MessageRecord.pick({guid: true, flags: true, internalDate: true, size: true})
export const MailboxAudit = z.object({
  name: z.string(),
  status: MailboxStatus,
  /** Per-mailbox fields that differ (cheap state). */
  fields: z.array(StateDifference),
  /** Same UID, different GUID. */
  conflicts: z.array(z.object({uid: z.number().int(), master: Side, replica: Side})),
  flags: z.array(z.object({uid: z.number().int(), master: z.array(z.string()), replica: z.array(z.string())})),
  internalDates: z.array(z.object({uid: z.number().int(), master: z.number().int(), replica: z.number().int()})),
  onlyOnMaster: z.array(z.number().int()),
  onlyOnReplica: z.array(z.number().int()),
  /** Whether per-message records were compared. */
  messagesCompared: z.boolean(),
  master: MailboxState.nullable(),
  replica: MailboxState.nullable(),
})
export type MailboxAudit = z.infer<typeof MailboxAudit>

export const MemberRead = z.object({
  host: z.string(),
  readable: z.boolean(),
  error: z.string().optional(),
  mailboxes: z.number().int(),
  cyrusRunning: z.boolean().nullable(),
})

export const PairAudit = z.object({
  backend: z.string(),
  replica: z.string(),
  servername: z.string(),
  roles: PairRoles.nullable(),
  state: CheckState,
  summary: z.string(),
  members: z.array(MemberRead),
  counts: z.object({
    mailboxes: z.number().int(),
    inSync: z.number().int(),
    drift: z.number().int(),
    conflict: z.number().int(),
    missingOnReplica: z.number().int(),
    missingOnMaster: z.number().int(),
    messagesCompared: z.number().int(),
    mailboxesComparedPerMessage: z.number().int(),
  }),
  /** Every mailbox that is not in sync (all of them with `all`). */
  mailboxes: z.array(MailboxAudit),
  syncErrors: z.array(SyncErrorEvent),
  /** Other SYNCERROR lines from the members' logs (last few). */
  otherSyncErrors: z.array(z.string()),
  notes: z.array(z.string()),
  /** Where the time went (ms): roles, logs, the cheap state pass, settling, per-message records. */
  timings: z.record(z.string(), z.number()),
  durationMs: z.number(),
})
export type PairAudit = z.infer<typeof PairAudit>

export const AuditReport = z.object({
  version: z.literal(1),
  murder: z.string(),
  state: CheckState,
  summary: z.string(),
  pairs: z.array(PairAudit),
  startedAt: z.string(),
  durationMs: z.number(),
})
export type AuditReport = z.infer<typeof AuditReport>

export interface AuditOptions {
  selection?: MailboxSelection
  /** Compare every mailbox message by message, not only those whose state differs. */
  deep?: boolean
  /** Seconds to wait before re-reading mailboxes that differ (rolling replication may be a moment behind). */
  settleSeconds?: number
  /** Keep in-sync mailboxes in the report too. */
  all?: boolean
  /** Read the members' syslog for SYNCERROR (default true). */
  logs?: boolean
  /** With a selection, also audit the mailboxes the logs name (the cron check's sample). */
  includeLogged?: boolean
  /** Read only the last this many bytes of each syslog (the cron check); absent: all of it. */
  logBytes?: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function classify(
  name: string,
  m: MailboxState | null,
  r: MailboxState | null,
  fields: StateDifference[],
  mm?: MailboxMessages,
  rm?: MailboxMessages,
): MailboxAudit {
  const base: MailboxAudit = {
    name,
    status: 'in-sync',
    fields,
    conflicts: [],
    flags: [],
    internalDates: [],
    onlyOnMaster: [],
    onlyOnReplica: [],
    messagesCompared: false,
    master: m,
    replica: r,
  }
  if (!r) return {...base, status: 'missing-on-replica'}
  if (!m) return {...base, status: 'missing-on-master'}
  if (mm && rm) {
    base.messagesCompared = true
    const side = (x: MessageRecord) => ({guid: x.guid, flags: x.flags, internalDate: x.internalDate, size: x.size})
    for (const d of compareMessages(mm.messages, rm.messages).differences) {
      if (d.kind === 'conflict') base.conflicts.push({uid: d.uid, master: side(d.a!), replica: side(d.b!)})
      else if (d.kind === 'flags') base.flags.push({uid: d.uid, master: d.a!.flags, replica: d.b!.flags})
      else if (d.kind === 'internaldate') base.internalDates.push({uid: d.uid, master: d.a!.internalDate, replica: d.b!.internalDate})
      else if (d.kind === 'only-a') base.onlyOnMaster.push(d.uid)
      else base.onlyOnReplica.push(d.uid)
    }
  }
  const recreated = fields.includes('uniqueid') || fields.includes('uidvalidity')
  if (recreated || base.conflicts.length) return {...base, status: 'conflict'}
  const messageDiffs = base.flags.length + base.internalDates.length + base.onlyOnMaster.length + base.onlyOnReplica.length
  return {...base, status: fields.length || messageDiffs ? 'drift' : 'in-sync'}
}

/** Audit one pair. Never throws for host trouble: an unreadable member makes the pair CRITICAL. */
export async function auditPair(ctx: MurderContext, pair: Pair, opts: AuditOptions = {}): Promise<PairAudit> {
  const started = Date.now()
  const notes: string[] = []
  const out: PairAudit = {
    backend: pair.backend.name,
    replica: pair.replica.name,
    servername: pair.backend.servername,
    roles: null,
    state: 'UNKNOWN',
    summary: '',
    members: [pair.backend, pair.replica].map((h) => ({host: h.name, readable: false, mailboxes: 0, cyrusRunning: null})),
    counts: {mailboxes: 0, inSync: 0, drift: 0, conflict: 0, missingOnReplica: 0, missingOnMaster: 0, messagesCompared: 0, mailboxesComparedPerMessage: 0},
    mailboxes: [],
    syncErrors: [],
    otherSyncErrors: [],
    notes,
    timings: {},
    durationMs: 0,
  }
  let mark = Date.now()
  const lap = (what: string) => {
    out.timings[what] = Date.now() - mark
    mark = Date.now()
  }
  const finish = (state: CheckState, summary: string): PairAudit => ({...out, state, summary, durationMs: Date.now() - started})
  const label = `${pair.backend.name}/${pair.replica.name}`

  // Roles first: a member whose configs cannot be read cannot be audited either.
  try {
    out.roles = await pairRoles(ctx, pair)
  } catch (error) {
    const e = asMurderctlError(error)
    const member = out.members.find((x) => x.host === e.host)
    if (member) member.error = e.oneLine()
    return finish('CRITICAL', `pair ${label}: ${e.host ?? 'a member'} cannot be read: ${e.message}`)
  }
  lap('rolesMs')
  const masterHost = [pair.backend, pair.replica].find((h) => h.name === out.roles!.master)!
  const replicaHost = [pair.backend, pair.replica].find((h) => h.name === out.roles!.replica)!
  // The mail on disk can be compared with Cyrus down; but a member that does not run serves nothing.
  await Promise.all(
    [pair.backend, pair.replica].map(async (h) => {
      out.members.find((y) => y.host === h.name)!.cyrusRunning = await masterPid(ctx, h).then(
        (p) => p !== null,
        () => null,
      )
    }),
  )
  const down = out.members.filter((m) => m.cyrusRunning === false).map((m) => m.host)
  const rolling = out.roles.members.find((m) => m.host === out.roles!.master)?.rollingClientRunning
  if (out.roles.master !== pair.backend.name) notes.push(`${out.roles.master} is the master now (${out.roles.decidedBy}), not the inventory's backend`)

  // The logs first: which guid mismatches Cyrus met, and on which mailboxes.
  let events: Omit<SyncErrorEvent, 'outcome' | 'detail'>[] = []
  if (opts.logs !== false) {
    // Both members' logs at once (a syslog may be large); taken in order, master first.
    const logs = await Promise.all(
      [masterHost, replicaHost].map((h) =>
        readSyncLog(ctx, h, opts.logBytes).then(
          (log) => ({h, log}),
          (error: unknown) => ({h, error}),
        ),
      ),
    )
    for (const r of logs) {
      if ('error' in r) {
        notes.push(`${r.h.name}: cannot read its syslog: ${asMurderctlError(r.error).message}`)
        continue
      }
      const {h, log} = r
      if (!log.readable) notes.push(`${h.name}: ${log.file} is not readable; SYNCERROR events unknown (set cyrus.syslogFile in the inventory)`)
      events.push(...parseSyncErrors(h.name, log.text))
      out.otherSyncErrors.push(...otherSyncErrors(log.text).slice(-10))
    }
  }
  events = [...new Map(events.map((e) => [[e.mailbox, e.uid, e.rguid, e.mguid].join(' '), e])).values()]
  lap('logsMs')
  let sel = opts.selection ?? {}
  const selective = !!(sel.users?.length || sel.mailboxes?.length)
  if (opts.includeLogged && selective) sel = {...sel, mailboxes: [...(sel.mailboxes ?? []), ...new Set(events.map((e) => e.mailbox))]}
  const read = async (h: Host, s: MailboxSelection) => {
    const member = out.members.find((x) => x.host === h.name)!
    try {
      const states = await mailboxStates(ctx, h, s)
      member.readable = true
      return states
    } catch (error) {
      member.readable = false
      member.error = asMurderctlError(error).at({host: h.name}).oneLine()
      return null
    }
  }
  const [ms, rs] = await Promise.all([read(masterHost, sel), read(replicaHost, sel)])
  out.members.find((x) => x.host === masterHost.name)!.mailboxes = ms?.length ?? 0
  out.members.find((x) => x.host === replicaHost.name)!.mailboxes = rs?.length ?? 0
  if (!ms || !rs) {
    const bad = out.members.filter((x) => !x.readable)
    return finish('CRITICAL', `pair ${label}: ${bad.map((b) => `${b.host} cannot be read (${b.error})`).join('; ')}`)
  }
  let comparison = compareStates(ms, rs)
  lap('statesMs')

  // Rolling replication may be a moment behind: look again at what differs, once.
  const differing = () => comparison.filter((c) => c.differences.length).map((c) => c.name)
  if (differing().length && (opts.settleSeconds ?? 0) > 0) {
    await sleep(opts.settleSeconds! * 1000)
    const names = new Set(differing())
    const again = await Promise.all([read(masterHost, {mailboxes: [...names]}), read(replicaHost, {mailboxes: [...names]})])
    if (!again[0] || !again[1]) return finish('CRITICAL', `pair ${label}: a member stopped answering during the audit`)
    const fresh = compareStates(
      again[0].filter((s) => names.has(s.name)),
      again[1].filter((s) => names.has(s.name)),
    )
    const byName = new Map(fresh.map((c) => [c.name, c]))
    comparison = comparison.map((c) => byName.get(c.name) ?? (names.has(c.name) ? {...c, differences: [], a: null, b: null} : c)).filter((c) => c.a || c.b)
  }

  lap('settleMs')
  const wanted = new Set(comparison.map((c) => c.name))
  if (selective) events = events.filter((e) => wanted.has(e.mailbox))

  // Per message only where the cheap state differs, could not be proven, a log event names it, or --deep.
  const both = comparison.filter((c) => c.a && c.b)
  const eventBoxes = new Set(events.map((e) => e.mailbox))
  const deepNames = both.filter((c) => opts.deep || c.differences.length || c.unproven || eventBoxes.has(c.name)).map((c) => c.name)
  let mRec = new Map<string, MailboxMessages>()
  let rRec = new Map<string, MailboxMessages>()
  if (deepNames.length) {
    try {
      // Everything selected: one mbexamine over the patterns beats naming thousands of mailboxes.
      const whole = opts.deep && deepNames.length === both.length
      const fetch = (h: Host) => (whole ? messageRecordsMatching(ctx, h, sel) : messageRecords(ctx, h, deepNames))
      const [a, b] = await Promise.all([fetch(masterHost), fetch(replicaHost)])
      mRec = new Map(a.map((x) => [x.name, x]))
      rRec = new Map(b.map((x) => [x.name, x]))
    } catch (error) {
      const e = asMurderctlError(error)
      const member = out.members.find((x) => x.host === e.host)
      if (member) {
        member.readable = false
        member.error = e.oneLine()
      }
      return finish('CRITICAL', `pair ${label}: messages cannot be read: ${e.oneLine()}`)
    }
  }

  lap('recordsMs')
  for (const c of comparison) {
    const a = classify(c.name, c.a, c.b, c.differences, mRec.get(c.name), rRec.get(c.name))
    // Counters equal but no digest and no records read: that is not proof.
    if (a.status === 'in-sync' && c.unproven && !a.messagesCompared) a.status = 'drift'
    out.counts.mailboxes++
    out.counts[
      ({'in-sync': 'inSync', drift: 'drift', conflict: 'conflict', 'missing-on-replica': 'missingOnReplica', 'missing-on-master': 'missingOnMaster'} as const)[
        a.status
      ]
    ]++
    if (a.messagesCompared) {
      out.counts.mailboxesComparedPerMessage++
      out.counts.messagesCompared += Math.max(mRec.get(c.name)?.messages.length ?? 0, rRec.get(c.name)?.messages.length ?? 0)
    }
    if (a.status !== 'in-sync' || opts.all) out.mailboxes.push(a)
  }
  out.syncErrors = events.map((e) => judgeEvent(e, mRec.get(e.mailbox)?.messages, rRec.get(e.mailbox)?.messages))

  const k = out.counts
  const stalled = out.syncErrors.filter((e) => e.outcome === 'stalled').length
  const renumbered = out.syncErrors.filter((e) => e.outcome === 'renumbered').length
  const parts = [`${k.inSync}/${k.mailboxes} mailboxes in sync`]
  if (k.conflict) parts.push(`${k.conflict} with conflicts`)
  if (k.drift) parts.push(`${k.drift} drifting`)
  if (k.missingOnReplica) parts.push(`${k.missingOnReplica} missing on the replica`)
  if (k.missingOnMaster) parts.push(`${k.missingOnMaster} missing on the master`)
  if (renumbered) parts.push(`${renumbered} guid mismatches renumbered by Cyrus`)
  if (stalled) parts.push(`${stalled} guid mismatches NOT resolved`)
  if (down.length) parts.push(`cyrus-master NOT running on ${down.join(', ')}`)
  if (!rolling) parts.push(`no rolling sync_client running on ${masterHost.name}`)
  const summary = `pair ${label} (master ${masterHost.name}): ${parts.join(', ')}`
  const state: CheckState =
    k.conflict || stalled || down.length
      ? 'CRITICAL'
      : k.drift || k.missingOnMaster || k.missingOnReplica || !rolling
        ? 'WARNING'
        : k.mailboxes === k.inSync
          ? 'OK'
          : 'UNKNOWN'
  return finish(state, summary)
}

/** Audit pairs one after another (each already works on both members at once). */
export async function auditPairs(ctx: MurderContext, pairs: Pair[], opts: AuditOptions = {}): Promise<AuditReport> {
  const started = new Date()
  const results: PairAudit[] = []
  for (const p of pairs) results.push(await auditPair(ctx, p, opts))
  const state = results.length ? worstState(results.map((r) => r.state)) : 'UNKNOWN'
  return {
    version: 1,
    murder: ctx.inv.name,
    state,
    summary: results.length ? results.map((r) => r.summary).join('; ') : 'no replication pairs in the inventory',
    pairs: results,
    startedAt: started.toISOString(),
    durationMs: Date.now() - started.getTime(),
  }
}

export const auditExitCode = (r: AuditReport) => exitCodeFor(r.state)
