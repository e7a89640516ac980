// A backend's `ctl_mboxlist -m -w` answer depends only on its own mailboxes.db and on the list
// the master serves from its mailboxes.db (the backend's config does not change during a run).
// So a -m -w that printed nothing stands, for a later check of the same kind in the same
// invocation, while both files keep the sha256 they had before and after it was read: the
// rebuilds' verify then need not ask again what the push's post-condition asked, when the only
// change between them was the master's list copied, byte for byte, from memory to its disk.
import {dbSha256} from '../host/db.js'
import {master} from '../inventory/load.js'
import type {Host} from '../inventory/schema.js'
import type {RunContext} from './context.js'

/** plain: `-m -w` about every entry; own: `-m -w -a` about the backend's own mailboxes (unified). */
export type MwKind = 'plain' | 'own'

interface MwEmpty {
  kind: MwKind
  backendSha256: string
  masterSha256: string
}

const key = (h: Host) => `mw-empty-read@${h.name}`

/** Both checksums, null where one cannot be had: then nothing is kept, and the check itself is unaffected. */
async function sums(rc: RunContext, h: Host, step: string): Promise<[string | null, string | null]> {
  const sum = (x: Host) => dbSha256(rc.murder, x, step).catch(() => null)
  return Promise.all([sum(h), sum(master(rc.murder.inv))])
}

/**
 * Run `check` (a -m -w returning how many changes it printed) between two checksums of both
 * files; an empty answer read while neither changed is kept for mwStands.
 */
export async function readMw<T extends {changes: number}>(rc: RunContext, h: Host, kind: MwKind, step: string, check: () => Promise<T>): Promise<T> {
  rc.facts.delete(key(h))
  const before = await sums(rc, h, step)
  const result = await check()
  if (result.changes !== 0 || before.includes(null)) return result
  const after = await sums(rc, h, step)
  if (after[0] === before[0] && after[1] === before[1]) rc.facts.set(key(h), {kind, backendSha256: before[0]!, masterSha256: before[1]!} satisfies MwEmpty)
  return result
}

/**
 * Whether an empty -m -w of this kind, read earlier in this invocation, stands now: the
 * backend's mailboxes.db and the master's have the checksums they had around it. The master's
 * current checksum is the caller's (a verify reads it anyway).
 */
export async function mwStands(rc: RunContext, h: Host, kind: MwKind, masterSha256: string | null, step: string): Promise<boolean> {
  const kept = rc.facts.get(key(h)) as MwEmpty | undefined
  if (!kept || kept.kind !== kind || masterSha256 === null || kept.masterSha256 !== masterSha256) return false
  return (await dbSha256(rc.murder, h, step).catch(() => null)) === kept.backendSha256
}
