// A backend's live local mailboxes (and the names it holds as remote entries), read once per run
// while its mailboxes.db stays the same file: the preflight reads them; the unified diff and the
// push's check take the remote names, and verify the local ones, from that read unless the file
// changed since (one sha256sum on the host instead of a whole `ctl_mboxlist -d` read again). The
// names are picked out of the dump on the host (scanNames): a short line per entry crosses SSH.
import {dbSha256} from '../../host/db.js'
import {scanNames} from '../../host/mboxlist.js'
import type {Host} from '../../inventory/schema.js'
import type {RunContext} from '../context.js'
import {dbBytes, removeDir, scratchDir} from './scratch.js'

interface LocalList {
  /** sha256 of the mailboxes.db the names were read from (the same before and after the read). */
  sha256: string
  names: ReadonlySet<string>
  /** Entries the backend holds as remote (pointers to other backends' mailboxes). */
  remote: ReadonlySet<string>
  /** The dump the names came from, kept on the host (KEEP_DUMPS), for the local-only list. */
  dump?: {dir: string; file: string}
}

const key = (h: Host) => `local-list@${h.name}`
// Per folder: a dump replaced by a later read is released without touching the new one's cleanup.
const dumpCleanup = (h: Host, dir: string) => `kept-dump@${h.name}@${dir}`
/** Set once the backend's build asked for its dump: later reads of its list keep none. */
const dumpTaken = (h: Host) => `kept-dump-taken@${h.name}`

/**
 * Set in a real run that will build each backend's local-only list (a unified push): the run's
 * first read of a backend's list then keeps its dump in a private scratch folder on the host,
 * so the build reads that file instead of running `ctl_mboxlist -d` again (1 to 2 s of Cyrus's
 * CPU per 40,000 entries). Removed once the build took it, or at the run's end.
 */
export const KEEP_DUMPS = 'keep-dumps'

async function dropDump(rc: RunContext, h: Host, dump?: {dir: string}) {
  if (!dump) return
  rc.cleanups.delete(dumpCleanup(h, dump.dir))
  await removeDir(rc, h, dump.dir)
}

/** sha256 of the host's mailboxes.db, or null when it cannot be had (then the list is read, not reused). */
export const dbSumOrNull = (rc: RunContext, h: Host): Promise<string | null> => dbSha256(rc.murder, h).catch(() => null)

/** The backend's lists, and whether they were read now or kept from the run's earlier read of the same file. */
async function lists(rc: RunContext, h: Host, step: string): Promise<{list: LocalList; reread: boolean}> {
  const kept = rc.facts.get(key(h)) as LocalList | undefined
  const before = await dbSumOrNull(rc, h)
  if (kept && before && kept.sha256 === before) return {list: kept, reread: false}
  const names = new Set<string>()
  const remote = new Set<string>()
  // A dump kept by an earlier read is of another file now.
  await dropDump(rc, h, kept?.dump)
  const dump = rc.facts.get(KEEP_DUMPS) && !rc.facts.get(dumpTaken(h)) && !rc.dryRun && before ? await keepDir(rc, h) : undefined
  try {
    await scanNames(rc.murder, h, (name, isRemote) => (isRemote ? remote : names).add(name), step, dump?.file)
  } catch (error) {
    await dropDump(rc, h, dump)
    throw error
  }
  const list: LocalList = {sha256: before ?? '', names, remote, dump}
  // Kept only when the file did not change during the read.
  const after = before && (await dbSumOrNull(rc, h))
  if (before && after === before) rc.facts.set(key(h), list)
  else {
    rc.facts.delete(key(h))
    await dropDump(rc, h, dump)
  }
  return {list, reread: true}
}

/** Both lists of a backend (its live local mailboxes, its remote entries) from one read, and whether they were read now. */
export async function backendLists(rc: RunContext, h: Host, step: string): Promise<{names: ReadonlySet<string>; remote: ReadonlySet<string>; reread: boolean}> {
  const {list, reread} = await lists(rc, h, step)
  return {names: list.names, remote: list.remote, reread}
}

/** The names of a backend's live local mailboxes, and whether they were read now or kept from the run's earlier read of the same file. */
export async function localMailboxes(rc: RunContext, h: Host, step: string): Promise<{names: ReadonlySet<string>; reread: boolean}> {
  const {list, reread} = await lists(rc, h, step)
  return {names: list.names, reread}
}

/** The names a backend holds as remote entries (as read now, or kept from the run's read of the same file). */
export async function remoteMailboxes(rc: RunContext, h: Host, step: string): Promise<ReadonlySet<string>> {
  return (await lists(rc, h, step)).list.remote
}

/** The folders of this run's kept dumps on this host are named by this prefix. */
export const dumpPrefix = (rc: RunContext, h: Host) => `murderctl-dump-${rc.runId}-${h.name}`

/** A scratch folder for the dump, removed at the run's end if no build takes it; none when one cannot be made (the build then dumps again). */
async function keepDir(rc: RunContext, h: Host): Promise<{dir: string; file: string} | undefined> {
  try {
    // No sweep: another read of this list may be writing its own folder (the build sweeps leftovers).
    const dir = await scratchDir(rc, h, dumpPrefix(rc, h), 2 * (await dbBytes(rc, h)), {sweep: false})
    rc.cleanups.set(dumpCleanup(h, dir), () => removeDir(rc, h, dir))
    return {dir, file: `${dir}/dump`}
  } catch {
    return undefined
  }
}

/**
 * The backend's dump kept by this run's read of its list, if its mailboxes.db still has the
 * checksum `sha256` it had then (the caller's, read just now); handed over once: the caller
 * removes it with `release` when done.
 */
export async function takeKeptDump(rc: RunContext, h: Host, sha256: string | null): Promise<{file: string; release: () => Promise<void>} | undefined> {
  rc.facts.set(dumpTaken(h), true)
  const kept = rc.facts.get(key(h)) as LocalList | undefined
  if (!kept?.dump) return undefined
  const dump = kept.dump
  rc.facts.set(key(h), {...kept, dump: undefined})
  const release = () => dropDump(rc, h, dump)
  if (!sha256 || kept.sha256 !== sha256) return void (await release())
  return {file: dump.file, release}
}
