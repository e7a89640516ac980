// The master's list rebuilt in memory. Before the push, the stopped master's mailboxes.db is
// pointed at a tmpfs by a temporary mboxlist_db_path in its imapd.conf (the file copied aside
// first); after the push, the master is stopped, the db copied to its real place (fsync, Cyrus
// user, mode 0600), the key taken out again and the master started. The same Cyrus push
// through MUPDATE, without waiting for the disk on every entry (about 5x faster on the lab).
import {z} from 'zod'
import {parseImapdConf, setImapdOption, undoImapdOption} from '../../cyrus/imapd-conf.js'
import {AbortError} from '../../errors.js'
import {dbInfo} from '../../host/db.js'
import {
  installFromMemory,
  memoryBytesFor,
  memoryDbRun,
  memoryDirLeft,
  memoryDirs,
  otherRunsMemoryDb,
  prepareMemoryDir,
  releaseMemoryDir,
} from '../../host/memory-db.js'
import {countEntriesOnHost} from '../../host/mboxlist.js'
import {copyAside, moveAside, type SavedCopy} from '../../host/remote.js'
import {hostsByRole} from '../../inventory/load.js'
import type {Host} from '../../inventory/schema.js'
import {sha256} from '../../util/hash.js'
import {mapLimit} from '../../util/limit.js'
import {checkCondition} from '../conditions.js'
import type {RunContext} from '../context.js'
import type {Step} from '../schema.js'
import {runServiceCommand} from './cyrus-master.js'
import type {BeforeFigures} from './master-rebuild.js'
import {defineAction, need} from './types.js'

/** The imapd.conf key that moves the list (Cyrus reads mailboxes.db there instead of configdirectory). */
export const DB_PATH_KEY = 'mboxlist_db_path'

/** What the journal keeps of the edit, written before imapd.conf changes: a resume puts it back from this. */
const MemoryNote = z.object({
  dbPath: z.string(),
  kind: z.enum(['tmpfs', 'shm']),
  /** The key's value before (null: the file had none, the list lived in configdirectory). */
  original: z.string().nullable(),
  /** The copy of imapd.conf made before the edit, and its sha256. */
  confCopy: z.string(),
  confSha256: z.string(),
})
type MemoryNote = z.infer<typeof MemoryNote>

/** --no-tmpfs (recover-master's option `tmpfs: false`) keeps the list on disk. */
const wantsMemory = (rc: RunContext) => rc.options.tmpfs !== false

async function readConf(rc: RunContext, h: Host): Promise<{text: string; value: string | undefined}> {
  // Read afresh (this step changes it), and the invocation's cached copy is dropped.
  rc.murder.imapdConf.delete(h.name)
  const text = (await rc.murder.pool.readFile(h, h.cyrus.imapdConf)).toString('utf8')
  return {text, value: parseImapdConf(text, {lenient: true}).get(DB_PATH_KEY)}
}

/**
 * Replace imapd.conf: copied aside first (journaled), `journal(copy)` told before the file
 * changes, then Cyrus must read `expect` from it and no key twice.
 */
async function writeConf(rc: RunContext, step: Step, h: Host, text: string, expect: string | undefined, journal: (saved: SavedCopy) => void) {
  const saved = rc.journal.saved(step.id, await copyAside(rc.murder, h, h.cyrus.imapdConf, rc.runId, step.id))
  journal(saved)
  await rc.murder.pool.writeFileAtomic(h, h.cyrus.imapdConf, Buffer.from(text))
  const now = await readConf(rc, h)
  // Not lenient: a file Cyrus would refuse (a key twice: fatal in 3.6) fails here.
  parseImapdConf(now.text)
  if (now.value !== expect)
    throw new AbortError(`${h.cyrus.imapdConf} reads ${DB_PATH_KEY}: ${now.value ?? '(none)'} after the edit, not ${expect ?? '(none)'}`, {
      host: h.name,
      step: step.id,
      hint: `the file before the edit is ${saved.copy}`,
    })
}

/** How many entries the master will hold: the preflight's figure, else counted on the backends. */
async function expectedEntries(rc: RunContext, step: Step): Promise<number> {
  const before = rc.facts.get('before') as BeforeFigures | undefined
  if (before) return before.unionLocal
  const counts = await mapLimit(
    hostsByRole(rc.murder.inv, 'backend'),
    rc.murder.concurrency,
    async (b) => (await countEntriesOnHost(rc.murder, b, step.id)).total,
  )
  return counts.reduce((a, b) => a + b, 0)
}

/** The note the to-memory step of this run wrote for this host, the latest one. */
function memoryNote(rc: RunContext, h: Host): MemoryNote | undefined {
  const e = rc.journal.events().findLast((x) => x.event === 'note' && x.host === h.name && x.data?.memoryDb)
  return e ? MemoryNote.parse(e.data!.memoryDb) : undefined
}

async function toMemory(rc: RunContext, step: Step, h: Host) {
  if (!wantsMemory(rc)) return {where: 'disk', reason: '--no-tmpfs'}
  const conf = await readConf(rc, h)
  const run = memoryDbRun(conf.value)
  if (run && run !== rc.runId) throw otherRunsMemoryDb(h, conf.value!, run, step.id)
  const entries = await expectedEntries(rc, step)
  const place = await prepareMemoryDir(rc.murder, h, rc.runId, memoryBytesFor(entries))
  if (place.kind === 'disk') {
    // Resumed after the edit, and the memory is short now: the key comes out again.
    if (run) await backToDisk(rc, step, h, {listExpected: false})
    rc.murder.log(`${h.name}: ${place.reason}: the master's list is rebuilt on its disk (slower)`)
    rc.journal.write({event: 'note', step: step.id, host: h.name, data: {memoryDb: null, reason: place.reason}})
    return {where: 'disk', reason: place.reason, entries}
  }
  const dbPath = `${place.dir}/mailboxes.db`
  if (conf.value !== dbPath) {
    // A resumed step may find the key set already: the original is what the first edit noted.
    const earlier = run ? memoryNote(rc, h) : undefined
    await writeConf(rc, step, h, setImapdOption(conf.text, DB_PATH_KEY, dbPath), dbPath, (saved) => {
      const note: MemoryNote = earlier
        ? {...earlier, dbPath, kind: place.kind}
        : {dbPath, kind: place.kind, original: conf.value ?? null, confCopy: saved.copy, confSha256: saved.sha256}
      // Journaled before the file changes: whatever stops the run after this, a resume knows the original.
      rc.journal.write({event: 'note', step: step.id, host: h.name, data: {memoryDb: note, edit: {key: DB_PATH_KEY, from: conf.value ?? null, to: dbPath}}})
    })
  }
  return {where: place.kind, dir: place.dir, dbPath, entries, sizeMB: Math.round(place.bytes / 1024 / 1024)}
}

/**
 * Stop the master, install the list from memory on disk, take the key out, let the memory go;
 * idempotent, so a resumed step (or an undo) finishes whatever part was not done.
 */
async function backToDisk(rc: RunContext, step: Step, h: Host, opts: {listExpected: boolean}) {
  const conf = await readConf(rc, h)
  const run = memoryDbRun(conf.value)
  if (run && run !== rc.runId) throw otherRunsMemoryDb(h, conf.value!, run, step.id)
  const figures: Record<string, unknown> = {}
  if (run) {
    const note = memoryNote(rc, h)
    if (!note)
      throw new AbortError(`${h.cyrus.imapdConf} points mailboxes.db at ${conf.value}, but this run's journal does not say what it was before`, {
        host: h.name,
        step: step.id,
        hint: `restore ${h.cyrus.imapdConf} from the copy aside this run's journal names (saved-copy), then resume`,
      })
    await runServiceCommand(rc, step, h, 'stop')
    const stopped = await checkCondition(rc, 'cyrus-stopped', h, {settle: true})
    if (!stopped.ok) throw new AbortError(`the master did not stop: ${stopped.detail}`, {host: h.name, step: step.id})
    const {configDirectory} = await dbInfo(rc.murder, h)
    const dest = note.original ?? `${configDirectory}/mailboxes.db`
    let placed = await installFromMemory(rc.murder, h, conf.value!, dest, rc.runId, step.id)
    if (!placed.installed && placed.reason === 'occupied') {
      // Something is in the real place (the master started without the key meanwhile?): kept aside, never overwritten.
      const moved = await moveAside(rc.murder, h, dest, rc.runId, step.id)
      if (moved && !rc.journal.events().some((e) => e.event === 'saved-copy' && e.host === h.name && e.data?.copy === moved.copy))
        rc.journal.saved(step.id, moved)
      placed = await installFromMemory(rc.murder, h, conf.value!, dest, rc.runId, step.id)
    }
    if (placed.installed) Object.assign(figures, {installed: dest, sha256: placed.sha256, bytes: placed.bytes})
    else if (placed.reason === 'occupied') throw new AbortError(`${dest} is occupied`, {host: h.name, step: step.id, hint: `move ${dest} aside, then resume`})
    // The master never ran on it (stopped before start-master): nothing to keep.
    else if (!opts.listExpected || (await memoryDirLeft(rc.murder, h, rc.runId))) figures.installed = null
    else
      throw new AbortError(`the list in memory (${conf.value}) is gone: was the host restarted?`, {
        host: h.name,
        step: step.id,
        hint: `restore ${h.cyrus.imapdConf} from ${note.confCopy}, then rebuild with a new run: murderctl recover-master --source backends --force`,
      })
    // The original bytes come from the copy aside, proven by its checksum.
    const original = await rc.murder.pool.readFile(h, note.confCopy)
    if (sha256(original) !== note.confSha256)
      throw new AbortError(`the copy of imapd.conf ${note.confCopy} changed since it was made`, {
        host: h.name,
        step: step.id,
        hint: `take ${DB_PATH_KEY} out of ${h.cyrus.imapdConf} by hand (it was ${note.original ?? 'not set'}), then resume`,
      })
    const restored = undoImapdOption(conf.text, original.toString('utf8'), DB_PATH_KEY, conf.value!)
    await writeConf(rc, step, h, restored, note.original ?? undefined, () =>
      rc.journal.write({event: 'note', step: step.id, host: h.name, data: {edit: {key: DB_PATH_KEY, from: conf.value, to: note.original}}}),
    )
  } else if (await memoryDirLeft(rc.murder, h, rc.runId)) {
    // The key is out already (a run stopped between the edit and the release, or imapd.conf put
    // back by hand) but a master may still hold the list in memory open: stopped before the
    // memory is let go (toDisk starts it again).
    await runServiceCommand(rc, step, h, 'stop')
    const stopped = await checkCondition(rc, 'cyrus-stopped', h, {settle: true})
    if (!stopped.ok) throw new AbortError(`the master did not stop: ${stopped.detail}`, {host: h.name, step: step.id})
  }
  // Only now, with the list proven on disk, is the copy in memory let go.
  await releaseMemoryDir(rc.murder, h, rc.runId, step.id)
  return figures
}

async function toDisk(rc: RunContext, step: Step, h: Host) {
  const figures = await backToDisk(rc, step, h, {listExpected: true})
  await runServiceCommand(rc, step, h, 'start')
  return figures
}

export const masterDbToMemory = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  describe: (rc) =>
    wantsMemory(rc)
      ? `if memory allows: mount a tmpfs at ${memoryDirs(rc.runId).tmpfs} (else a folder in /dev/shm; else stay on disk and say so), copy imapd.conf aside, set ${DB_PATH_KEY} to the mailboxes.db there`
      : "nothing: --no-tmpfs (the push writes the list on the master's disk)",
  run: (rc, s, _p, h) => toMemory(rc, s, need(h, s)),
})

export const masterDbToDisk = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  describe: (rc) =>
    wantsMemory(rc)
      ? `stop cyrus-master; copy the list from memory to its real place (cyrus, 0600, fsync, sha256 checked); copy imapd.conf aside and take ${DB_PATH_KEY} out; unmount; start cyrus-master`
      : 'nothing: --no-tmpfs',
  run: (rc, s, _p, h) => toDisk(rc, s, need(h, s)),
})

/**
 * The undo of master-db-to-memory: the master stopped, whatever list is in memory installed in
 * its real place (a rollback then keeps it aside as it puts the original back), imapd.conf as
 * before, the memory let go. Not started: the restores after it start the master on the
 * original list. A list in memory that is gone (a reboot) does not stop a rollback.
 */
export const masterDbOutOfMemory = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  restoresOwnFiles: true,
  describe: () => `stop cyrus-master; the list in memory (if any) to the real place; ${DB_PATH_KEY} out of imapd.conf; unmount`,
  run: (rc, s, _p, h) => backToDisk(rc, s, need(h, s), {listExpected: false}),
})
