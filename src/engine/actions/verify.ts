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
 * not be read). In a standard murder a backend's `-m -w` prints a line for each of its live local
 * mailboxes the master lacks or places elsewhere ("Remove Local Mailbox"), and for each entry the
 * master has for it that it lacks: all of them empty leave only entries for other servers, which
 * the count shows. Not in a unified murder: there a mailbox the master places on another backend
 * prints nothing (ctl_mboxlist.c skips that check when mupdate_config is unified).
 */
export function countSuffices(mode: 'standard' | 'unified', mwChanges: readonly number[], masterEntries: number, union: number): boolean {
  return mode === 'standard' && mwChanges.every((c) => c === 0) && masterEntries === union
}

async function compareMaster(rc: RunContext, m: Host, lists: readonly BackendList[], step: string) {
  const cmp = masterAgainstBackends(lists)
  await scanDump(rc.murder, m, (e) => cmp.add(e), step)
  return cmp.result()
}

async function verifyMurder(rc: RunContext, step: Step) {
  const ctx = rc.murder
  const m = master(ctx.inv)
  const backends = hostsByRole(ctx.inv, 'backend')
  const slaves = slaveHosts(ctx.inv)
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
  // Cheap first (standard murders): the master counted on its host, its dump read and compared
  // only when the count or a backend's -m -w says something differs, for the detail.
  const mode = ctx.inv.mode === 'unified' ? 'unified' : 'standard'
  const countP = mode === 'standard' ? countEntriesOnHost(ctx, m, step.id) : undefined
  countP?.catch(() => {}) // awaited below; a failure is raised there
  const masterP = listsP.then(async (lists) => {
    if (countP) {
      const [{total}, mw] = await Promise.all([countP, mwP])
      const union = unionSize(lists)
      if (
        countSuffices(
          mode,
          mw.map((x) => x.changes),
          total,
          union,
        )
      )
        return {entries: total, missing: 0, misplaced: 0, extra: 0, union, read: 'count' as const}
    }
    return {...(await compareMaster(rc, m, lists, step.id)), read: 'dump' as const}
  })
  // Slaves take a moment to hear the last pushes: wait for them to agree, up to a minute. The
  // first round is read while the master's list is (only its count is compared: counted on the
  // slave's host, no dump crosses SSH). A slave whose mailboxes.db has the master's bytes (a
  // frontend given the master's list, whose slave found nothing to change) holds the master's
  // entries: its checksum stands for the count, and no dump of it is read.
  let finished = false
  const slavesP = (async () => {
    const deadline = Date.now() + 60_000
    for (;;) {
      const masterSum = slaves.length ? dbSha256(ctx, m, step.id) : Promise.resolve(null)
      masterSum.catch(() => {}) // awaited below by each slave; a failure is raised there
      const round = mapLimit(slaves, ctx.concurrency, async (s) => {
        const [sum, connected] = await Promise.all([dbSha256(ctx, s, step.id), checkCondition(rc, 'slave-connected', s)])
        const sameBytes = sum !== null && sum === (await masterSum)
        const entries = sameBytes ? await masterP.then((x) => x.entries) : (await countEntriesOnHost(ctx, s, step.id)).total
        return {host: s.name, entries, connected: connected.ok, sameBytes}
      })
      const [agreement, want] = await Promise.all([round, masterP.then((x) => x.entries)])
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
  const mwP = mapLimit(backends, ctx.concurrency, async (b) => {
    let changes = await mwOnce(b, unified ? (await listsP).find((l) => l.host === b.name)!.remote : undefined)
    if (changes && unified) {
      await slavesP.catch(() => {})
      changes = await mwOnce(b, (await backendLists(rc, b, step.id)).remote)
    }
    return {host: b.name, changes}
  })
  // A check that fails ends the wait of the others.
  const [mw, lists, {entries, missing, misplaced, extra, union, read}, slavesAgree] = await Promise.all([mwP, listsP, masterP, slavesP]).finally(
    () => (finished = true),
  )
  for (const x of mw) if (x.changes) problems.push(`${x.host}: ctl_mboxlist -m -w still prints ${x.changes} changes`)
  if (missing) problems.push(`the master lacks ${missing} of the backends' mailboxes`)
  if (misplaced) problems.push(`the master places ${misplaced} mailboxes on the wrong server`)
  if (extra > 0) problems.push(`the master holds ${extra} entries no backend has`)
  for (const a of slavesAgree) {
    if (a.entries !== entries) problems.push(`${a.host} holds ${a.entries} entries, the master ${entries}`)
    if (!a.connected) problems.push(`${a.host}'s mupdate slave is not connected`)
  }
  const figures = {
    master: entries,
    unionOfBackendsLocal: union,
    /** How the master's list was checked: counted on its host, or its dump compared entry by entry. */
    masterRead: read,
    before: rc.facts.get('before'),
    backendsMw: mw,
    slaves: slavesAgree,
    backendListsReread: lists.filter((l) => l.reread).map((l) => l.host),
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
  params: z.object({}).strict(),
  describe: (rc) =>
    `every backend ${rc.murder.inv.mode === 'unified' ? '-m -w -a empty about its own mailboxes' : '-m -w empty'}; master = union of the backends' local mailboxes; slaves connected and agreeing`,
  run: (rc, s) => verifyMurder(rc, s),
})
