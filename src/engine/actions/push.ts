// The push to the mupdate master: its diff (`ctl_mboxlist -m -w`), shown and confirmed, then
// `ctl_mboxlist -m`; on a unified murder only each backend's own mailboxes are pushed.
import {z} from 'zod'
import {undumpDocument} from '../../cyrus/mboxlist-dump.js'
import {localOnlyLine} from '../../cyrus/mboxlist-local-only.js'
import {asMurderctlError, RefusedError, UnexpectedOutputError} from '../../errors.js'
import {dbInfo} from '../../host/db.js'
import {countEntriesOnHost, localMupdateWarn, localOnlyDocOnHost, mupdatePush, mupdateWarn, scanDump} from '../../host/mboxlist.js'
import {tool} from '../../host/remote.js'
import type {Host} from '../../inventory/schema.js'
import {shellQuote} from '../../ssh/quote.js'
import type {ExecResult} from '../../ssh/types.js'
import {sha256} from '../../util/hash.js'
import type {PushDiff, RunContext} from '../context.js'
import type {Step} from '../schema.js'
import {addLocalEntry, changeCount, emptyDiff, masterList, recordDiff, SyncOptions} from './sync.js'
import {remoteMailboxes} from './local-lists.js'
import {defineAction, need} from './types.js'

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
  const w = p.localOnly
    ? await localMupdateWarn(rc.murder, h, step.id, remoteMailboxes(rc, h, step.id))
    : {...(await mupdateWarn(rc.murder, h, step.id)), claimsAvoided: []}
  const d: PushDiff = {backend: h.name, ...w.plan, claimsAvoided: w.claimsAvoided}
  rc.diffs.set(h.name, d)
  if (w.changes)
    rc.pending.set(`${p.localOnly ? 'local-mw-empty' : 'mw-empty'}@${h.name}`, `ctl_mboxlist -m -w printed ${w.changes} changes at step ${step.id}`)
  if (d.removeLocal.length)
    throw new RefusedError(`ctl_mboxlist -m would delete ${d.removeLocal.length} local mailboxes (${d.removeLocal.slice(0, 5).join(', ')})`, {
      host: h.name,
      step: step.id,
      hint: 'the restored list places them on another server: resolve with murderctl sync-backends --local-authoritative once the master is up',
    })
  return {
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

/** Push; with localOnly from a copy of the db holding only this backend's own mailboxes. */
async function push(rc: RunContext, step: Step, p: PushParams, host?: Host) {
  const h = need(host, step)
  const record = (r: ExecResult) => rc.journal.command(step.id, h.name, r)
  if (!p.localOnly) {
    const {localAuthoritative} = PushRunOptions.parse(rc.options)
    await mupdatePush(rc.murder, h, {step: step.id, record, authoritative: localAuthoritative})
    return {pushed: 'all', authoritative: localAuthoritative}
  }
  const ctl = tool(h, 'ctl_mboxlist')
  // The document and the db take less than three times the backend's own db.
  const dir = await scratchDir(rc, h, `murderctl-localonly-${rc.runId}`, 3 * (await dbBytes(rc, h)))
  const tmp = `${dir}/mailboxes.db`
  try {
    // Made on the host (the dump never crosses SSH), or here at the first line the host's awk
    // cannot read with certainty.
    const doc = `${dir}/local.json`
    const built = await localOnlyDocOnHost(rc.murder, h, doc, `${dir}/name`, step.id)
    const list = built.fallback ? await localOnlyDocHere(rc, h, step) : {...built, madeOn: 'host' as const}
    const u =
      'json' in list
        ? await rc.murder.pool.exec(h, [ctl, '-u', '-f', tmp], {stdin: list.json})
        : await rc.murder.pool.exec(h, {shell: `${shellQuote(ctl)} -u -f ${shellQuote(tmp)} < ${shellQuote(doc)}`})
    record(u)
    // -u skips entries it cannot take and still exits 0: count what it loaded.
    const loaded = (await countEntriesOnHost(rc.murder, h, step.id, tmp)).total
    if (u.stderr.trim() || loaded !== list.live)
      throw new UnexpectedOutputError(`could not build the local-only list: loaded ${loaded} of ${list.live} (${u.stderr.trim().split('\n')[0] ?? ''})`, {
        host: h.name,
        step: step.id,
        hint: "the journal has ctl_mboxlist -u's message; repair the entry it names (murderctl check lists broken entries), then resume",
      })
    await mupdatePush(rc.murder, h, {file: tmp, step: step.id, record})
    return {
      pushed: list.live,
      withoutUniqueid: list.withoutUniqueid,
      digest: list.sha256,
      madeOn: list.madeOn,
      ...(built.fallback ? {fallback: `line ${built.line}: ${built.why}`} : {}),
    }
  } finally {
    await rc.murder.pool.exec(h, ['rm', '-rf', '--', dir]).catch(() => {})
  }
}

/** The local-only document made here from the whole dump: for a host whose dump the awk cannot read with certainty. */
async function localOnlyDocHere(rc: RunContext, h: Host, step: Step) {
  // The entries as undump lines, not objects: a backend may hold hundreds of thousands.
  const local: string[] = []
  let withoutUniqueid = 0
  await scanDump(
    rc.murder,
    h,
    (e) => {
      const l = localOnlyLine(e)
      if (!l) return
      local.push(l.line)
      if (l.standin) withoutUniqueid++
    },
    step.id,
  )
  const json = undumpDocument(local)
  return {json, live: local.length, withoutUniqueid, sha256: sha256(json), madeOn: 'murderctl' as const}
}

/** Size of the host's mailboxes.db in bytes (too large for any tmpfs when it cannot be read: then the scratch goes beside the db). */
async function dbBytes(rc: RunContext, h: Host): Promise<number> {
  const {path} = await dbInfo(rc.murder, h)
  const r = await rc.murder.pool.exec(h, ['stat', '-c', '%s', '--', path])
  return r.exitCode === 0 && /^[0-9]+$/.test(r.stdout.trim()) ? Number(r.stdout.trim()) : Number.MAX_SAFE_INTEGER / 4
}

/**
 * A private folder for a scratch mailbox list, writable by the Cyrus user (ctl_mboxlist runs
 * as the owner of configdirectory). On tmpfs when /dev/shm has room for `bytes` (a container's
 * is often 64 MB): the list is read once by -m, and there ctl_mboxlist -u loads 20,000 entries
 * in 1.4 s instead of 15 s of fsyncs. Else beside the mailboxes.db.
 */
async function scratchDir(rc: RunContext, h: Host, prefix: string, bytes: number): Promise<string> {
  const {configDirectory} = await dbInfo(rc.murder, h)
  const cfg = shellQuote(configDirectory)
  const shm = `[ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')" -gt ${Math.ceil(bytes / 1024)} ] 2>/dev/null && mktemp -d ${shellQuote(`/dev/shm/${prefix}.XXXXXX`)} 2>/dev/null`
  const r = await rc.murder.pool.execOk(h, {
    shell: `d=$(${shm} || mktemp -d ${shellQuote(`${configDirectory}/${prefix}.XXXXXX`)}) && chown -- "$(stat -c %u:%g -- ${cfg})" "$d" && echo "$d"`,
  })
  return r.stdout.trim()
}

export const diffPushAction = defineAction({
  mutating: false,
  params: PushParams,
  describe: (_rc, p) =>
    `ctl_mboxlist -m -w${p.localOnly ? ' (lines for remote entries left out)' : ''}${p.review ? ", and the local mailboxes compared with the master's list" : ''}`,
  run: (rc, s, p, h) => diffPush(rc, s, p, h),
})

export const pushAction = defineAction({
  mutating: true,
  params: PushParams,
  describe: (rc, p) =>
    p.localOnly
      ? 'on the host, ctl_mboxlist -d filtered to the live local entries, ctl_mboxlist -u -f <tmp> of them, then ctl_mboxlist -m -f <tmp>'
      : `ctl_mboxlist -m${PushRunOptions.parse(rc.options).localAuthoritative ? ' -a (local copies win)' : ''}`,
  run: (rc, s, p, h) => push(rc, s, p, h),
})
