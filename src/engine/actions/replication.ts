// replication repair's actions (playbooks/replication-repair.yaml): the Fastmail procedure for
// UID conflicts, one action per stage, each idempotent (it checks whether its effect already
// holds), so a resumed run redoes nothing. The conflicts come from the run's options (planned
// by services/repair.ts and journaled at the run's start); the pair's members from the
// selectors pair-master / pair-replica / pair-members.
import {createHash} from 'node:crypto'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {z} from 'zod'
import {AbortError} from '../../errors.js'
import {messageRecords, type MessageRecord, MessageRecord as MessageRecordSchema} from '../../host/mailbox-state.js'
import {headerSummary, inspectMessageFile} from '../../host/message-file.js'
import {copyAside, readImapdConf, tool} from '../../host/remote.js'
import {imapSession as sharedImapSession} from '../../imap/session.js'
import {ImapClient, imapString} from '../../imap/client.js'
import {imapDate, ownerView} from '../../imap/mailbox-name.js'
import type {Host} from '../../inventory/schema.js'
import {sha256} from '../../util/hash.js'
import type {RunContext} from '../context.js'
import {defineAction, need} from './types.js'

const Version = MessageRecordSchema.pick({guid: true, flags: true, internalDate: true, size: true})

export const RepairConflict = z.object({
  mailbox: z.string(),
  uid: z.number().int(),
  master: Version,
  replica: Version,
  /** What the message files said when planned (From, Subject, Date...), for people. */
  inspect: z.object({master: z.record(z.string(), z.string()).nullable(), replica: z.record(z.string(), z.string()).nullable()}).optional(),
})
export type RepairConflict = z.infer<typeof RepairConflict>

export const RepairOptions = z.object({
  pair: z.string(),
  master: z.string(),
  replica: z.string(),
  conflicts: z.array(RepairConflict),
})
export type RepairOptions = z.infer<typeof RepairOptions>

const NoParams = z.object({}).strict()
const options = (rc: RunContext) => RepairOptions.parse(rc.options)
const one = (rc: RunContext, selector: string): Host => {
  const s = rc.selectors[selector]
  const h = (typeof s === 'function' ? s(rc) : s)?.[0]
  if (!h) throw new AbortError(`this run has no ${selector}`, {step: selector})
  return h
}
const sideOf = (rc: RunContext, host: Host): 'master' | 'replica' => (host.name === options(rc).master ? 'master' : 'replica')
const sha1Hex = (b: Buffer) => createHash('sha1').update(b).digest('hex')
const uidsOf = (ms: MessageRecord[], guid: string) => ms.filter((m) => m.guid === guid).map((m) => m.uid)
const idOf = (c: RepairConflict) => `${c.mailbox} UID ${c.uid}`

/** Where the run folder keeps a message's bytes: proof for the operator and the source of the re-append. */
export const localCopyPath = (rc: RunContext, host: string, c: RepairConflict) =>
  join(rc.journal.dir, `${host}-${c.mailbox.replace(/[^A-Za-z0-9._-]/g, '_')}-${c.uid}.eml`)

async function recordsOf(rc: RunContext, host: Host, mailbox: string): Promise<MessageRecord[]> {
  const [box] = await messageRecords(rc.murder, host, [mailbox])
  if (!box || box.name !== mailbox) throw new AbortError(`${mailbox} is not on ${host.name}`, {host: host.name})
  return box.messages
}

/** An IMAP session on a member, as the admin or (proxy authorization) as a mailbox's owner. */
const imapSession = <T>(rc: RunContext, host: Host, asUser: string | null, fn: (c: ImapClient) => Promise<T>): Promise<T> =>
  sharedImapSession(rc.murder.inv, host, asUser, fn)

export const inspectConflicts = defineAction({
  mutating: false,
  params: NoParams,
  describe: () => "read both versions' spool files (headers, size, SHA1 = GUID)",
  async run(rc, step, _p, host) {
    const h = need(host, step)
    const side = sideOf(rc, h)
    const seen: Record<string, unknown>[] = []
    for (const c of options(rc).conflicts) {
      const f = await inspectMessageFile(rc.murder, h, c.mailbox, c.uid)
      const local = localCopyPath(rc, h.name, c)
      // After the expunge (a resumed run) the run folder holds the bytes.
      const ok = f?.sha1 === c[side].guid || (existsSync(local) && sha1Hex(readFileSync(local)) === c[side].guid)
      if (!ok)
        throw new AbortError(`${h.name} no longer holds ${c[side].guid} as ${idOf(c)}${f ? ` (the file's SHA1 is ${f.sha1})` : ''}`, {
          host: h.name,
          hint: 'the mailbox changed since the plan: run murderctl replication repair again (without --resume)',
        })
      rc.murder.log(`${h.name} ${idOf(c)}: ${f ? `${f.bytes} B ${JSON.stringify(headerSummary(f.headers))}` : 'already expunged; the run folder has it'}`)
      seen.push({conflict: idOf(c), bytes: f?.bytes, headers: f && headerSummary(f.headers)})
    }
    return {seen}
  },
})

export const saveMessageFiles = defineAction({
  mutating: true,
  params: NoParams,
  describe: (rc) =>
    `copy ${options(rc).conflicts.length} message files aside (cp -p <spool>/<uid>. <spool>/<uid>..murderctl-${rc.runId}-save, sha256 checked) and into the run folder`,
  async run(rc, step, _p, host) {
    const h = need(host, step)
    const side = sideOf(rc, h)
    const saved: string[] = []
    for (const c of options(rc).conflicts) {
      const local = localCopyPath(rc, h.name, c)
      const f = await inspectMessageFile(rc.murder, h, c.mailbox, c.uid)
      if (!f || f.sha1 !== c[side].guid) {
        if (existsSync(local) && sha1Hex(readFileSync(local)) === c[side].guid) continue
        throw new AbortError(`${h.name} no longer holds ${c[side].guid} as ${idOf(c)}, and the run folder has no copy`, {host: h.name})
      }
      const bytes = await rc.murder.pool.readFile(h, f.path)
      if (sha256(bytes) !== f.sha256) throw new AbortError(`${f.path} changed while being read`, {host: h.name})
      if (!existsSync(local)) writeFileSync(local, bytes, {mode: 0o600})
      if (sha256(readFileSync(local)) !== f.sha256) throw new AbortError(`the run folder's copy ${local} does not match ${f.path}`, {host: h.name})
      const copy = await copyAside(rc.murder, h, f.path, `${rc.runId}-${step.id}`, step.id)
      rc.journal.saved(step.id, copy)
      rc.journal.write({event: 'saved-copy', step: step.id, data: {host: 'local', path: f.path, copy: local, sha256: f.sha256, bytes: f.bytes}})
      saved.push(copy.copy)
    }
    return {saved}
  },
})

export const reappendConflicts = defineAction({
  mutating: true,
  params: NoParams,
  describe: (rc) =>
    `APPEND both versions of ${options(rc).conflicts.length} conflicts to the master as each mailbox's owner, with flags and internaldate (new UIDs)`,
  async run(rc, step, _p, host) {
    const master = need(host, step)
    const conf = await readImapdConf(rc.murder, master)
    const done: Record<string, unknown>[] = []
    for (const c of options(rc).conflicts) {
      const {owner, name} = ownerView(c.mailbox, conf)
      // The replica's version first: the order Cyrus 3.6 itself uses when it renumbers.
      for (const [side, from] of [
        ['replica', options(rc).replica],
        ['master', options(rc).master],
      ] as const) {
        const v = c[side]
        const before = uidsOf(await recordsOf(rc, master, c.mailbox), v.guid).filter((u) => u !== c.uid)
        if (before.length) {
          done.push({conflict: idOf(c), side, alreadyAt: before})
          continue
        }
        const bytes = readFileSync(localCopyPath(rc, from, c))
        if (sha1Hex(bytes) !== v.guid) throw new AbortError(`the run folder's copy of the ${side}'s ${idOf(c)} is not ${v.guid}`, {host: master.name})
        const r = await imapSession(rc, master, owner, (s) =>
          s.append(name, bytes, {flags: v.flags.filter((f) => f !== '\\Recent'), internalDate: imapDate(v.internalDate)}),
        )
        const after = uidsOf(await recordsOf(rc, master, c.mailbox), v.guid).filter((u) => u !== c.uid)
        if (after.length !== 1)
          throw new AbortError(`after APPEND (${r.text}) ${master.name} holds ${v.guid} ${after.length} times besides UID ${c.uid}`, {host: master.name})
        done.push({conflict: idOf(c), side, newUid: after[0]})
      }
    }
    return {appended: done}
  },
})

export const expungeConflicts = defineAction({
  mutating: true,
  params: NoParams,
  describe: (rc) =>
    `UID STORE +FLAGS (\\Deleted) and UID EXPUNGE of the ${options(rc).conflicts.length} conflicting UIDs, once both versions are proven on the master under new UIDs`,
  async run(rc, step, _p, host) {
    const h = need(host, step)
    const master = one(rc, 'pair-master')
    const side = sideOf(rc, h)
    const expunged: string[] = []
    for (const c of options(rc).conflicts) {
      // Never delete mail until what replaces it is verified: both versions once on the master, elsewhere than UID.
      const onMaster = await recordsOf(rc, master, c.mailbox)
      for (const g of [c.master.guid, c.replica.guid])
        if (uidsOf(onMaster, g).filter((u) => u !== c.uid).length !== 1)
          throw new AbortError(`${g} is not on ${master.name} exactly once under a new UID: not expunging ${idOf(c)}`, {host: h.name})
      const at = (await recordsOf(rc, h, c.mailbox)).find((m) => m.uid === c.uid)
      if (!at) continue
      if (at.guid !== c[side].guid) throw new AbortError(`${idOf(c)} on ${h.name} now holds ${at.guid}, not ${c[side].guid}`, {host: h.name})
      await imapSession(rc, h, null, async (s) => {
        await s.ok(`SELECT ${imapString(c.mailbox)}`)
        await s.ok(`UID STORE ${c.uid} +FLAGS.SILENT (\\Deleted)`)
        await s.ok(`UID EXPUNGE ${c.uid}`)
      })
      if ((await recordsOf(rc, h, c.mailbox)).some((m) => m.uid === c.uid))
        throw new AbortError(`${idOf(c)} is still on ${h.name} after UID EXPUNGE`, {host: h.name})
      expunged.push(idOf(c))
    }
    return {expunged}
  },
})

export const syncOwners = defineAction({
  mutating: true,
  params: NoParams,
  describe: (rc) => `sync_client -u <owner> for the owners of ${options(rc).conflicts.length} conflicts (-m <mailbox> for shared ones)`,
  async run(rc, step, _p, host) {
    const master = need(host, step)
    const conf = await readImapdConf(rc.murder, master)
    const targets = [...new Set(options(rc).conflicts.map((c) => ownerView(c.mailbox, conf).owner ?? `mailbox:${c.mailbox}`))]
    for (const t of targets) {
      const args = t.startsWith('mailbox:') ? ['-m', t.slice(8)] : ['-u', t]
      const r = await rc.murder.pool.exec(master, [tool(master, 'sync_client'), '-v', ...args])
      rc.journal.command(step.id, master.name, r)
      // sync_client exits 0 on many failures: the verify step decides.
    }
    return {synced: targets}
  },
})

export const verifyConflicts = defineAction({
  mutating: false,
  planOnly: true,
  params: NoParams,
  describe: () => 'both versions of every conflict on both members exactly once, under the same new UID',
  async run(rc) {
    const master = one(rc, 'pair-master')
    const replica = one(rc, 'pair-replica')
    const verified: {mailbox: string; uid: number; uids: Record<string, number>}[] = []
    for (const c of options(rc).conflicts) {
      const [m, r] = await Promise.all([recordsOf(rc, master, c.mailbox), recordsOf(rc, replica, c.mailbox)])
      const guids = [c.master.guid, c.replica.guid]
      const ok = guids.every((g) => uidsOf(m, g).length === 1 && uidsOf(r, g).length === 1 && uidsOf(m, g)[0] === uidsOf(r, g)[0] && uidsOf(m, g)[0] !== c.uid)
      if (!ok)
        throw new AbortError(
          `${idOf(c)}: the two versions are not on both members exactly once under the same UIDs (master ${JSON.stringify(guids.map((g) => uidsOf(m, g)))}, replica ${JSON.stringify(guids.map((g) => uidsOf(r, g)))})`,
          {
            hint: 'check replication (murderctl check --only replication), then resume',
          },
        )
      verified.push({mailbox: c.mailbox, uid: c.uid, uids: Object.fromEntries(guids.map((g) => [g, uidsOf(m, g)[0]]))})
    }
    rc.facts.set('verified', verified)
    return {verified}
  },
})
