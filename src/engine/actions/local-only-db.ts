// A unified backend's local-only mailbox list, as a scratch mailboxes.db on the host: what its
// push sends (`ctl_mboxlist -m -f <it>`), so that the remote entries it holds are never pushed as
// its own. Built on the host (the dump never crosses SSH). The diff builds it while its own
// `-m -w` runs (that waits on the master and on syslog, a line per mailbox), and the push takes
// it if the backend's mailboxes.db still has the bytes it was built from; otherwise the push
// builds it again. A run that stops in between removes it.
import {undumpDocument} from '../../cyrus/mboxlist-dump.js'
import {localOnlyLine} from '../../cyrus/mboxlist-local-only.js'
import {UnexpectedOutputError} from '../../errors.js'
import {countEntriesOnHost, localOnlyDocOnHost, scanDump} from '../../host/mboxlist.js'
import {tool} from '../../host/remote.js'
import type {Host} from '../../inventory/schema.js'
import {shellQuote} from '../../ssh/quote.js'
import type {ExecResult} from '../../ssh/types.js'
import {sha256} from '../../util/hash.js'
import type {RunContext} from '../context.js'
import {dbSumOrNull, dumpPrefix, KEEP_DUMPS, takeKeptDump} from './local-lists.js'
import {dbBytes, removeDir, scratchDir, sweepScratch} from './scratch.js'

export interface LocalOnlyDb {
  /** The scratch folder (removed once pushed) and the db in it. */
  dir: string
  db: string
  /** Live local entries loaded, and those given a stand-in uniqueid. */
  live: number
  withoutUniqueid: number
  /** sha256 of the document loaded. */
  digest?: string
  madeOn: 'host' | 'murderctl'
  /** Why the host's awk could not make it (then murderctl did), when it could not. */
  fallback?: string
  /** The dump it was made from: kept by the run's read of the backend's list, or read for it. */
  dump?: 'kept' | 'read'
}

/** The local-only document made here from the whole dump: for a host whose dump the awk cannot read with certainty. */
async function localOnlyDocHere(rc: RunContext, h: Host, step: string) {
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
    step,
  )
  const json = undumpDocument(local)
  return {json, live: local.length, withoutUniqueid, sha256: sha256(json)}
}

/**
 * Build the backend's local-only list in a new scratch folder: its live local entries (made on
 * the host, or here at the first line the host's awk cannot read with certainty), loaded by
 * `ctl_mboxlist -u -f`, and counted: -u skips an entry it cannot take and still exits 0.
 */
export async function buildLocalOnlyDb(
  rc: RunContext,
  h: Host,
  step: string,
  /** source: the backend's dump as the run's read of its list kept it (takeKeptDump). */
  opts: {record?: (r: ExecResult) => void; onHostOnly?: boolean; source?: string} = {},
): Promise<LocalOnlyDb> {
  const ctl = tool(h, 'ctl_mboxlist')
  // The document and the db take less than three times the backend's own db.
  // Named for the run and the host: hosts may share a /dev/shm (the lab's do), and a host's sweep
  // of its own leftovers must not reach another's list.
  const dir = await scratchDir(rc, h, `murderctl-localonly-${rc.runId}-${h.name}`, 3 * (await dbBytes(rc, h)))
  const db = `${dir}/mailboxes.db`
  try {
    const doc = `${dir}/local.json`
    const built = await localOnlyDocOnHost(rc.murder, h, doc, `${dir}/name`, step, opts.source)
    let made: Omit<LocalOnlyDb, 'dir' | 'db'>
    let u: ExecResult
    if (built.fallback) {
      if (opts.onHostOnly)
        throw new UnexpectedOutputError(`the host's awk cannot make the local-only list (line ${built.line}: ${built.why})`, {host: h.name, step})
      const here = await localOnlyDocHere(rc, h, step)
      u = await rc.murder.pool.exec(h, [ctl, '-u', '-f', db], {stdin: here.json})
      made = {live: here.live, withoutUniqueid: here.withoutUniqueid, digest: here.sha256, madeOn: 'murderctl', fallback: `line ${built.line}: ${built.why}`}
    } else {
      u = await rc.murder.pool.exec(h, {shell: `${shellQuote(ctl)} -u -f ${shellQuote(db)} < ${shellQuote(doc)}`})
      made = {live: built.live, withoutUniqueid: built.withoutUniqueid, digest: built.sha256, madeOn: 'host', dump: opts.source ? 'kept' : 'read'}
    }
    opts.record?.(u)
    const loaded = (await countEntriesOnHost(rc.murder, h, step, db)).total
    if (u.stderr.trim() || loaded !== made.live)
      throw new UnexpectedOutputError(`could not build the local-only list: loaded ${loaded} of ${made.live} (${u.stderr.trim().split('\n')[0] ?? ''})`, {
        host: h.name,
        step,
        hint: "the journal has ctl_mboxlist -u's message; repair the entry it names (murderctl check lists broken entries), then resume",
      })
    return {dir, db, ...made}
  } catch (error) {
    await removeDir(rc, h, dir)
    throw error
  }
}

const prebuiltKey = (h: Host) => `local-only-db@${h.name}`

interface Prebuilt {
  list: LocalOnlyDb
  /** sha256 of the backend's mailboxes.db it was built from (the same before and after). */
  source: string
}

/**
 * The diff's side job, in a real run: build the list the push will take. Never fails the diff:
 * a list that cannot be built here, or whose source changed while it was built, is left to the
 * push. Kept for the push with the checksum of the mailboxes.db it came from; removed by the
 * engine if the run stops before the push takes it.
 */
export async function prebuildLocalOnlyDb(rc: RunContext, h: Host, step: string): Promise<void> {
  if (rc.dryRun) return
  const source = await dbSumOrNull(rc, h)
  if (!source) return
  // The dump the run's read of this backend's list kept, if the db still has its bytes: no second -d.
  const dump = await takeKeptDump(rc, h, source)
  // A process that keeps no dumps (a resumed run) sweeps any an earlier, killed process of this
  // run kept. One that keeps them does not: a read of this list may be writing its folder now.
  if (!rc.facts.get(KEEP_DUMPS)) await sweepScratch(rc, h, dumpPrefix(rc, h))
  let list: LocalOnlyDb
  try {
    // Only where the host makes it: the fallback reads the whole dump here, which is the push's to do.
    list = await buildLocalOnlyDb(rc, h, step, {onHostOnly: true, record: (r) => rc.journal.command(step, h.name, r), source: dump?.file})
  } catch {
    return
  } finally {
    await dump?.release()
  }
  const forget = () => removeDir(rc, h, list.dir)
  rc.cleanups.set(prebuiltKey(h), forget)
  if ((await dbSumOrNull(rc, h)) !== source) {
    rc.cleanups.delete(prebuiltKey(h))
    return void (await forget())
  }
  rc.facts.set(prebuiltKey(h), {list, source} satisfies Prebuilt)
  try {
    rc.journal.write({event: 'note', step, host: h.name, data: {localOnlyList: list.db, entries: list.live, builtFrom: source}})
  } catch {
    // Only a note: the list is removed at the run's end if the push does not take it.
  }
}

/** The list the diff built, if the backend's mailboxes.db still has the bytes it was built from; else removed, and undefined. */
export async function takePrebuiltLocalOnlyDb(rc: RunContext, h: Host): Promise<LocalOnlyDb | undefined> {
  const p = rc.facts.get(prebuiltKey(h)) as Prebuilt | undefined
  if (!p) return undefined
  rc.facts.delete(prebuiltKey(h))
  rc.cleanups.delete(prebuiltKey(h))
  if ((await dbSumOrNull(rc, h)) === p.source) return p.list
  await removeDir(rc, h, p.list.dir)
  return undefined
}
