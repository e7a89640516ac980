// murderctl reconcile PAIR: after a hard failover, put on the new master every message the old
// (FENCED) member holds and the new one lacks, then let the new master replicate over it.
// David Carter's procedure (seed 003) as a journaled, idempotent run:
//   plan (reads only) -> reinject missing messages into the new master over IMAP, as their
//   owner, with flags and internaldate; mailboxes only on the old side recreated through the
//   murder; messages of mailboxes deleted on the new side into a recovery folder -> verify every
//   GUID of the affected mailboxes is on the new master -> only then: expunge on the old member
//   what the new one holds differently (files copied aside first), lift the FENCED mark,
//   sync_client -u per affected user, rolling replication (pair replicate) -> prove both equal.
// Why the old-side expunge: Cyrus 3.6's sync_client copies a replica's own records back into the
// master (sync_support.c copyback_one_record), which would put every reinjected message there a
// second time; records expunged on the replica are skipped.
import {createHash} from 'node:crypto'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {z} from 'zod'
import {AbortError, NeedsConfirmationError, RefusedError, UnreachableError, asMurderctlError} from '../errors.js'
import {Journal, newRunId, saveDbAside} from '../engine/journal.js'
import type {MurderContext} from '../host/context.js'
import {type MailboxState, type MessageRecord, compareStates, mailboxStates, messageRecords} from '../host/mailbox-state.js'
import {mailboxPath} from '../host/message-file.js'
import {scanDump} from '../host/mboxlist.js'
import {activeOf, findPair, otherMember, type Pair, readMember, syncBacklog, syncDir} from '../host/pair.js'
import {copyAside, masterPid, readImapdConf, tool} from '../host/remote.js'
import {type ImapClient, imapString} from '../imap/client.js'
import {imapDate, ownerView} from '../imap/mailbox-name.js'
import {imapSession as inventorySession} from '../imap/session.js'
import {master as mupdateMaster} from '../inventory/load.js'
import type {Host} from '../inventory/schema.js'
import {shellQuote} from '../ssh/quote.js'
import {type FenceMark, liftFence, readFence} from '../store/fence.js'
import {sha256} from '../util/hash.js'
import {startReplication} from './failover.js'

const imapSession = <T>(ctx: MurderContext, host: Host, asUser: string | null, fn: (c: ImapClient) => Promise<T>) => inventorySession(ctx.inv, host, asUser, fn)

// ---- the plan -----------------------------------------------------------------------------------

export const PlannedMessage = z.object({
  uid: z.number().int(),
  guid: z.string(),
  flags: z.array(z.string()),
  internalDate: z.number().int(),
  size: z.number().int(),
  /** The new master holds another message under this UID in the same mailbox (seed 004). */
  uidCollision: z.boolean(),
  /** The new master had this UID at the cutoff: the message may have been expunged there since. */
  beforeCutoff: z.boolean(),
})
export type PlannedMessage = z.infer<typeof PlannedMessage>

export const MailboxAction = z.enum([
  /** The mailbox is on both: missing messages are appended to it. */
  'reinject',
  /** Only on the old member, created after the cutoff: created through the murder, then filled. */
  'recreate',
  /** On the new master at the cutoff, deleted there since (Carter's trap): into the recovery folder. */
  'recover',
])

export const MailboxPlan = z.object({
  source: z.string(),
  target: z.string(),
  owner: z.string().nullable(),
  action: MailboxAction,
  /** Why it was looked at: sync-log, state-differs, all. */
  why: z.array(z.string()),
  messages: z.array(PlannedMessage),
  /** Every GUID the old member holds in the mailbox: what verify proves is on the new master. */
  oldGuids: z.array(z.string()),
  /** Messages on both whose flags differ (reported; the new master's flags stand). */
  flagDifferences: z.array(z.object({guid: z.string(), old: z.array(z.string()), new: z.array(z.string())})),
})
export type MailboxPlan = z.infer<typeof MailboxPlan>

export const ReconcilePlan = z.object({
  version: z.literal(1),
  pair: z.string(),
  oldMember: z.string(),
  newMember: z.string(),
  createdAt: z.string(),
  cutoff: z.object({file: z.string(), at: z.string(), run: z.string()}).nullable(),
  fence: z.object({at: z.string(), run: z.string()}).nullable(),
  recoveryFolder: z.string(),
  all: z.boolean(),
  syncLogFiles: z.array(z.string()),
  mailboxes: z.array(MailboxPlan),
  totals: z.object({
    mailboxes: z.number(),
    messages: z.number(),
    bytes: z.number(),
    recreate: z.number(),
    recover: z.number(),
    uidCollisions: z.number(),
    flagDifferences: z.number(),
  }),
  /** sha256 of what the plan would change: --apply refuses a plan whose fingerprint the hosts no longer give. */
  fingerprint: z.string(),
})
export type ReconcilePlan = z.infer<typeof ReconcilePlan>

const Cutoff = z.object({
  pair: z.string(),
  promoted: z.string(),
  lost: z.string(),
  at: z.string(),
  run: z.string(),
  mailboxes: z.array(z.looseObject({name: z.string(), uniqueid: z.string(), lastUid: z.number()})),
})

/** Mailbox names a sync log names (3.6: `APPEND name`, `MAILBOX name`, `DOUBLEMAILBOX a b`, `SEEN user name`...), and users it names whole. */
export function parseSyncLog(text: string): {mailboxes: string[]; users: string[]} {
  const mailboxes = new Set<string>()
  const users = new Set<string>()
  for (const line of text.split('\n')) {
    const words = [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!))
    const [kind, ...args] = words
    if (!kind) continue
    switch (kind.toUpperCase()) {
      case 'APPEND':
      case 'MAILBOX':
      case 'UNMAILBOX':
      case 'DOUBLEMAILBOX':
      case 'ANNOTATION':
        for (const a of args) mailboxes.add(a)
        break
      case 'SEEN':
      case 'SUB':
      case 'UNSUB':
        if (args[1]) mailboxes.add(args[1])
        if (args[0]) users.add(args[0])
        break
      case 'USER':
      case 'UNUSER':
      case 'META':
      case 'SIEVE':
        if (args[0]) users.add(args[0])
        break
    }
  }
  return {mailboxes: [...mailboxes].sort(), users: [...users].sort()}
}

/** The internal name of a mailbox's place in the recovery folder: under its owner's INBOX, keeping its path. */
export function recoveryTarget(source: string, folder: string, sep = '.'): string {
  const bang = source.indexOf('!')
  const domain = bang >= 0 ? source.slice(0, bang + 1) : ''
  const parts = source.slice(domain.length).split(sep)
  if (parts[0] === 'user' && parts.length >= 2) return `${domain}${['user', parts[1], folder, ...(parts.length > 2 ? parts.slice(2) : ['INBOX'])].join(sep)}`
  return `${domain}${[folder, ...parts].join(sep)}`
}

const lowerFlags = (f: string[]) =>
  f
    .map((x) => x.toLowerCase())
    .sort()
    .join(' ')

/** The pure part of planning: what each affected mailbox needs, from both members' records. */
export function planMailbox(input: {
  source: string
  why: string[]
  old: MessageRecord[]
  /** The target's records on the new master, null when the target does not exist there. */
  target: {name: string; messages: MessageRecord[]} | null
  action: z.infer<typeof MailboxAction>
  owner: string | null
  /** The new master's last UID of this mailbox at the cutoff, when it had it. */
  cutoffLastUid: number | null
  targetName: string
}): MailboxPlan {
  const have = new Map<string, MessageRecord>()
  for (const m of input.target?.messages ?? []) have.set(m.guid, m)
  const byUid = new Map((input.action === 'reinject' ? (input.target?.messages ?? []) : []).map((m) => [m.uid, m]))
  const messages: PlannedMessage[] = []
  const flagDifferences: MailboxPlan['flagDifferences'] = []
  const seen = new Set<string>()
  for (const m of input.old) {
    const there = have.get(m.guid)
    if (there) {
      if (lowerFlags(there.flags) !== lowerFlags(m.flags)) flagDifferences.push({guid: m.guid, old: m.flags, new: there.flags})
      continue
    }
    if (seen.has(m.guid)) continue
    seen.add(m.guid)
    const other = byUid.get(m.uid)
    messages.push({
      uid: m.uid,
      guid: m.guid,
      flags: m.flags.filter((f) => f.toLowerCase() !== '\\recent'),
      internalDate: m.internalDate,
      size: m.size,
      uidCollision: !!other && other.guid !== m.guid,
      beforeCutoff: input.action === 'reinject' && input.cutoffLastUid !== null && m.uid <= input.cutoffLastUid,
    })
  }
  return {
    source: input.source,
    target: input.targetName,
    owner: input.owner,
    action: input.action,
    why: input.why,
    messages,
    oldGuids: [...new Set(input.old.map((m) => m.guid))].sort(),
    flagDifferences,
  }
}

export function planFingerprint(mailboxes: MailboxPlan[]): string {
  return sha256(JSON.stringify(mailboxes.map((m) => [m.source, m.target, m.action, m.messages.map((x) => x.guid)])))
}

function totalsOf(mailboxes: MailboxPlan[]): ReconcilePlan['totals'] {
  const msgs = mailboxes.flatMap((m) => m.messages)
  return {
    mailboxes: mailboxes.length,
    messages: msgs.length,
    bytes: msgs.reduce((n, m) => n + m.size, 0),
    recreate: mailboxes.filter((m) => m.action === 'recreate').length,
    recover: mailboxes.filter((m) => m.action === 'recover').length,
    uidCollisions: msgs.filter((m) => m.uidCollision).length,
    flagDifferences: mailboxes.reduce((n, m) => n + m.flagDifferences.length, 0),
  }
}

export interface ReconcileOptions {
  pair: string
  all: boolean
  recoveryFolder?: string
  dryRun: boolean
  /** A reviewed plan to apply exactly (refused when the hosts no longer give the same plan). */
  apply?: ReconcilePlan
  resume?: string
  /** Stop once the recovery is verified: the old member untouched, still FENCED. */
  noReplicate: boolean
  confirm: (question: string, detail?: string) => Promise<boolean>
  progress: (line: string) => void
}

export interface Members {
  pair: Pair
  old: Host
  new: Host
  fence: FenceMark | null
}

/** Which member is old: the FENCED one (else the one that is not the running master). */
async function members(ctx: MurderContext, pairName: string): Promise<Members> {
  const pair = findPair(ctx.inv, pairName)
  const fenced = pair.members.map((m) => readFence(ctx.inv.stateDir, m.name)).filter((f): f is FenceMark => !!f)
  if (fenced.length > 1)
    throw new RefusedError(`both members of pair ${pair.name} are FENCED`, {
      step: 'preflight',
      hint: 'lift the mark of the member that serves (murderctl pair status)',
    })
  const reads = await Promise.all(pair.members.map((m) => readMember(ctx, m)))
  const {active, conflict} = activeOf(reads.map((r) => r.state))
  if (conflict)
    throw new RefusedError(`pair ${pair.name}: ${conflict}`, {
      step: 'preflight',
      hint: `fence the old member first: murderctl pair fence ${fenced[0]?.member ?? '<old member>'}`,
    })
  if (!active)
    throw new RefusedError(`pair ${pair.name} has no running master`, {step: 'preflight', hint: 'reconcile puts mail on the serving master; fail over first'})
  const nu = pair.members.find((m) => m.name === active)!
  const old = otherMember(pair, active)
  const oldRead = reads.find((r) => r.state.name === old.name)!.state
  if (!oldRead.reachable)
    throw new UnreachableError(`${old.name} cannot be read: ${oldRead.error}`, {
      host: old.name,
      step: 'preflight',
      hint: 'reconcile reads the old member over SSH; bring it back (fenced) first',
    })
  if (oldRead.config !== 'replica')
    throw new RefusedError(`${old.name} holds the ${oldRead.config} config: it is not isolated`, {
      host: old.name,
      step: 'preflight',
      hint: `murderctl pair fence ${old.name}`,
    })
  if (fenced[0] && fenced[0].member !== old.name) throw new RefusedError(`${fenced[0].member} is FENCED but is the running master`, {step: 'preflight'})
  return {pair, old, new: nu, fence: fenced[0] ?? null}
}

function readCutoff(fence: FenceMark | null): z.infer<typeof Cutoff> | null {
  if (!fence?.cutoff || !existsSync(fence.cutoff)) return null
  return Cutoff.parse(JSON.parse(readFileSync(fence.cutoff, 'utf8')))
}

const today = () => new Date().toISOString().slice(0, 10)

/** Read both members (nothing changes anywhere) and say what reconcile would do. */
export async function planReconcile(ctx: MurderContext, m: Members, opts: {all: boolean; recoveryFolder?: string}): Promise<ReconcilePlan> {
  const cutoff = readCutoff(m.fence)
  const oldConf = await readImapdConf(ctx, m.old)
  const sep = /^(1|yes|on|true|t)$/i.test(oldConf.get('unixhierarchysep') ?? '') ? '/' : '.'
  const recoveryFolder = opts.recoveryFolder ?? `Recovered-${today()}`
  // Carter's method: the mailboxes the old member's unreplayed sync log names.
  const backlog = await syncBacklog(ctx, m.old, oldConf)
  const logFiles = backlog.files.filter((f) => f.bytes > 0).map((f) => f.file)
  const named = {mailboxes: new Set<string>(), users: new Set<string>()}
  for (const f of logFiles) {
    const text = (await ctx.pool.readFile(m.old, `${syncDir(oldConf)}/${f}`)).toString('utf8')
    const p = parseSyncLog(text)
    p.mailboxes.forEach((x) => named.mailboxes.add(x))
    p.users.forEach((x) => named.users.add(x))
  }
  // Delayed-delete tombstones (DELETED.*) are no one's mail to recover: Cyrus keeps them until cyr_expire.
  const deleted = `${oldConf.get('deletedprefix') ?? 'DELETED'}${sep}`
  const live = (states: MailboxState[]) => states.filter((s) => !s.name.replace(/^[^!]*!/, '').startsWith(deleted))
  const [oldStates, newStates] = (await Promise.all([mailboxStates(ctx, m.old), mailboxStates(ctx, m.new)])).map(live) as [MailboxState[], MailboxState[]]
  const oldByName = new Map(oldStates.map((s) => [s.name, s]))
  const newByName = new Map(newStates.map((s) => [s.name, s]))
  const why = new Map<string, Set<string>>()
  const add = (name: string, reason: string) => {
    if (!oldByName.has(name)) return
    if (!why.has(name)) why.set(name, new Set())
    why.get(name)!.add(reason)
  }
  named.mailboxes.forEach((n) => add(n, 'sync-log'))
  for (const u of named.users) for (const s of oldStates) if (ownerView(s.name, oldConf).owner === u) add(s.name, 'sync-log')
  // Every mailbox whose state differs from the new master's at the cutoff (all, without one).
  const cutoffStates = (cutoff?.mailboxes ?? []) as MailboxState[]
  if (cutoff) for (const c of compareStates(cutoffStates, oldStates)) if (c.b && c.differences.length) add(c.name, 'state-differs')
  if (opts.all || !cutoff) oldStates.forEach((s) => add(s.name, opts.all ? 'all' : 'no-cutoff'))
  const names = [...why.keys()].sort()
  const cutoffByName = new Map(cutoffStates.map((s) => [s.name, s]))
  const targets = new Map<string, {target: string; action: z.infer<typeof MailboxAction>}>()
  for (const n of names) {
    if (newByName.has(n)) targets.set(n, {target: n, action: 'reinject'})
    else if (cutoffByName.has(n)) targets.set(n, {target: recoveryTarget(n, recoveryFolder, sep), action: 'recover'})
    else targets.set(n, {target: n, action: 'recreate'})
  }
  const newNames = [...new Set([...targets.values()].map((t) => t.target))].filter((t) => newByName.has(t))
  const [oldRecs, newRecs] = await Promise.all([messageRecords(ctx, m.old, names), messageRecords(ctx, m.new, newNames)])
  const oldMap = new Map(oldRecs.map((b) => [b.name, b]))
  const newMap = new Map(newRecs.map((b) => [b.name, b]))
  const mailboxes = names.map((n) => {
    const t = targets.get(n)!
    const c = cutoffByName.get(n)
    const cutoffLastUid = c && newByName.get(n)?.uniqueid === c.uniqueid ? c.lastUid : null
    return planMailbox({
      source: n,
      why: [...why.get(n)!],
      old: oldMap.get(n)?.messages ?? [],
      target: newMap.get(t.target) ?? null,
      action: t.action,
      owner: ownerView(n, oldConf).owner,
      cutoffLastUid,
      targetName: t.target,
    })
  })
  // Mailboxes that need nothing (same messages on both) stay in the plan: verify covers them too.
  return {
    version: 1,
    pair: m.pair.name,
    oldMember: m.old.name,
    newMember: m.new.name,
    createdAt: new Date().toISOString(),
    cutoff: cutoff ? {file: m.fence!.cutoff!, at: cutoff.at, run: cutoff.run} : null,
    fence: m.fence ? {at: m.fence.at, run: m.fence.run} : null,
    recoveryFolder,
    all: opts.all,
    syncLogFiles: logFiles,
    mailboxes,
    totals: totalsOf(mailboxes),
    fingerprint: planFingerprint(mailboxes),
  }
}

// ---- applying -------------------------------------------------------------------------------------

export interface MailboxOutcome {
  source: string
  target: string
  owner: string | null
  action: z.infer<typeof MailboxAction>
  created: boolean
  appended: {guid: string; uid: number}[]
  alreadyThere: number
  verified: boolean
}

export interface ReconcileResult {
  run: string
  journal: string
  dryRun: boolean
  plan: ReconcilePlan
  outcomes: MailboxOutcome[]
  verified: boolean
  /** GUIDs the old member holds in the affected mailboxes and the new master does not (must be 0). */
  lost: number
  oldCleanup?: {expunged: number; copiesAside: number}
  replication?: {users: string[]; equal: boolean; compared: number; differing: string[]}
  unfenced: boolean
  durationMs: number
}

interface Rc {
  ctx: MurderContext
  m: Members
  plan: ReconcilePlan
  journal: Journal
  opts: ReconcileOptions
  done: Set<string>
}

async function unit<T extends Record<string, unknown>>(
  rc: Rc,
  step: string,
  host: Host | undefined,
  fn: () => Promise<T | void>,
): Promise<T | Record<string, unknown>> {
  const key = `${step}@${host?.name ?? ''}`
  if (rc.done.has(key)) {
    const prev = rc.journal.events().findLast((e) => e.event === 'step-done' && e.step === step && (e.host ?? '') === (host?.name ?? ''))
    return prev?.data ?? {}
  }
  rc.journal.write({event: 'step-start', step, host: host?.name})
  try {
    const data = ((await fn()) ?? {}) as Record<string, unknown>
    rc.journal.write({event: 'step-done', step, host: host?.name, data})
    rc.done.add(key)
    return data
  } catch (error) {
    const e = asMurderctlError(error).at({host: host?.name, step})
    rc.journal.write({event: 'step-failed', step, host: host?.name, data: {error: e.oneLine(), code: e.code}})
    if (e instanceof NeedsConfirmationError) throw e
    throw new AbortError(`stopped at ${step}: ${e.message}`, {
      host: e.host,
      step,
      hint: `${e.hint ? `${e.hint}; then ` : ''}murderctl reconcile ${rc.m.pair.name} --resume ${rc.journal.run}`,
    })
  }
}

const sha1Hex = (b: Buffer) => createHash('sha1').update(b).digest('hex')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The GUIDs of a mailbox on a host, with how often each is there; null when the mailbox is not there. */
async function guidCounts(ctx: MurderContext, host: Host, mailbox: string): Promise<Map<string, number> | null> {
  const [box] = await messageRecords(ctx, host, [mailbox])
  if (!box || box.name !== mailbox) return null
  const out = new Map<string, number>()
  for (const r of box.messages) out.set(r.guid, (out.get(r.guid) ?? 0) + 1)
  return out
}

/** Create a mailbox on the new master over IMAP as its owner; it is in the murder once the mupdate master lists it on this server. */
async function createThroughMurder(rc: Rc, mp: MailboxPlan): Promise<Record<string, unknown>> {
  const {ctx, m} = rc
  const conf = await readImapdConf(ctx, m.new)
  const {owner, name} = ownerView(mp.target, conf)
  const exists = (await mailboxStates(ctx, m.new, {mailboxes: [mp.target]})).some((s) => s.name === mp.target)
  if (!exists) await imapSession(ctx, m.new, owner, (c) => c.ok(`CREATE ${imapString(name)}`))
  const states = await mailboxStates(ctx, m.new, {mailboxes: [mp.target]})
  if (!states.some((s) => s.name === mp.target)) throw new AbortError(`${mp.target} is not on ${m.new.name} after CREATE`, {host: m.new.name})
  // The mupdate master reserves it for this server (a backend in the murder creates through mupdate).
  const mupdate = mupdateMaster(ctx.inv)
  let server: string | undefined
  await scanDump(
    ctx,
    mupdate,
    (e) => {
      if (e.name === mp.target) server = e.server ?? ''
    },
    'create',
  )
  if (server === undefined)
    throw new AbortError(`${mp.target} was created on ${m.new.name} but the mupdate master ${mupdate.name} does not list it`, {
      host: mupdate.name,
      hint: `is ${m.new.name} in the murder (mupdate_server)? murderctl pair status ${m.pair.name}`,
    })
  return {created: !exists, mupdate: `${server}`}
}

/** Reinject one mailbox's missing messages into its target on the new master, idempotently. */
async function reinjectMailbox(rc: Rc, mp: MailboxPlan): Promise<MailboxOutcome> {
  const {ctx, m, journal} = rc
  const outcome: MailboxOutcome = {
    source: mp.source,
    target: mp.target,
    owner: mp.owner,
    action: mp.action,
    created: false,
    appended: [],
    alreadyThere: 0,
    verified: false,
  }
  if (mp.action !== 'reinject') {
    const r = await unit(rc, `create:${mp.target}`, m.new, () => createThroughMurder(rc, mp))
    outcome.created = !!r.created
  }
  if (!mp.messages.length) return outcome
  // What this run changes on the new master's mailbox, copied aside first.
  await unit(rc, `save-index:${mp.target}`, m.new, async () => {
    const dir = await mailboxPath(ctx, m.new, mp.target)
    const copies = []
    for (const f of ['cyrus.index', 'cyrus.header'])
      copies.push(journal.saved(`save-index:${mp.target}`, await copyAside(ctx, m.new, `${dir}/${f}`, `${journal.run}-save-index`, `save-index:${mp.target}`)))
    return {copies: copies.map((c) => c.copy)}
  })
  const conf = await readImapdConf(ctx, m.new)
  const {owner, name} = ownerView(mp.target, conf)
  const srcDir = await mailboxPath(ctx, m.old, mp.source)
  let have = (await guidCounts(ctx, m.new, mp.target)) ?? new Map<string, number>()
  const todo = mp.messages.filter((x) => {
    if (have.has(x.guid)) outcome.alreadyThere++
    return !have.has(x.guid)
  })
  if (todo.length) {
    await imapSession(ctx, m.new, owner, async (c) => {
      for (const x of todo) {
        const step = `append:${mp.target}:${x.guid}`
        await unit(rc, step, m.new, async () => {
          const bytes = await ctx.pool.readFile(m.old, `${srcDir}/${x.uid}.`)
          if (sha1Hex(bytes) !== x.guid)
            throw new AbortError(`${m.old.name}:${srcDir}/${x.uid}. is not message ${x.guid} (its SHA1 is ${sha1Hex(bytes)})`, {
              host: m.old.name,
              hint: 'the old member changed since the plan: make a new one',
            })
          const r = await c.append(name, bytes, {flags: x.flags, internalDate: imapDate(x.internalDate)})
          return {appendText: r.text, bytes: bytes.length}
        })
      }
    })
  }
  have = (await guidCounts(ctx, m.new, mp.target)) ?? new Map()
  const [box] = await messageRecords(ctx, m.new, [mp.target])
  for (const x of mp.messages) {
    const n = have.get(x.guid) ?? 0
    if (n !== 1)
      throw new AbortError(`${mp.target} on ${m.new.name} holds ${x.guid} ${n} times after reinjection`, {host: m.new.name, step: `append:${mp.target}`})
    const uid = box!.messages.find((r) => r.guid === x.guid)!.uid
    if (todo.includes(x)) outcome.appended.push({guid: x.guid, uid})
  }
  return outcome
}

/** Every GUID the old member holds in each affected mailbox is on the new master, in the mailbox's target. */
async function verifyRecovery(rc: Rc): Promise<{missing: {mailbox: string; guid: string}[]; checked: number}> {
  const {ctx, m, plan} = rc
  const targets = [...new Set(plan.mailboxes.map((x) => x.target))]
  const recs = new Map((await messageRecords(ctx, m.new, targets)).map((b) => [b.name, new Set(b.messages.map((r) => r.guid))]))
  const missing: {mailbox: string; guid: string}[] = []
  let checked = 0
  for (const mp of plan.mailboxes)
    for (const g of mp.oldGuids) {
      checked++
      if (!recs.get(mp.target)?.has(g)) missing.push({mailbox: mp.source, guid: g})
    }
  return {missing, checked}
}

async function startOldCyrus(rc: Rc): Promise<Record<string, unknown>> {
  const {ctx, m, journal} = rc
  const pid = await masterPid(ctx, m.old)
  if (pid !== null) return {pid, already: true}
  const r = await ctx.pool.exec(m.old, {shell: m.old.cyrus.start})
  journal.command('start-old', m.old.name, r)
  for (let i = 0; i < 120; i++) {
    const p = await masterPid(ctx, m.old)
    // imapd must answer too: the cleanup talks IMAP to it.
    if (p !== null && (await ctx.pool.exec(m.old, {shell: `ss -Htln '( sport = :143 )' | grep -q .`})).exitCode === 0) return {pid: p}
    await sleep(250)
  }
  throw new AbortError(`cyrus-master on ${m.old.name} did not start`, {host: m.old.name})
}

/**
 * On the old member, after verify: expunge every record the new master does not hold under the
 * same UID in the same mailbox (same uniqueid), each file copied aside first (checksummed,
 * journaled), so that replication cannot copy it back a second time.
 */
async function cleanupOld(rc: Rc): Promise<{expunged: number; copiesAside: number}> {
  const {ctx, m, plan, journal} = rc
  const sources = plan.mailboxes.map((x) => x.source)
  const [oldRecs, newStates] = await Promise.all([messageRecords(ctx, m.old, sources), mailboxStates(ctx, m.new)])
  const newIds = new Map(newStates.map((s) => [s.name, s.uniqueid]))
  const newRecs = new Map(
    (
      await messageRecords(
        ctx,
        m.new,
        sources.filter((s) => newIds.has(s)),
      )
    ).map((b) => [b.name, b]),
  )
  const oldConf = await readImapdConf(ctx, m.old)
  const asideRoot = `${(oldConf.get('configdirectory') ?? '/var/lib/cyrus').replace(/\/+$/, '')}/murderctl-aside/${journal.run}`
  let expunged = 0
  let copies = 0
  for (const box of oldRecs) {
    const nb = newRecs.get(box.name)
    const same = nb && nb.uniqueid === box.uniqueid ? new Map(nb.messages.map((r) => [r.uid, r.guid])) : new Map<number, string>()
    const drop = box.messages.filter((r) => same.get(r.uid) !== r.guid)
    if (!drop.length) continue
    const step = `cleanup-old:${box.name}`
    const r = await unit(rc, step, m.old, async () => {
      const dir = await mailboxPath(ctx, m.old, box.name)
      // Outside the mailbox's folder, which Cyrus removes with the mailbox.
      const aside = `${asideRoot}/${box.uniqueid}`
      const copyOf = (uid: number | string) => `${aside}/${uid}.`
      // One remote command copies every file aside and prints both checksums per file.
      const script = [`mkdir -p -m 700 -- ${shellQuote(aside)} || exit 1`]
        .concat(
          drop.map((d) => {
            const f = shellQuote(`${dir}/${d.uid}.`)
            const c = shellQuote(copyOf(d.uid))
            return `if [ -f ${f} ]; then cp -n -p -- ${f} ${c} && echo "C ${d.uid} $(sha256sum < ${f} | cut -d' ' -f1) $(sha256sum < ${c} | cut -d' ' -f1) $(stat -c %s -- ${c})"; else echo "A ${d.uid}"; fi`
          }),
        )
        .join('\n')
      const out = await ctx.pool.exec(m.old, {shell: script})
      let saved = 0
      for (const line of out.stdout.trim().split('\n')) {
        const [k, uid, a, b, size] = line.split(' ')
        if (k !== 'C') continue
        if (a !== b || !/^[0-9a-f]{64}$/.test(a!)) throw new AbortError(`the copy of ${dir}/${uid}. does not match it`, {host: m.old.name})
        journal.saved(step, {host: m.old.name, path: `${dir}/${uid}.`, copy: copyOf(uid!), sha256: a!, bytes: Number(size)})
        saved++
      }
      await imapSession(ctx, m.old, null, async (c) => {
        await c.ok(`SELECT ${imapString(box.name)}`)
        const set = drop.map((d) => d.uid).join(',')
        await c.ok(`UID STORE ${set} +FLAGS.SILENT (\\Deleted)`)
        await c.ok(`UID EXPUNGE ${set}`)
      })
      const after = (await messageRecords(ctx, m.old, [box.name]))[0]
      const left = drop.filter((d) => after?.messages.some((x) => x.uid === d.uid))
      if (left.length)
        throw new AbortError(`UIDs ${left.map((d) => d.uid).join(',')} of ${box.name} are still on ${m.old.name} after UID EXPUNGE`, {host: m.old.name})
      return {expunged: drop.map((d) => ({uid: d.uid, guid: d.guid})), copies: saved}
    })
    expunged += (r.expunged as unknown[]).length
    copies += Number(r.copies ?? 0)
  }
  // A mailbox the new master recreated under another uniqueid goes too: sync_server refuses a
  // mailbox whose uniqueid changed ("Mailbox exists with another name or uniqueid"). Its records
  // are expunged (copied aside) above; Cyrus's delayed delete keeps it as DELETED.* until
  // cyr_expire. A mailbox the new master deleted is left to replication: its tombstone there has
  // the same uniqueid, and sync_client renames b1's copy to it (deleting it here first would
  // leave a deleted entry holding that uniqueid, which sync_server then refuses).
  for (const box of oldRecs) {
    const nid = newIds.get(box.name)
    if (nid === undefined || nid === box.uniqueid) continue
    await unit(rc, `cleanup-old-delete:${box.name}`, m.old, async () => {
      const present = (await mailboxStates(ctx, m.old, {mailboxes: [box.name]})).some((s) => s.name === box.name)
      if (present) await imapSession(ctx, m.old, null, (c) => c.ok(`DELETE ${imapString(box.name)}`))
      const left = await mailboxStates(ctx, m.old, {mailboxes: [box.name]})
      if (left.some((s) => s.name === box.name)) throw new AbortError(`${box.name} is still on ${m.old.name} after DELETE`, {host: m.old.name})
      return {deleted: box.name, uniqueid: box.uniqueid, newUniqueid: nid}
    })
  }
  // Its unreplayed sync log is reconciled now: moved aside (never replayed should it become master again).
  await unit(rc, 'cleanup-old-synclog', m.old, async () => {
    const conf = await readImapdConf(ctx, m.old)
    const moved = []
    for (const f of plan.syncLogFiles) {
      const path = `${syncDir(conf)}/${f}`
      const copy = `${path}.murderctl-${journal.run}-reconciled`
      const r = await ctx.pool.exec(m.old, {
        shell: `[ -f ${shellQuote(path)} ] || exit 0; a=$(sha256sum < ${shellQuote(path)} | cut -d' ' -f1); mv -n -- ${shellQuote(path)} ${shellQuote(copy)} && [ ! -e ${shellQuote(path)} ] && echo "$a $(sha256sum < ${shellQuote(copy)} | cut -d' ' -f1) $(stat -c %s -- ${shellQuote(copy)})"`,
      })
      const [a, b, size] = r.stdout.trim().split(' ')
      if (!a) continue
      if (r.exitCode !== 0 || a !== b) throw new AbortError(`could not move ${path} aside intact`, {host: m.old.name})
      journal.saved('cleanup-old-synclog', {host: m.old.name, path, copy, sha256: a, bytes: Number(size)})
      moved.push(copy)
    }
    return {moved}
  })
  return {expunged, copiesAside: copies}
}

/** Owners (and shared mailboxes) the plan touches: what sync_client -u / -m replicates first. */
function syncTargets(rc: Rc): string[] {
  return [...new Set(rc.plan.mailboxes.map((x) => (x.owner ? `user:${x.owner}` : `mailbox:${x.target}`)))].sort()
}

/** Both members hold the same mailboxes with the same GUID sets, for the affected users. */
async function compareMembers(rc: Rc): Promise<{equal: boolean; compared: number; differing: string[]}> {
  const {ctx, m} = rc
  const conf = await readImapdConf(ctx, m.new)
  const sep = /^(1|yes|on|true|t)$/i.test(conf.get('unixhierarchysep') ?? '') ? '/' : '.'
  const pats = syncTargets(rc).flatMap((t) => (t.startsWith('user:') ? [`user${sep}${t.slice(5)}`, `user${sep}${t.slice(5)}${sep}*`] : [t.slice(8)]))
  const [a, b] = await Promise.all([mailboxStates(ctx, m.new, {mailboxes: pats}), mailboxStates(ctx, m.old, {mailboxes: pats})])
  const names = [...new Set([...a, ...b].map((s) => s.name))].sort()
  const [ra, rb] = await Promise.all([
    messageRecords(
      ctx,
      m.new,
      a.map((s) => s.name),
    ),
    messageRecords(
      ctx,
      m.old,
      b.map((s) => s.name),
    ),
  ])
  const set = (x: {messages: MessageRecord[]} | undefined) =>
    x
      ? x.messages
          .map((r) => r.guid)
          .sort()
          .join(',')
      : null
  const ma = new Map(ra.map((x) => [x.name, x]))
  const mb = new Map(rb.map((x) => [x.name, x]))
  const differing = names.filter((n) => set(ma.get(n)) !== set(mb.get(n)))
  return {equal: differing.length === 0, compared: names.length, differing}
}

/**
 * The delayed-delete tombstones (DELETED.<name>.<hex>) of the mailboxes cleanup deleted on the
 * old member: the new master has none, and a controlled failover refuses members whose mailbox
 * lists differ. Their records were expunged and copied aside before; deleting a tombstone once
 * replication has run removes it without a trace (before, 3.6 may keep a deleted entry).
 */
async function purgeTombstones(rc: Rc): Promise<void> {
  const {ctx, m, journal} = rc
  const deletedMailboxes = journal
    .events()
    .filter((e) => e.event === 'step-done' && e.step?.startsWith('cleanup-old-delete:'))
    .map((e) => e.data as {deleted: string; uniqueid: string})
  if (!deletedMailboxes.length) return
  await unit(rc, 'purge-old-tombstones', m.old, async () => {
    const conf = await readImapdConf(ctx, m.old)
    const prefix = conf.get('deletedprefix') ?? 'DELETED'
    const sep = /^(1|yes|on|true|t)$/i.test(conf.get('unixhierarchysep') ?? '') ? '/' : '.'
    const purged: string[] = []
    for (const d of deletedMailboxes) {
      const bang = d.deleted.indexOf('!')
      const pattern = `${d.deleted.slice(0, bang + 1)}${prefix}${sep}${d.deleted.slice(bang + 1)}${sep}*`
      const tombs = (await mailboxStates(ctx, m.old, {mailboxes: [pattern]})).filter((t) => t.uniqueid === d.uniqueid)
      for (const t of tombs) {
        await imapSession(ctx, m.old, null, (c) => c.ok(`DELETE ${imapString(t.name)}`))
        purged.push(t.name)
      }
    }
    return {purged}
  })
}

async function replicateOver(rc: Rc): Promise<NonNullable<ReconcileResult['replication']>> {
  const {ctx, m, journal, opts} = rc
  const targets = syncTargets(rc)
  // sync_client -u per affected user first (Carter: replication from the new master resolves the rest), then rolling.
  for (const t of targets)
    await unit(rc, `sync:${t}`, m.new, async () => {
      const args = t.startsWith('user:') ? ['-u', t.slice(5)] : ['-m', t.slice(8)]
      const r = await ctx.pool.exec(m.new, [tool(m.new, 'sync_client'), '-v', '-o', ...args])
      journal.command(`sync:${t}`, m.new.name, r)
      if (r.exitCode !== 0)
        throw new AbortError(`sync_client ${args.join(' ')} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').pop() ?? ''}`, {host: m.new.name})
      return {exitCode: r.exitCode}
    })
  await unit(rc, 'replicate', m.new, async () => {
    const r = await startReplication(ctx, {pair: m.pair.name, dryRun: false, confirm: async () => true, progress: opts.progress})
    return {run: r.run, journal: r.journal}
  })
  let cmp = await compareMembers(rc)
  for (let i = 0; i < 40 && !cmp.equal; i++) {
    await sleep(500)
    cmp = await compareMembers(rc)
  }
  journal.write({event: cmp.equal ? 'step-done' : 'step-failed', step: 'compare-members', data: cmp})
  if (!cmp.equal)
    throw new AbortError(
      `after replication ${m.old.name} and ${m.new.name} still differ in ${cmp.differing.length} mailboxes: ${cmp.differing.slice(0, 5).join(', ')}`,
      {step: 'compare-members', hint: `murderctl replication audit ${m.pair.name}`},
    )
  await purgeTombstones(rc)
  return {users: targets, ...cmp}
}

const describePlan = (p: ReconcilePlan) =>
  `Reconcile ${p.pair}: ${p.totals.messages} messages (${p.totals.bytes} bytes) from ${p.oldMember} into ${p.newMember} over IMAP, ${p.totals.recreate} mailboxes recreated through the murder, ${p.totals.recover} deleted mailboxes into ${p.recoveryFolder}`

export async function reconcile(ctx: MurderContext, opts: ReconcileOptions): Promise<ReconcileResult> {
  const started = Date.now()
  const m = await members(ctx, opts.pair)
  let journal: Journal
  let plan: ReconcilePlan
  let done = new Set<string>()
  if (opts.resume) {
    try {
      journal = Journal.open(ctx.inv.stateDir, opts.resume)
    } catch (error) {
      throw new RefusedError(`no run ${opts.resume} to resume: ${(error as Error).message}`, {step: 'resume'})
    }
    const saved = join(journal.dir, 'plan.json')
    if (!existsSync(saved)) throw new RefusedError(`run ${opts.resume} has no plan.json`, {step: 'resume'})
    plan = ReconcilePlan.parse(JSON.parse(readFileSync(saved, 'utf8')))
    if (plan.oldMember !== m.old.name)
      throw new RefusedError(`run ${opts.resume} reconciled ${plan.oldMember}, the old member now is ${m.old.name}`, {step: 'resume'})
    done = new Set(
      journal
        .events()
        .filter((e) => e.event === 'step-done' && e.step)
        .map((e) => `${e.step}@${e.host ?? ''}`),
    )
    opts.progress(`resuming run ${journal.run}: ${done.size} steps already done`)
  } else {
    opts.progress(`reading ${m.old.name} (old, ${m.fence ? 'FENCED' : 'not fenced'}) and ${m.new.name} (master) ...`)
    plan = await planReconcile(ctx, m, {all: opts.all, recoveryFolder: opts.apply?.recoveryFolder ?? opts.recoveryFolder})
    if (opts.apply) {
      if (opts.apply.pair !== plan.pair || opts.apply.oldMember !== plan.oldMember || opts.apply.newMember !== plan.newMember)
        throw new RefusedError(
          `the plan is for ${opts.apply.oldMember} -> ${opts.apply.newMember} of ${opts.apply.pair}; the hosts now say ${plan.oldMember} -> ${plan.newMember}`,
          {step: 'apply'},
        )
      if (opts.apply.fingerprint !== plan.fingerprint || opts.apply.all !== plan.all)
        throw new RefusedError(
          `the plan is stale: the hosts now give a different plan (${plan.totals.messages} messages in ${plan.totals.mailboxes} mailboxes, the file says ${opts.apply.totals.messages} in ${opts.apply.totals.mailboxes})`,
          {step: 'apply', hint: `make and review a new one: murderctl reconcile ${plan.pair} --out plan.json`},
        )
      plan = opts.apply
    }
    const run = newRunId('reconcile')
    if (opts.dryRun)
      return {
        run,
        journal: '(dry run: no journal)',
        dryRun: true,
        plan,
        outcomes: [],
        verified: false,
        lost: 0,
        unfenced: false,
        durationMs: Date.now() - started,
      }
    if (!m.fence && plan.totals.messages === 0 && plan.totals.recreate === 0 && plan.totals.recover === 0)
      return {
        run,
        journal: '(nothing to reconcile: no journal)',
        dryRun: false,
        plan,
        outcomes: [],
        verified: true,
        lost: 0,
        unfenced: false,
        durationMs: Date.now() - started,
      }
    // Consent before anything is written anywhere, the run folder included.
    if (!(await opts.confirm(`${describePlan(plan)}. Proceed?`, planText(plan))))
      throw new RefusedError('not confirmed: nothing was changed', {step: 'consent'})
    journal = new Journal(ctx.inv.stateDir, run)
    journal.keep('plan.json', `${JSON.stringify(plan, null, 1)}\n`)
    journal.write({
      event: 'run-start',
      data: {command: 'reconcile', pair: plan.pair, old: plan.oldMember, new: plan.newMember, cutoff: plan.cutoff?.file ?? null, totals: plan.totals},
    })
    journal.write({event: 'note', step: 'consent', data: {gate: 'plan', confirmed: true}})
  }
  const rc: Rc = {ctx, m, plan, journal, opts, done}
  const result: ReconcileResult = {
    run: journal.run,
    journal: journal.path,
    dryRun: false,
    plan,
    outcomes: [],
    verified: false,
    lost: 0,
    unfenced: false,
    durationMs: 0,
  }
  try {
    if (opts.resume && !(await opts.confirm(`Resume: ${describePlan(plan)}?`))) throw new RefusedError('not confirmed: nothing was changed', {step: 'consent'})
    if (plan.mailboxes.some((x) => x.action !== 'reinject'))
      await unit(rc, 'save-db', m.new, async () => ({copy: (await saveDbAside(ctx, m.new, journal, 'save-db')).copy}))
    for (const mp of plan.mailboxes) {
      opts.progress(`- ${mp.source} -> ${mp.target} (${mp.action}): ${mp.messages.length} messages`)
      result.outcomes.push(await reinjectMailbox(rc, mp))
    }
    const v = await verifyRecovery(rc)
    result.lost = v.missing.length
    journal.write({event: v.missing.length ? 'step-failed' : 'step-done', step: 'verify', data: {checked: v.checked, missing: v.missing}})
    if (v.missing.length)
      throw new AbortError(
        `${v.missing.length} of ${v.checked} messages of ${m.old.name} are not on ${m.new.name}: ${v.missing
          .slice(0, 3)
          .map((x) => `${x.mailbox} ${x.guid}`)
          .join('; ')}`,
        {step: 'verify', hint: `nothing on ${m.old.name} was changed; murderctl reconcile ${m.pair.name} --resume ${journal.run}`},
      )
    result.verified = true
    for (const o of result.outcomes) o.verified = true
    opts.progress(`verified: all ${v.checked} messages of ${m.old.name}'s affected mailboxes are on ${m.new.name}`)
    if (!opts.noReplicate) {
      if (
        !(await opts.confirm(
          `Recovery verified. Now expunge on ${m.old.name} what ${m.new.name} holds differently (files copied aside first), lift the FENCED mark and replicate ${m.new.name} -> ${m.old.name}?`,
        ))
      )
        throw new RefusedError(`stopped after verification: ${m.old.name} untouched and still FENCED`, {
          step: 'cleanup-old',
          hint: `murderctl reconcile ${m.pair.name} --resume ${journal.run}`,
        })
      await unit(rc, 'start-old', m.old, () => startOldCyrus(rc))
      result.oldCleanup = await cleanupOld(rc)
      await unit(rc, 'unfence', undefined, async () => ({lifted: liftFence(ctx.inv.stateDir, m.old.name, journal.run)}))
      result.unfenced = true
      result.replication = await replicateOver(rc)
    }
  } catch (error) {
    journal.write({event: 'run-end', data: {outcome: 'failed'}})
    throw error
  }
  result.durationMs = Date.now() - started
  journal.write({event: 'run-end', data: {outcome: 'done', verified: result.verified, lost: result.lost, durationMs: result.durationMs}})
  return result
}

/** The plan as people read it: per user and mailbox, what goes where, counts and sizes. */
export function planText(p: ReconcilePlan): string {
  const lines = [
    `${p.oldMember} (old) -> ${p.newMember} (master); cutoff ${p.cutoff ? `${p.cutoff.at} (run ${p.cutoff.run})` : 'none recorded'}; sync log files: ${p.syncLogFiles.join(', ') || 'none'}`,
  ]
  const users = [...new Set(p.mailboxes.map((x) => x.owner ?? '(shared)'))]
  for (const u of users) {
    lines.push(`user ${u}:`)
    for (const mp of p.mailboxes.filter((x) => (x.owner ?? '(shared)') === u)) {
      const bytes = mp.messages.reduce((n, x) => n + x.size, 0)
      const extra = [
        mp.messages.some((x) => x.uidCollision) && `${mp.messages.filter((x) => x.uidCollision).length} UID collisions`,
        mp.flagDifferences.length && `${mp.flagDifferences.length} flag differences`,
        mp.messages.some((x) => x.beforeCutoff) && `${mp.messages.filter((x) => x.beforeCutoff).length} were on ${p.newMember} at the cutoff`,
      ].filter(Boolean)
      lines.push(
        `  ${mp.action.padEnd(8)} ${mp.source}${mp.target !== mp.source ? ` -> ${mp.target}` : ''}: ${mp.messages.length} messages, ${bytes} bytes (${mp.why.join(', ')})${extra.length ? `; ${extra.join(', ')}` : ''}`,
      )
    }
  }
  lines.push(
    `total: ${p.totals.messages} messages, ${p.totals.bytes} bytes in ${p.totals.mailboxes} mailboxes; ${p.totals.recreate} recreated, ${p.totals.recover} into ${p.recoveryFolder}`,
  )
  return lines.join('\n')
}
