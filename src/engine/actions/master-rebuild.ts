// Rebuilding a lost mupdate master: the preflight that decides it is lost, and installing a
// mailbox list from a frontend or a backup on the stopped master.
import {z} from 'zod'
import {asMurderctlError, HostKeyError, RefusedError, UnreachableError} from '../../errors.js'
import {dbInfo, installDb, snapshotDb, startSnapshot} from '../../host/db.js'
import {cyrusVersion} from '../../host/remote.js'
import {sha256} from '../../util/hash.js'
import {masterLooksLost} from '../../host/facts.js'
import {countEntriesOnHost} from '../../host/mboxlist.js'
import {hostsByRole, master} from '../../inventory/load.js'
import type {Host} from '../../inventory/schema.js'
import {latestVerifiedBackup, readVerifiedBackup} from '../../store/backups.js'
import {mapLimit} from '../../util/limit.js'
import type {RunContext} from '../context.js'
import type {Step} from '../schema.js'
import {localMailboxes} from './local-lists.js'
import {defineAction, need} from './types.js'

/** recover-master's options, as its service puts them in the run (and the journal keeps them). */
export const RecoverOptions = z.object({
  source: z.enum(['backends', 'frontend', 'backup']),
  /** A backup folder, for source backup (else the newest verified one of the master). */
  backupPath: z.string().optional(),
  /** Which frontend to copy, for source frontend (else the one holding the most entries). */
  frontend: z.string().optional(),
  /** Go on although the master does not look lost. */
  force: z.boolean().default(false),
  /** Rebuild the master's list on a tmpfs, then install it on disk (--no-tmpfs: on disk all along). */
  tmpfs: z.boolean().default(true),
})
export type RecoverOptions = z.infer<typeof RecoverOptions>

const options = (rc: RunContext) => RecoverOptions.parse(rc.options)

/** What the hosts held before the recovery: verify compares the outcome with it. */
export interface BeforeFigures {
  masterEntries: number | null
  backendsLocal: Record<string, number>
  unionLocal: number
}

async function preflight(rc: RunContext, step: Step): Promise<Record<string, unknown>> {
  const ctx = rc.murder
  const opts = options(rc)
  const m = master(ctx.inv)
  const backends = hostsByRole(ctx.inv, 'backend')
  // Every host answers before anything starts, or the operator names the dead ones to skip.
  const down = (
    await mapLimit(ctx.inv.hosts, ctx.concurrency, async (h) =>
      ctx.pool.execOk(h, ['true']).then(
        () => null,
        (error) => asMurderctlError(error).at({host: h.name}),
      ),
    )
  ).filter((e) => e !== null)
  if (down.length)
    // The same fault, the same exit code in every command: a host key problem is 5, not 4.
    throw new (down.some((e) => e.code === 'hostKey') ? HostKeyError : UnreachableError)(down.map((e) => `${e.host}: ${e.message}`).join('; '), {
      host: down[0].host,
      step: step.id,
      hint: `bring ${down.map((e) => e.host).join(', ')} back, or leave ${down.length > 1 ? 'them' : 'it'} out with ${down.map((e) => `--skip-host ${e.host}`).join(' ')} (never the master)`,
    })
  // Every backend must answer: the recovery rebuilds from them and checks against them.
  const localP = mapLimit(backends, ctx.concurrency, async (b) => [b.name, (await localMailboxes(rc, b, step.id)).names.size] as const)
  const masterP = (async () => {
    const {path} = await dbInfo(ctx, m)
    const exists = (await ctx.pool.exec(m, ['test', '-e', path])).exitCode === 0
    // Never let ctl_mboxlist create a missing db: count only what is there.
    return {path, masterEntries: exists ? (await countEntriesOnHost(ctx, m, step.id)).total : null}
  })()
  const [local, {path, masterEntries}] = await Promise.all([localP, masterP])
  const backendsLocal = Object.fromEntries(local)
  const unionLocal = local.reduce((s, [, n]) => s + n, 0)
  rc.facts.set('before', {masterEntries, backendsLocal, unionLocal} satisfies BeforeFigures)
  const lost = masterLooksLost(masterEntries, unionLocal, ctx.inv.thresholds)
  const figures = {masterDb: path, masterEntries, unionOfBackendsLocal: unionLocal, backendsLocal, lost}
  if (!lost && !opts.force && !rc.resumed)
    throw new RefusedError(`the master does not look lost: it holds ${masterEntries} entries, the backends ${unionLocal} local mailboxes`, {
      host: m.name,
      step: step.id,
      hint: 'after an outage, murderctl sync-backends is the usual repair; --force runs the recovery anyway',
    })
  if (opts.source === 'backup') {
    const b = opts.backupPath ? readVerifiedBackup(opts.backupPath) : latestVerifiedBackup(ctx, m.name)
    if (!b)
      throw new RefusedError(`no verified backup of ${m.name} in ${ctx.inv.stateDir}`, {
        host: m.name,
        step: step.id,
        hint: 'name one with --source backup=DIR, or use --source backends',
      })
    if (b.meta.murder !== ctx.inv.name) throw new RefusedError(`backup ${b.dir} is of murder "${b.meta.murder}", not "${ctx.inv.name}"`, {step: step.id})
    Object.assign(figures, {backup: b.dir, backupEntries: b.meta.entries, backupTakenAt: b.meta.takenAt})
  }
  if (opts.source === 'frontend') Object.assign(figures, {frontend: (await pickFrontend(rc, step)).name})
  return figures
}

async function pickFrontend(rc: RunContext, step: Step): Promise<Host> {
  const wanted = options(rc).frontend
  const fes = hostsByRole(rc.murder.inv, 'frontend')
  if (wanted) {
    const f = fes.find((x) => x.name === wanted)
    if (!f) throw new RefusedError(`"${wanted}" is not a frontend`, {step: step.id, hint: `frontends: ${fes.map((x) => x.name).join(', ')}`})
    return f
  }
  // The frontend holding the most entries is the one that heard the most from the master.
  const counts = await mapLimit(fes, rc.murder.concurrency, async (f) => {
    try {
      return {f, n: (await countEntriesOnHost(rc.murder, f, step.id)).total}
    } catch {
      return {f, n: -1}
    }
  })
  const best = counts.sort((a, b) => b.n - a.n)[0]
  if (!best || best.n <= 0)
    throw new RefusedError('no frontend holds a mailbox list to copy', {step: step.id, hint: 'use --source backends or --source backup'})
  return best.f
}

export const lostMasterPreflight = defineAction({
  mutating: false,
  params: z.object({}).strict(),
  describe: () => "read every backend's and the master's mailbox list; refuse unless the master looks lost",
  run: (rc, s) => preflight(rc, s),
})

export const installDbFromFrontend = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  describe: (rc) =>
    `cvt_cyrusdb a consistent copy of ${options(rc).frontend ?? 'the fullest frontend'}'s mailboxes.db, fetch it, upload it beside the master's, check sha256 and entry count, mv into place`,
  async run(rc, step, _p, host) {
    const h = need(host, step)
    const fe = await pickFrontend(rc, step)
    const snap = await snapshotDb(rc.murder, fe, rc.runId, step.id)
    const done = await installDb(rc.murder, h, snap.data, snap.meta, rc.runId, step.id)
    return {from: fe.name, entries: done.entries, sha256: snap.meta.sha256}
  },
})

export const installDbFromBackup = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  describe: (rc) => `upload ${options(rc).backupPath ?? 'the newest verified backup'}, check sha256 and entry count, mv into place`,
  async run(rc, step, _p, host) {
    const h = need(host, step)
    const {backupPath} = options(rc)
    const b = backupPath ? readVerifiedBackup(backupPath) : latestVerifiedBackup(rc.murder, h.name)
    if (!b) throw new RefusedError(`no verified backup of ${h.name}`, {host: h.name, step: step.id})
    const done = await installDb(rc.murder, h, b.data, b.meta, rc.runId, step.id)
    return {from: b.dir, entries: done.entries, sha256: b.meta.sha256}
  },
})

/** The master's list as the frontends get it: its bytes, their sha256, and who counted its entries. */
interface MasterList {
  data: Buffer
  meta: {host: string; sha256: string; cyrusVersion: string | null; format: string}
  /** Cyrus's count of these bytes on the master; null: not counted, proven by sha256 to be the list the master was given on disk. */
  entries: Promise<number> | null
  /** Where the bytes come from: the step that installed them on the master, or a cvt_cyrusdb copy. */
  source: string
}

/**
 * The master's list for a step, read once and shared by its hosts (they run at the same time),
 * and let go when the last of them is done: its bytes (32 MB at 200,000 entries) are not kept
 * for the rest of the run. A host that starts after that reads it again.
 * Right after the push, the list this run installed on the master's disk (its sha256 is in the
 * journal): read as it is, used only if it still has that sha256, so the bytes are that very
 * list, consistent. Otherwise (--no-tmpfs, or the master changed it since) a consistent copy by
 * cvt_cyrusdb, counted by Cyrus on the master.
 */
async function withMasterList<T>(rc: RunContext, step: Step, use: (list: MasterList) => Promise<T>): Promise<T> {
  const key = `master-list@${step.id}`
  let shared = rc.facts.get(key) as {list: Promise<MasterList>; users: number} | undefined
  const drop = () => {
    if (rc.facts.get(key) === shared) rc.facts.delete(key)
  }
  if (!shared) {
    shared = {list: readMasterList(rc, step), users: 0}
    rc.facts.set(key, shared)
    // A failed read is not kept: a retry (or a resume) reads again.
    shared.list.catch(drop)
  }
  shared.users++
  try {
    return await use(await shared.list)
  } finally {
    if (--shared.users === 0) drop()
  }
}

async function readMasterList(rc: RunContext, step: Step): Promise<MasterList> {
  const m = master(rc.murder.inv)
  const installed = rc.journal
    .events()
    .findLast((e) => e.event === 'step-done' && e.host === m.name && typeof e.data?.installed === 'string' && typeof e.data?.sha256 === 'string')
  if (installed) {
    const path = installed.data!.installed as string
    const [data, version, db] = await Promise.all([rc.murder.pool.readFile(m, path), cyrusVersion(rc.murder, m), dbInfo(rc.murder, m)])
    if (path === db.path && sha256(data) === installed.data!.sha256)
      return {data, meta: {host: m.name, sha256: sha256(data), cyrusVersion: version, format: db.format}, entries: null, source: installed.step ?? 'installed'}
  }
  const snap = await startSnapshot(rc.murder, m, `${rc.runId}-${step.id}`, step.id)
  return {data: snap.data, meta: snap.meta, entries: snap.entries, source: 'cvt_cyrusdb'}
}

/**
 * A stopped frontend, its own list moved aside, takes the master's new list before it starts:
 * its mupdate slave then finds every entry already as the master says (Cyrus's resync compares
 * name, location and ACL and writes only what differs) instead of inserting the whole list on
 * disk. The master writes its entries with the same code a slave does (mboxlist_insertremote),
 * so the list is the one the slave would have built. Verify then counts every frontend against
 * the master, as before.
 */
export const installMasterDb = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  describe: () =>
    "read the master's mailboxes.db once for all frontends (the file this run installed on its disk, if its sha256 is still the journaled one; else a cvt_cyrusdb copy, counted by Cyrus there), upload it beside this host's (moved aside earlier), mode 600, fsync, sha256 checked, chown, counted by Cyrus here if its version or db format differ from the master's, mv -n into the empty place, fsync the folder",
  async run(rc, step, _p, host) {
    const h = need(host, step)
    return withMasterList(rc, step, async (list) => {
      const done = await installDb(rc.murder, h, list.data, {sha256: list.meta.sha256, entries: list.entries, countedBy: list.meta}, rc.runId, step.id)
      return {
        from: list.meta.host,
        source: list.source,
        entries: done.entries,
        sha256: list.meta.sha256,
        path: done.path,
        countedOn: done.countedHere ? h.name : list.entries ? list.meta.host : null,
      }
    })
  },
})
