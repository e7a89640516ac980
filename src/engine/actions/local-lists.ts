// A backend's live local mailboxes (and the names it holds as remote entries), read once per run
// while its mailboxes.db stays the same file: the preflight reads them; the unified diff and the
// push's check take the remote names, and verify the local ones, from that read unless the file
// changed since (one sha256sum on the host instead of a whole `ctl_mboxlist -d` read again). The
// names are picked out of the dump on the host (scanNames): a short line per entry crosses SSH.
import {dbSha256} from '../../host/db.js'
import {scanNames} from '../../host/mboxlist.js'
import type {Host} from '../../inventory/schema.js'
import type {RunContext} from '../context.js'

interface LocalList {
  /** sha256 of the mailboxes.db the names were read from (the same before and after the read). */
  sha256: string
  names: ReadonlySet<string>
  /** Entries the backend holds as remote (pointers to other backends' mailboxes). */
  remote: ReadonlySet<string>
}

const key = (h: Host) => `local-list@${h.name}`

/** sha256 of the host's mailboxes.db, or null when it cannot be had (then the list is read, not reused). */
export const dbSumOrNull = (rc: RunContext, h: Host): Promise<string | null> => dbSha256(rc.murder, h).catch(() => null)

/** The backend's lists, and whether they were read now or kept from the run's earlier read of the same file. */
async function lists(rc: RunContext, h: Host, step: string): Promise<{list: LocalList; reread: boolean}> {
  const kept = rc.facts.get(key(h)) as LocalList | undefined
  const before = await dbSumOrNull(rc, h)
  if (kept && before && kept.sha256 === before) return {list: kept, reread: false}
  const names = new Set<string>()
  const remote = new Set<string>()
  await scanNames(rc.murder, h, (name, isRemote) => (isRemote ? remote : names).add(name), step)
  const list: LocalList = {sha256: before ?? '', names, remote}
  // Kept only when the file did not change during the read.
  const after = before && (await dbSumOrNull(rc, h))
  if (before && after === before) rc.facts.set(key(h), list)
  else rc.facts.delete(key(h))
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
