// replication repair: the Fastmail procedure (seed 004) for UID conflicts Cyrus did not resolve.
// For each conflict (same UID, different GUID on the two members):
//   inspect both messages -> copy both spool files aside (on their hosts, and into the run folder)
//   -> re-append both versions to the master with their flags and internaldate (as the owner, so
//   \Seen stays the owner's) -> verify both GUIDs are on the master under new UIDs -> expunge
//   the conflicting UID on both members -> sync_client -u for the owner -> verify both GUIDs are
//   on both members exactly once, under the same UIDs.
// Every unit is journaled and idempotent (it checks whether its effect already holds), so a run
// that stopped resumes with --resume RUN and redoes nothing.
import {createHash} from 'node:crypto'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {z} from 'zod'
import {AbortError, NeedsConfirmationError, RefusedError, asMurderctlError} from '../errors.js'
import {Journal, newRunId} from '../engine/journal.js'
import type {MurderContext} from '../host/context.js'
import {headerSummary, inspectMessageFile, type MessageFile} from '../host/message-file.js'
import {type MessageRecord, messageRecords} from '../host/mailbox-state.js'
import {copyAside, readImapdConf, tool} from '../host/remote.js'
import {ImapClient, imapString} from '../imap/client.js'
import type {Host, Inventory} from '../inventory/schema.js'
import {sha256} from '../util/hash.js'
import {auditPair, type Pair, pairRoles} from './audit.js'

const Version = z.object({guid: z.string(), flags: z.array(z.string()), internalDate: z.number().int(), size: z.number().int()})

export const RepairConflict = z.object({
  mailbox: z.string(),
  uid: z.number().int(),
  master: Version,
  replica: Version,
  /** What the message files say, for people (inspect). */
  inspect: z.object({master: z.record(z.string(), z.string()).nullable(), replica: z.record(z.string(), z.string()).nullable()}).optional(),
})
export type RepairConflict = z.infer<typeof RepairConflict>

export const RepairPlan = z.object({
  version: z.literal(1),
  run: z.string(),
  backend: z.string(),
  replica: z.string(),
  /** The members as the hosts said when the plan was made. */
  masterHost: z.string(),
  replicaHost: z.string(),
  conflicts: z.array(RepairConflict),
  steps: z.array(z.string()),
})
export type RepairPlan = z.infer<typeof RepairPlan>

export interface RepairHooks {
  progress: (line: string) => void
  /** Ask before the first change, and again before the expunges; false stops resumably. */
  confirm: (question: string, what: string) => Promise<boolean>
}

export interface RepairOptions {
  mailboxes?: string[]
  users?: string[]
  dryRun: boolean
  resume?: string
  /** Repair even though the rolling sync_client runs (Cyrus 3.6 would renumber by itself). */
  force?: boolean
}

export interface RepairResult {
  run: string
  journal: string
  dryRun: boolean
  plan: RepairPlan
  /** Per conflict after the run: the new UIDs of both versions on each member. */
  verified: {mailbox: string; uid: number; master: Record<string, number>; replica: Record<string, number>}[]
}

/** The owner and the owner's IMAP name of an internal mailbox name; null owner for shared mailboxes. */
export function ownerView(internal: string, conf: Map<string, string>): {owner: string | null; name: string} {
  const sep = /^(1|yes|on|true|t)$/i.test(conf.get('unixhierarchysep') ?? '') ? '/' : '.'
  const alt = /^(1|yes|on|true|t)$/i.test(conf.get('altnamespace') ?? '')
  const bang = internal.indexOf('!')
  const domain = bang >= 0 ? internal.slice(0, bang) : ''
  const local = bang >= 0 ? internal.slice(bang + 1) : internal
  const parts = local.split(sep)
  if (parts[0] !== 'user' || parts.length < 2) return {owner: null, name: internal}
  const owner = domain ? `${parts[1]}@${domain}` : parts[1]
  const rest = parts.slice(2)
  if (!rest.length) return {owner, name: 'INBOX'}
  return {owner, name: alt ? rest.join(sep) : ['INBOX', ...rest].join(sep)}
}

/** IMAP INTERNALDATE text of unix seconds: "28-Nov-2026 16:27:42 +0000". */
export function imapDate(seconds: number): string {
  const d = new Date(seconds * 1000)
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()]
  const p = (n: number) => String(n).padStart(2, '0')
  return `${p(d.getUTCDate())}-${mon}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
}

function imapPassword(inv: Inventory): {user: string; password: string; port: number} {
  if (!inv.imap)
    throw new RefusedError('repair re-appends messages over IMAP and the inventory has no imap settings', {hint: 'add imap: {user: <admin in proxyservers>, passwordFile: FILE} to the inventory'})
  const password = readFileSync(inv.imap.passwordFile, 'utf8').split('\n')[0]
  return {user: inv.imap.user, password, port: inv.imap.port}
}

/** One IMAP session on a host as the inventory's admin, acting as `asUser` when given (so \Seen is theirs). */
export async function imapSession<T>(ctx: MurderContext, host: Host, asUser: string | null, fn: (c: ImapClient) => Promise<T>): Promise<T> {
  const cred = imapPassword(ctx.inv)
  const c = await ImapClient.open(host.address, cred.port, {label: host.name})
  try {
    if (asUser && asUser !== cred.user) await c.authenticatePlain(asUser, cred.user, cred.password)
    else await c.login(cred.user, cred.password)
    return await fn(c)
  } finally {
    await c.logout()
  }
}

const uidsOf = (ms: MessageRecord[], guid: string) => ms.filter((m) => m.guid === guid).map((m) => m.uid)

async function recordsOf(ctx: MurderContext, host: Host, mailbox: string): Promise<MessageRecord[]> {
  const [box] = await messageRecords(ctx, host, [mailbox])
  if (!box || box.name !== mailbox) throw new AbortError(`${mailbox} is not on ${host.name}`, {host: host.name, step: 'records'})
  return box.messages
}

const STEPS = [
  'inspect: show both messages (headers, size) from their spool files',
  'save-aside: copy both spool files aside on their hosts and into the run folder, checksummed',
  'append: re-append both versions to the master with flags and internaldate (new UIDs)',
  'expunge: once both GUIDs are verified on the master, expunge the conflicting UID on both members',
  'sync: sync_client -u for each owner on the master',
  'verify: both GUIDs exactly once on both members, under the same UIDs',
]

const firstQuestion = (p: RepairPlan) => `Repair ${p.conflicts.length} UID conflicts on ${p.masterHost}/${p.replicaHost} (re-append both versions to ${p.masterHost})?`

/** Find the conflicts of a pair and plan their repair (reads only). */
export async function planRepair(ctx: MurderContext, pair: Pair, opts: RepairOptions, run: string): Promise<RepairPlan> {
  const audit = await auditPair(ctx, pair, {selection: {users: opts.users ?? [], mailboxes: opts.mailboxes ?? []}, settleSeconds: 0, logs: false})
  const bad = audit.members.filter((m) => !m.readable)
  if (bad.length) throw new AbortError(`cannot plan: ${bad.map((b) => b.error).join('; ')}`, {step: 'plan', hint: 'bring the member back, then run again'})
  const roles = audit.roles!
  if (!opts.force && roles.members.find((m) => m.host === roles.master)?.rollingClientRunning)
    throw new RefusedError(`the rolling sync_client runs on ${roles.master}: Cyrus 3.6 renumbers a conflict itself at the next sync of its mailbox`, {
      step: 'plan',
      hint: `run murderctl replication audit ${pair.backend.name} after a minute; repair is for conflicts replication does not resolve (stop the rolling sync_client first, or --force)`,
    })
  const master = [pair.backend, pair.replica].find((h) => h.name === roles.master)!
  const replica = [pair.backend, pair.replica].find((h) => h.name === roles.replica)!
  const conflicts: RepairConflict[] = []
  for (const m of audit.mailboxes)
    for (const c of m.conflicts) {
      const [mf, rf] = await Promise.all([inspectMessageFile(ctx, master, m.name, c.uid), inspectMessageFile(ctx, replica, m.name, c.uid)])
      conflicts.push({mailbox: m.name, uid: c.uid, master: c.master, replica: c.replica, inspect: {master: mf && headerSummary(mf.headers), replica: rf && headerSummary(rf.headers)}})
    }
  return {version: 1, run, backend: pair.backend.name, replica: pair.replica.name, masterHost: master.name, replicaHost: replica.name, conflicts, steps: STEPS}
}

/** Copy one message file aside on its host (run + step in the name) and keep its bytes in the run folder. */
async function saveAside(ctx: MurderContext, host: Host, journal: Journal, c: RepairConflict, f: MessageFile, step: string): Promise<Buffer> {
  const bytes = await ctx.pool.readFile(host, f.path)
  if (sha256(bytes) !== f.sha256) throw new AbortError(`${f.path} changed while being read`, {host: host.name, step})
  const local = join(journal.dir, `${host.name}-${c.mailbox.replace(/[^A-Za-z0-9._-]/g, '_')}-${c.uid}.eml`)
  if (!existsSync(local)) writeFileSync(local, bytes, {mode: 0o600})
  if (sha256(readFileSync(local)) !== f.sha256) throw new AbortError(`the local copy ${local} does not match ${f.path}`, {step})
  const done = journal.events().some((e) => e.event === 'saved-copy' && e.host === host.name && (e.data as {path?: string})?.path === f.path)
  if (!done) {
    const copy = await copyAside(ctx, host, f.path, `${journal.run}-${step}`, step)
    journal.saved(step, copy)
    journal.write({event: 'saved-copy', step, data: {host: 'local', path: f.path, copy: local, sha256: f.sha256, bytes: f.bytes}})
  }
  return bytes
}

export async function repairPair(ctx: MurderContext, pair: Pair, opts: RepairOptions, hooks: RepairHooks): Promise<RepairResult> {
  let journal: Journal
  let plan: RepairPlan
  if (opts.resume) {
    journal = Journal.open(ctx.inv.stateDir, opts.resume)
    const saved = join(journal.dir, 'plan.json')
    if (!existsSync(saved)) throw new AbortError(`run ${opts.resume} has no plan.json`, {hint: 'start a new run without --resume'})
    plan = RepairPlan.parse(JSON.parse(readFileSync(saved, 'utf8')))
    hooks.progress(`resuming run ${plan.run}: ${plan.conflicts.length} conflicts`)
  } else {
    const run = newRunId('replication-repair')
    plan = await planRepair(ctx, pair, opts, run)
    if (opts.dryRun) return {run, journal: '(dry run: no journal)', dryRun: true, plan, verified: []}
    if (!plan.conflicts.length) return {run, journal: '(nothing to repair: no journal)', dryRun: false, plan, verified: []}
    // Consent before anything is written anywhere (not even the run folder).
    if (!(await hooks.confirm(firstQuestion(plan), 'the first change'))) throw new AbortError('not confirmed: nothing was changed')
    journal = new Journal(ctx.inv.stateDir, run)
    journal.keep('plan.json', `${JSON.stringify(plan, null, 2)}\n`)
    journal.write({event: 'run-start', data: {command: 'replication repair', pair: pair.backend.name, conflicts: plan.conflicts.length}})
  }
  const byName = (n: string) => [pair.backend, pair.replica].find((h) => h.name === n)!
  const master = byName(plan.masterHost)
  const replica = byName(plan.replicaHost)
  // The members must not have swapped since the plan (a failover in between).
  const roles = await pairRoles(ctx, pair)
  if (roles.master !== plan.masterHost)
    throw new RefusedError(`the plan was made with ${master.name} as master, the hosts now say ${roles.master}`, {hint: 'start a new run (without --resume)'})

  const done = new Set(journal.events().filter((e) => e.event === 'step-done' && e.step).map((e) => `${e.step}@${e.host ?? ''}`))
  const unit = async (step: string, host: Host | undefined, fn: () => Promise<Record<string, unknown> | void>) => {
    const key = `${step}@${host?.name ?? ''}`
    if (done.has(key)) return hooks.progress(`    already done: ${step}${host ? ` on ${host.name}` : ''}`)
    journal.write({event: 'step-start', step, host: host?.name})
    try {
      const data = (await fn()) ?? {}
      journal.write({event: 'step-done', step, host: host?.name, data})
      done.add(key)
      hooks.progress(`    done: ${step}${host ? ` on ${host.name}` : ''}`)
    } catch (error) {
      const e = asMurderctlError(error).at({host: host?.name, step})
      journal.write({event: 'step-failed', step, host: host?.name, data: {error: e.oneLine(), code: e.code}})
      throw new AbortError(`stopped at ${step}: ${e.message}`, {host: e.host, step, hint: `${e.hint ? `${e.hint}; then ` : ''}murderctl replication repair ${pair.backend.name} --resume ${journal.run}`})
    }
  }
  const ask = async (question: string, what: string) => {
    let ok: boolean
    try {
      ok = await hooks.confirm(question, what)
    } catch (error) {
      if (error instanceof NeedsConfirmationError) journal.write({event: 'run-end', data: {stopped: 'needs confirmation', before: what}})
      throw error
    }
    if (!ok) {
      journal.write({event: 'run-end', data: {stopped: 'not confirmed', before: what}})
      throw new AbortError(`not confirmed: stopped before ${what}`, {hint: `murderctl replication repair ${pair.backend.name} --resume ${journal.run}`})
    }
  }

  if (opts.resume) await ask(firstQuestion(plan), 'the first change')
  const conf = await readImapdConf(ctx, master)

  for (const c of plan.conflicts) {
    const id = `${c.mailbox}:${c.uid}`
    hooks.progress(`${id}: master ${c.master.guid.slice(0, 12)}, replica ${c.replica.guid.slice(0, 12)}`)
    // Both files, proven to be the two messages (SHA1 = GUID), saved before anything changes.
    const files: Record<string, Buffer> = {}
    for (const [h, v] of [
      [master, c.master],
      [replica, c.replica],
    ] as const) {
      const step = `save-aside-${h === master ? 'master' : 'replica'}:${id}`
      const f = await inspectMessageFile(ctx, h, c.mailbox, c.uid)
      const savedLocal = join(journal.dir, `${h.name}-${c.mailbox.replace(/[^A-Za-z0-9._-]/g, '_')}-${c.uid}.eml`)
      if (!f || f.sha1 !== v.guid) {
        // Already expunged by an earlier attempt: the run folder holds the bytes.
        if (existsSync(savedLocal) && sha1Hex(readFileSync(savedLocal)) === v.guid) {
          files[h.name] = readFileSync(savedLocal)
          continue
        }
        throw new AbortError(`${h.name} no longer holds ${v.guid} as UID ${c.uid} of ${c.mailbox}${f ? ` (the file's SHA1 is ${f.sha1})` : ''}, and the run folder has no copy`, {host: h.name, step, hint: 'run murderctl replication audit again: the mailbox changed since the plan'})
      }
      await unit(step, h, async () => {
        files[h.name] = await saveAside(ctx, h, journal, c, f, step)
        return {path: f.path, sha256: f.sha256, bytes: f.bytes}
      })
      files[h.name] ??= readFileSync(savedLocal)
    }

    // Re-append, replica's version first (the order Cyrus 3.6 uses when it renumbers).
    const {owner, name} = ownerView(c.mailbox, conf)
    for (const [h, v] of [
      [replica, c.replica],
      [master, c.master],
    ] as const) {
      await unit(`append-${h === master ? 'master' : 'replica'}-version:${id}`, master, async () => {
        const before = uidsOf(await recordsOf(ctx, master, c.mailbox), v.guid).filter((u) => u !== c.uid)
        if (before.length) return {alreadyAt: before}
        const r = await imapSession(ctx, master, owner, (s) => s.append(name, files[h.name], {flags: v.flags.filter((f) => f !== '\\Recent'), internalDate: imapDate(v.internalDate)}))
        const after = uidsOf(await recordsOf(ctx, master, c.mailbox), v.guid).filter((u) => u !== c.uid)
        if (after.length !== 1) throw new AbortError(`after APPEND (${r.text}) ${master.name} holds ${v.guid} ${after.length} times besides UID ${c.uid}`, {host: master.name})
        return {newUid: after[0], appendText: r.text}
      })
    }
  }

  // The destructive part: ask again, with what is now proven.
  await ask(`Both versions of every conflict are on ${master.name} under new UIDs. Expunge the conflicting UIDs on ${master.name} and ${replica.name}?`, 'the expunges')
  for (const c of plan.conflicts) {
    const id = `${c.mailbox}:${c.uid}`
    const onMaster = await recordsOf(ctx, master, c.mailbox)
    for (const g of [c.master.guid, c.replica.guid])
      if (uidsOf(onMaster, g).filter((u) => u !== c.uid).length !== 1)
        throw new AbortError(`${g} is not on ${master.name} exactly once under a new UID: not expunging UID ${c.uid}`, {host: master.name, step: `expunge:${id}`, hint: `murderctl replication repair ${pair.backend.name} --resume ${journal.run}`})
    for (const [h, expect] of [
      [master, c.master.guid],
      [replica, c.replica.guid],
    ] as const) {
      await unit(`expunge:${id}`, h, async () => {
        const at = (await recordsOf(ctx, h, c.mailbox)).find((m) => m.uid === c.uid)
        if (!at) return {already: 'expunged'}
        if (at.guid !== expect) throw new AbortError(`UID ${c.uid} of ${c.mailbox} on ${h.name} now holds ${at.guid}, not ${expect}`, {host: h.name})
        await imapSession(ctx, h, null, async (s) => {
          await s.ok(`SELECT ${imapString(c.mailbox)}`)
          await s.ok(`UID STORE ${c.uid} +FLAGS.SILENT (\\Deleted)`)
          await s.ok(`UID EXPUNGE ${c.uid}`)
        })
        const still = (await recordsOf(ctx, h, c.mailbox)).some((m) => m.uid === c.uid)
        if (still) throw new AbortError(`UID ${c.uid} of ${c.mailbox} is still on ${h.name} after UID EXPUNGE`, {host: h.name})
        return {expunged: c.uid, guid: expect}
      })
    }
  }

  // Replicate each owner's mailboxes now, then prove both members agree.
  const owners = [...new Set(plan.conflicts.map((c) => ownerView(c.mailbox, conf).owner ?? `mailbox:${c.mailbox}`))]
  for (const o of owners)
    await unit(`sync:${o}`, master, async () => {
      const args = o.startsWith('mailbox:') ? ['-m', o.slice(8)] : ['-u', o]
      const r = await ctx.pool.exec(master, [tool(master, 'sync_client'), '-v', ...args])
      journal.command(`sync:${o}`, master.name, r)
      return {exitCode: r.exitCode}
    })
  const verified: RepairResult['verified'] = []
  for (const c of plan.conflicts) {
    const [m, r] = await Promise.all([recordsOf(ctx, master, c.mailbox), recordsOf(ctx, replica, c.mailbox)])
    const where = (ms: MessageRecord[]) => Object.fromEntries([c.master.guid, c.replica.guid].map((g) => [g, uidsOf(ms, g)]))
    const wm = where(m)
    const wr = where(r)
    const ok = [c.master.guid, c.replica.guid].every((g) => wm[g].length === 1 && wr[g].length === 1 && wm[g][0] === wr[g][0] && wm[g][0] !== c.uid)
    if (!ok) {
      journal.write({event: 'step-failed', step: `verify:${c.mailbox}:${c.uid}`, data: {master: wm, replica: wr}})
      throw new AbortError(`${c.mailbox} UID ${c.uid}: the two versions are not on both members exactly once under the same UIDs (master ${JSON.stringify(wm)}, replica ${JSON.stringify(wr)})`, {
        step: 'verify',
        hint: `check replication (murderctl check --only replication), then murderctl replication repair ${pair.backend.name} --resume ${journal.run}`,
      })
    }
    journal.write({event: 'step-done', step: `verify:${c.mailbox}:${c.uid}`, data: {master: wm, replica: wr}})
    verified.push({mailbox: c.mailbox, uid: c.uid, master: Object.fromEntries(Object.entries(wm).map(([g, u]) => [g, u[0]])), replica: Object.fromEntries(Object.entries(wr).map(([g, u]) => [g, u[0]]))})
  }
  journal.write({event: 'run-end', data: {verified: verified.length}})
  return {run: journal.run, journal: journal.path, dryRun: false, plan, verified}
}

/** A message's GUID is the SHA1 of its file. */
const sha1Hex = (b: Buffer) => createHash('sha1').update(b).digest('hex')
