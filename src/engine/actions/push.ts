// The push to the mupdate master: its diff (`ctl_mboxlist -m -w`), shown and confirmed, then
// `ctl_mboxlist -m`; on a unified murder only each backend's own mailboxes are pushed.
import {z} from 'zod'
import {asMurderctlError, RefusedError} from '../../errors.js'
import {localMupdateWarn, mupdatePush, mupdateWarn, scanDump} from '../../host/mboxlist.js'
import type {Host} from '../../inventory/schema.js'
import type {ExecResult} from '../../ssh/types.js'
import type {PushDiff, RunContext} from '../context.js'
import type {Step} from '../schema.js'
import {addLocalEntry, changeCount, emptyDiff, masterList, recordDiff, SyncOptions} from './sync.js'
import {KEEP_DUMPS, remoteMailboxes} from './local-lists.js'
import {buildLocalOnlyDb, prebuildLocalOnlyDb, takePrebuiltLocalOnlyDb} from './local-only-db.js'
import {removeDir} from './scratch.js'
import {defineAction, need} from './types.js'
import {assertBackendsDisjoint, masterIsEmpty} from './fresh-master.js'

const PushParams = z
  .object({
    /** Leave out what the backend holds as REMOTE entries (unified murders: a plain -m would claim them). */
    localOnly: z.boolean().default(false),
    /**
     * sync-backends: also compare the backend's local mailboxes with the master's list
     * (conflicts), and leave the decisions (local deletions, a backend that failed) to a later
     * review step of the whole plan instead of refusing here.
     */
    review: z.boolean().default(false),
    /**
     * The master is the one this run emptied (recover-master from the backends): with no mailbox
     * live on two backends (checked before the run's first step), -m -w -a and -m -a print and
     * push what plain -m would, without a FIND per mailbox (fresh-master.ts).
     */
    freshMaster: z.boolean().default(false),
  })
  .strict()
type PushParams = z.infer<typeof PushParams>

/**
 * `-m -w` of a backend. With localOnly, lines for entries this backend holds as REMOTE are
 * left out and reported: on an empty master a plain -m would push them as its own.
 */
async function diffPush(rc: RunContext, step: Step, p: PushParams, host?: Host) {
  const h = need(host, step)
  if (p.review) return diffForReview(rc, step, h)
  // -a only while the master really holds nothing: then it prints what plain -m -w would.
  if (p.freshMaster) await assertBackendsDisjoint(rc, step)
  const authoritative = p.freshMaster && (await masterIsEmpty(rc, step))
  // A unified backend's push sends a local-only list: built while -m -w runs, which waits on the master and syslog.
  // The diff waits for the build either way, so that a failed diff leaves no build running past the run's end.
  const prebuilt = p.localOnly ? prebuildLocalOnlyDb(rc, h, step.id) : Promise.resolve()
  const w = p.localOnly
    ? await localMupdateWarn(rc.murder, h, step.id, remoteMailboxes(rc, h, step.id), {authoritative}).finally(() => prebuilt)
    : {...(await mupdateWarn(rc.murder, h, step.id, {authoritative})), claimsAvoided: []}
  const d: PushDiff = {backend: h.name, ...w.plan, claimsAvoided: w.claimsAvoided}
  rc.diffs.set(h.name, d)
  // Under the name of the push's post-condition, which then need not ask the host first.
  const post = p.localOnly ? (p.freshMaster ? 'own-mw-empty' : 'local-mw-empty') : 'mw-empty'
  if (w.changes) rc.pending.set(`${post}@${h.name}`, `ctl_mboxlist -m -w printed ${w.changes} changes at step ${step.id}`)
  if (d.removeLocal.length)
    throw new RefusedError(`ctl_mboxlist -m would delete ${d.removeLocal.length} local mailboxes (${d.removeLocal.slice(0, 5).join(', ')})`, {
      host: h.name,
      step: step.id,
      hint: 'the restored list places them on another server: resolve with murderctl sync-backends --local-authoritative once the master is up',
    })
  return {
    ...(p.freshMaster ? {authoritative} : {}),
    activate: d.activate.length,
    removeFromMupdate: d.removeFromMupdate.length,
    removeRemoteFlag: d.removeRemoteFlag.length,
    claimsAvoided: d.claimsAvoided.length,
  }
}

/**
 * A backend's diff for sync-backends' review: `-m -w` and its dump against the master's list,
 * recorded (failures too, in Cyrus's words) for the review step. A failure stops the run here
 * unless it is a dry run or --skip-failed: then the review reports it.
 */
async function diffForReview(rc: RunContext, step: Step, h: Host) {
  const o = SyncOptions.parse(rc.options)
  const d = emptyDiff(h)
  try {
    // -m -w runs while the master's list is read; the dump needs that list to compare with.
    const [w, scan] = await Promise.all([
      mupdateWarn(rc.murder, h, step.id),
      masterList(rc, step.id).then(({locations}) => scanDump(rc.murder, h, (e) => addLocalEntry(d, e, locations), step.id)),
    ])
    Object.assign(d, {ok: true, warn: w.plan, fingerprint: scan.fingerprint})
    rc.diffs.set(h.name, {backend: h.name, ...w.plan, claimsAvoided: [], conflicts: d.conflicts})
    // The push acts on what this diff found: -m for its changes, -m -a for its conflicts.
    if (w.changes || d.conflicts.length)
      rc.pending.set(`mw-empty@${h.name}`, `ctl_mboxlist -m -w printed ${w.changes} changes, ${d.conflicts.length} conflicts at step ${step.id}`)
    recordDiff(rc, d)
    const n = changeCount(d)
    return {
      summary:
        n || d.conflicts.length
          ? `${n} changes, ${d.conflicts.length} conflicts (${d.localMailboxes} local mailboxes)`
          : `in sync (${d.localMailboxes} local mailboxes)`,
      changes: n,
      conflicts: d.conflicts.length,
      localMailboxes: d.localMailboxes,
    }
  } catch (error) {
    const e = asMurderctlError(error).at({host: h.name, step: step.id})
    d.error = {message: e.message, hint: e.hint, code: e.code}
    recordDiff(rc, d)
    if (!rc.dryRun && !o.skipFailed) throw e
    return {summary: `FAILED (${rc.dryRun ? 'a real run stops here' : 'left out: --skip-failed'}): ${e.message}`, failed: true}
  }
}

/** The run's options as the push reads them: sync-backends' --local-authoritative pushes with -a. */
const PushRunOptions = z.object({localAuthoritative: z.boolean().default(false)}).loose()

/**
 * The step's pushes still running. A backend whose push is done waits for them before its
 * post-condition is read, so its -m -w sees the master's final list (and, unchanged, stands
 * for the verify: mw-read.ts). Only pushes already running are waited for: with fewer slots
 * than backends, a later one's check simply is not kept.
 */
function pushesInFlight(rc: RunContext, step: Step): Set<Promise<unknown>> {
  const key = `pushes-in-flight@${step.id}`
  let set = rc.facts.get(key) as Set<Promise<unknown>> | undefined
  if (!set) rc.facts.set(key, (set = new Set()))
  return set
}

async function push(rc: RunContext, step: Step, p: PushParams, host?: Host) {
  const running = pushesInFlight(rc, step)
  const mine = pushOne(rc, step, p, host)
  running.add(mine)
  try {
    return await mine
  } finally {
    running.delete(mine)
    await Promise.allSettled([...running])
  }
}

/** Push; with localOnly from a copy of the db holding only this backend's own mailboxes. */
async function pushOne(rc: RunContext, step: Step, p: PushParams, host?: Host) {
  const h = need(host, step)
  const record = (r: ExecResult) => rc.journal.command(step.id, h.name, r)
  // A resumed run's first look (this invocation ran no diff); else the diff's answer.
  if (p.freshMaster) await assertBackendsDisjoint(rc, step)
  if (!p.localOnly) {
    const authoritative = p.freshMaster || PushRunOptions.parse(rc.options).localAuthoritative
    await mupdatePush(rc.murder, h, {step: step.id, record, authoritative})
    return {pushed: 'all', authoritative}
  }
  const prebuilt = await takePrebuiltLocalOnlyDb(rc, h)
  const list = prebuilt ?? (await buildLocalOnlyDb(rc, h, step.id, {record}))
  try {
    await mupdatePush(rc.murder, h, {file: list.db, step: step.id, record, authoritative: p.freshMaster})
    return {
      pushed: list.live,
      authoritative: p.freshMaster,
      // Built by the diff from the same mailboxes.db (by sha256), or here.
      builtBy: prebuilt ? 'diff' : 'push',
      withoutUniqueid: list.withoutUniqueid,
      digest: list.digest,
      madeOn: list.madeOn,
      // From the dump the run's first read of this backend's list kept, or one read for it.
      ...(list.dump ? {dump: list.dump} : {}),
      ...(list.fallback ? {fallback: list.fallback} : {}),
    }
  } finally {
    await removeDir(rc, h, list.dir)
  }
}

export const diffPushAction = defineAction({
  mutating: false,
  params: PushParams,
  describe: (_rc, p) =>
    `ctl_mboxlist -m -w${p.freshMaster ? ' -a while the master holds nothing (the same lines without a FIND per mailbox)' : ''}${p.localOnly ? ' (lines for remote entries left out)' : ''}${p.review ? ", and the local mailboxes compared with the master's list" : ''}`,
  run: (rc, s, p, h) => diffPush(rc, s, p, h),
  // A mailbox live on two backends refuses the run before anything changes.
  precheck: async (rc, s) => {
    const p = PushParams.parse(s.params ?? {})
    // A real run's diff builds each backend's local-only list from its dump: the run's first read
    // of a backend's list keeps that dump on the host for it.
    if (p.localOnly && !p.review && !rc.dryRun) rc.facts.set(KEEP_DUMPS, true)
    if (p.freshMaster) await assertBackendsDisjoint(rc, s)
  },
})

export const pushAction = defineAction({
  mutating: true,
  params: PushParams,
  describe: (rc, p) =>
    p.localOnly
      ? `on the host, ctl_mboxlist -d filtered to the live local entries, ctl_mboxlist -u -f <tmp> of them, then ctl_mboxlist -m${p.freshMaster ? ' -a' : ''} -f <tmp>`
      : p.freshMaster
        ? 'ctl_mboxlist -m -a (into the master this run emptied; no mailbox is on two backends, so no FIND per mailbox is needed)'
        : `ctl_mboxlist -m${PushRunOptions.parse(rc.options).localAuthoritative ? ' -a (local copies win)' : ''}`,
  run: (rc, s, p, h) => push(rc, s, p, h),
})
