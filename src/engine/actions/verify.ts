// The murder is whole again: every backend's -m -w empty, the master holds exactly the union
// of the backends' local mailboxes, and the slaves are connected and agree with it.
import {z} from 'zod'
import {AbortError} from '../../errors.js'
import {isRemote, type MailboxEntry} from '../../cyrus/mboxlist-dump.js'
import {dbSha256} from '../../host/db.js'
import {countEntriesOnHost, countMupdateWarn, scanDump} from '../../host/mboxlist.js'
import {hostsByRole, master, slaveHosts} from '../../inventory/load.js'
import type {Host} from '../../inventory/schema.js'
import {mapLimit} from '../../util/limit.js'
import {checkCondition} from '../conditions.js'
import type {RunContext} from '../context.js'
import type {Step} from '../schema.js'
import {backendLists} from './local-lists.js'
import {defineAction} from './types.js'
import {mwStands} from '../mw-read.js'

export interface BackendList {
  server: string
  names: ReadonlySet<string>
}

/**
 * The master's entries against the backends' lists, one entry at a time as the dump streams, so
 * neither side is copied into a map. A name two backends hold is expected on the later one (as
 * a union built in backend order would place it).
 */
export function masterAgainstBackends(lists: readonly BackendList[]) {
  let entries = 0
  let found = 0
  let misplaced = 0
  let extra = 0
  return {
    add(e: Pick<MailboxEntry, 'name' | 'mbtype' | 'server' | 'partition'>): void {
      entries++
      let owner: string | undefined
      for (const l of lists) if (l.names.has(e.name)) owner = l.server
      if (owner === undefined) return void extra++
      found++
      if ((isRemote(e) && e.server ? e.server : e.partition) !== owner) misplaced++
    },
    result() {
      const union = unionSize(lists)
      return {entries, missing: union - found, misplaced, extra, union}
    },
  }
}

/** The union's size without building it: each name counted on the last backend holding it. */
export function unionSize(lists: readonly BackendList[]): number {
  let union = 0
  lists.forEach((l, i) => {
    const later = lists.slice(i + 1)
    for (const n of l.names) if (!later.some((x) => x.names.has(n))) union++
  })
  return union
}

/**
 * Whether the master's count alone proves it holds exactly the backends' union (so its dump need
 * not be read). A backend's `-m -w` prints a line for each entry the master has for it that it
 * lacks, and (standard) for each of its live local mailboxes the master lacks or places
 * elsewhere ("Remove Local Mailbox"): all of them empty leave only entries for other servers,
 * which the count shows. In a unified murder plain `-m -w` passes over a mailbox the master
 * places on another backend (ctl_mboxlist.c skips that check when mupdate_config is unified),
 * so there the count suffices only when every `-m -w` was taken with `-a` (authoritative): that
 * asks the master nothing and prints "Force Activate" for every own mailbox not in the master's
 * list for this server at its partition and ACL.
 */
export function countSuffices(
  mode: 'standard' | 'unified',
  mwChanges: readonly number[],
  masterEntries: number,
  union: number,
  authoritative = false,
): boolean {
  return (mode === 'standard' || authoritative) && mwChanges.every((c) => c === 0) && masterEntries === union
}

async function compareMaster(rc: RunContext, m: Host, lists: readonly BackendList[], step: string) {
  const cmp = masterAgainstBackends(lists)
  await scanDump(rc.murder, m, (e) => cmp.add(e), step)
  return cmp.result()
}

/**
 * What a verify step checks. all: everything. backends: every backend's -m -w and the master
 * against their lists, while no slave runs (a standard rebuild checks them before the frontends
 * start, so their resync of the whole list does not slow every read). slaves: the slaves
 * connected and agreeing with the master, after the backends part was checked.
 */
const Scope = z.enum(['all', 'backends', 'slaves'])
type Scope = z.infer<typeof Scope>

/** The master's count as a backends-only verify read it, with the sha256 its mailboxes.db had around the count. */
const MASTER_COUNT = 'verified-master-count'
interface MasterCount {
  sha256: string
  entries: number
}

async function verifyMurder(rc: RunContext, step: Step, scope: Scope) {
  const ctx = rc.murder
  const m = master(ctx.inv)
  const backends = scope === 'slaves' ? [] : hostsByRole(ctx.inv, 'backend')
  const slaves = scope === 'backends' ? [] : slaveHosts(ctx.inv)
  const problems: string[] = []
  // The checks read different hosts (or the same ones read-only): all at once, so the run waits
  // for the slowest of them (the slaves catching up) rather than their sum.
  // The master must hold exactly the union of the backends' local mailboxes, each where it lives:
  // each backend's list as the preflight read it (unless its mailboxes.db changed since), and the
  // master's dump compared with them as it streams, so no second copy of 200,000 names is held.
  const listsP = Promise.all(
    backends.map(async (b) => {
      const {names, remote, reread} = await backendLists(rc, b, step.id)
      return {host: b.name, server: b.servername, names, remote, reread}
    }),
  )
  // Cheap first: the master counted on its host, its dump read and compared only when the count
  // or a backend's -m -w says something differs, for the detail.
  const mode = ctx.inv.mode === 'unified' ? 'unified' : 'standard'
  // A backends-only verify keeps the master's count for the slaves' verify, with the checksum
  // its mailboxes.db had before and after it was read.
  const sumBefore = scope === 'backends' ? dbSha256(ctx, m, step.id) : undefined
  sumBefore?.catch(() => {}) // awaited below; a failure is raised there
  const countP = scope !== 'slaves' ? Promise.resolve(sumBefore).then(() => countEntriesOnHost(ctx, m, step.id)) : undefined
  countP?.catch(() => {}) // awaited below; a failure is raised there
  const masterP =
    scope === 'slaves'
      ? undefined
      : Promise.all([listsP, sumBefore]).then(async ([lists]) => {
          if (countP) {
            const [{total}, mw] = await Promise.all([countP, mwP])
            const union = unionSize(lists)
            if (
              countSuffices(
                mode,
                mw.map((x) => x.changes),
                total,
                union,
                // Every unified backend's -m -w below is taken with -a.
                mode === 'unified',
              )
            )
              return {entries: total, missing: 0, misplaced: 0, extra: 0, union, read: 'count' as const}
          }
          return {...(await compareMaster(rc, m, lists, step.id)), read: 'dump' as const}
        })
  // The master's entry count the slaves are held to: this verify's own, or (slaves only) the
  // backends' verify's while the master's db still has the checksum it had then, else counted.
  let masterRead: 'count' | 'dump' | 'checksum' | undefined
  const masterEntries = async (sum: string | null): Promise<number> => {
    if (masterP) return (await masterP).entries
    const kept = rc.facts.get(MASTER_COUNT) as MasterCount | undefined
    if (kept && sum !== null && kept.sha256 === sum) return ((masterRead = 'checksum'), kept.entries)
    masterRead = 'count'
    return (await countEntriesOnHost(ctx, m, step.id)).total
  }
  // Slaves take a moment to hear the last pushes: wait for them to agree, up to a minute. The
  // first round is read while the master's list is (only its count is compared: counted on the
  // slave's host, no dump crosses SSH). A slave whose mailboxes.db has the master's bytes (a
  // frontend given the master's list, whose slave found nothing to change) holds the master's
  // entries: its checksum stands for the count, and no dump of it is read.
  let finished = false
  let slaveMasterEntries: number | undefined
  const slavesP = (async () => {
    if (!slaves.length) return []
    const deadline = Date.now() + 60_000
    for (;;) {
      const masterSum = dbSha256(ctx, m, step.id)
      const wantP = masterSum.then((sum) => masterEntries(sum))
      wantP.catch(() => {}) // awaited below by each slave; a failure is raised there
      const round = mapLimit(slaves, ctx.concurrency, async (s) => {
        const [sum, connected] = await Promise.all([dbSha256(ctx, s, step.id), checkCondition(rc, 'slave-connected', s)])
        const sameBytes = sum !== null && sum === (await masterSum)
        const entries = sameBytes ? await wantP : (await countEntriesOnHost(ctx, s, step.id)).total
        return {host: s.name, entries, connected: connected.ok, sameBytes}
      })
      const [agreement, want] = await Promise.all([round, wantP])
      slaveMasterEntries = want
      if (finished || agreement.every((a) => a.entries === want && a.connected) || Date.now() > deadline) return agreement
      await new Promise((r) => setTimeout(r, 250))
    }
  })()
  // A unified backend's -m -w is taken with -a, its remote entries left out: without -a it asks
  // the master about each of them (a FIND per remote entry, 20,000 on the lab, while the slaves
  // resync) only to say nothing, and it says nothing either of an own mailbox the master places
  // on another backend, which -a prints. The remote entries are the slaves' to agree on (below),
  // and the master's dump is compared with the backends' lists. A slave still bringing its
  // remote entries up to date may add one this read did not know: a non-empty answer counts once
  // the slaves agree, from the lists as they are then.
  const unified = ctx.inv.mode === 'unified'
  const mwOnce = async (b: Host, remote?: ReadonlySet<string>) =>
    (await countMupdateWarn(ctx, b, step.id, 5, remote ? {authoritative: true, skipActivate: (n) => remote.has(n)} : {})).changes
  // An empty -m -w of the same kind read earlier in this invocation (the push's post-condition)
  // stands while the backend's mailboxes.db and the master's keep the checksums they had around
  // it: the master's list copied from memory to its disk keeps its bytes (mw-read.ts).
  const masterSumNow = sumBefore ?? (backends.length ? dbSha256(ctx, m, step.id) : Promise.resolve(null))
  masterSumNow.catch(() => {}) // awaited below; a failure is raised there
  const mwP = mapLimit(backends, ctx.concurrency, async (b) => {
    if (await mwStands(rc, b, unified ? 'own' : 'plain', await masterSumNow, step.id)) return {host: b.name, changes: 0, read: 'checksum' as const}
    let changes = await mwOnce(b, unified ? (await listsP).find((l) => l.host === b.name)!.remote : undefined)
    if (changes && unified) {
      await slavesP.catch(() => {})
      changes = await mwOnce(b, (await backendLists(rc, b, step.id)).remote)
    }
    return {host: b.name, changes, read: 'mw' as const}
  })
  // A check that fails ends the wait of the others.
  const [mw, lists, onMaster, slavesAgree] = await Promise.all([mwP, listsP, masterP, slavesP]).finally(() => (finished = true))
  if (sumBefore && onMaster) {
    const before = await sumBefore
    if (before && (await dbSha256(ctx, m, step.id)) === before) rc.facts.set(MASTER_COUNT, {sha256: before, entries: onMaster.entries} satisfies MasterCount)
  }
  for (const x of mw) if (x.changes) problems.push(`${x.host}: ctl_mboxlist -m -w still prints ${x.changes} changes`)
  if (onMaster?.missing) problems.push(`the master lacks ${onMaster.missing} of the backends' mailboxes`)
  if (onMaster?.misplaced) problems.push(`the master places ${onMaster.misplaced} mailboxes on the wrong server`)
  if (onMaster && onMaster.extra > 0) problems.push(`the master holds ${onMaster.extra} entries no backend has`)
  const entries = onMaster?.entries ?? slaveMasterEntries
  for (const a of slavesAgree) {
    if (a.entries !== entries) problems.push(`${a.host} holds ${a.entries} entries, the master ${entries}`)
    if (!a.connected) problems.push(`${a.host}'s mupdate slave is not connected`)
  }
  const figures = {
    scope,
    master: entries,
    ...(onMaster ? {unionOfBackendsLocal: onMaster.union} : {}),
    /** How the master's list was checked: counted on its host, its dump compared entry by entry, or (slaves only) its checksum unchanged since the backends' verify counted it. */
    masterRead: onMaster?.read ?? masterRead,
    before: rc.facts.get('before'),
    ...(scope === 'slaves' ? {} : {backendsMw: mw, backendListsReread: lists.filter((l) => l.reread).map((l) => l.host)}),
    ...(scope === 'backends' ? {} : {slaves: slavesAgree}),
  }
  if (problems.length)
    throw new AbortError(`verification failed: ${problems.join('; ')}`, {
      step: step.id,
      hint: 'read the figures in the journal; murderctl sync-backends --dry-run shows what differs',
    })
  return figures
}

export const verifyMurderAction = defineAction({
  mutating: false,
  planOnly: true,
  params: z.object({scope: Scope.default('all')}).strict(),
  describe: (rc, p) =>
    [
      p.scope !== 'slaves' &&
        `every backend ${rc.murder.inv.mode === 'unified' ? '-m -w -a empty about its own mailboxes' : '-m -w empty'} (the push's empty answer stands while its mailboxes.db and the master's keep their checksums); master = union of the backends' local mailboxes`,
      p.scope !== 'backends' &&
        `slaves connected and agreeing with the master${p.scope === 'slaves' ? ' (its count kept while its mailboxes.db is unchanged)' : ''}`,
    ]
      .filter(Boolean)
      .join('; '),
  run: (rc, s, p) => verifyMurder(rc, s, p.scope),
})
