// What a post-mortem report is made of: a run's journal read tolerantly (any command's, any
// future event or field), the diffs and plans kept beside it, and whether each copy the run
// saved still exists now with its checksum (over SSH; skipped offline). Read-only.
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {basename, isAbsolute, join} from 'node:path'
import {z} from 'zod'
import {asMurderctlError, InventoryError} from '../errors.js'
import {JournalEvent} from '../engine/journal.js'
import type {MurderContext} from '../host/context.js'
import {fileSha256} from '../host/remote.js'
import type {Inventory} from '../inventory/schema.js'
import {mapLimit} from '../util/limit.js'

/** A journal line as any version of any command may write it: unknown events and fields kept. */
export const LooseEvent = JournalEvent.extend({event: z.string()}).loose()
export type LooseEvent = z.infer<typeof LooseEvent>

/** A file kept in the run folder that describes changes (diff-<step>.json, a sync plan). */
export const KeptDiff = z.object({file: z.string(), step: z.string().optional(), content: z.unknown()})
export type KeptDiff = z.infer<typeof KeptDiff>

export const CopyCheck = z.object({
  host: z.string(),
  copy: z.string(),
  /** The checksum the journal recorded. */
  sha256: z.string().optional(),
  /** present: there with the recorded sha256; changed: there, another sha256; missing; unchecked. */
  state: z.enum(['present', 'changed', 'missing', 'unchecked']),
  sha256Now: z.string().optional(),
  reason: z.string().optional(),
})
export type CopyCheck = z.infer<typeof CopyCheck>

export const GatheredRun = z.object({
  run: z.string(),
  dir: z.string(),
  inventory: z.object({name: z.string(), mode: z.string(), path: z.string()}).optional(),
  events: z.array(LooseEvent),
  /** Lines that were not JSON or not events: counted, never fatal. */
  unreadableLines: z.number(),
  diffs: z.array(KeptDiff),
  copies: z.array(CopyCheck),
  checkedAt: z.string(),
  offline: z.boolean(),
})
export type GatheredRun = z.infer<typeof GatheredRun>

export const runsDir = (stateDir: string) => join(stateDir, 'runs')

export function readEvents(path: string): {events: LooseEvent[]; unreadable: number} {
  const events: LooseEvent[] = []
  let unreadable = 0
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue
    try {
      const p = LooseEvent.safeParse(JSON.parse(line))
      if (p.success) events.push(p.data)
      else unreadable++
    } catch {
      // A line cut short by a crash mid-write: the rest of the journal still counts.
      unreadable++
    }
  }
  return {events, unreadable}
}

/** Runs newest first (run ids begin with their UTC start time). */
export function runIds(stateDir: string): string[] {
  const dir = runsDir(stateDir)
  if (!existsSync(dir)) return []
  return readdirSync(dir, {withFileTypes: true})
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'journal.jsonl')))
    .map((e) => e.name)
    .sort()
    .reverse()
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    return undefined
  }
}

/** diff-<step>.json files, and any plan file the run-start names (sync-backends keeps one). */
export function keptDiffs(dir: string, events: LooseEvent[]): KeptDiff[] {
  const out: KeptDiff[] = []
  for (const f of readdirSync(dir).sort()) {
    const m = /^diff-(.+)\.json$/.exec(f)
    if (m) out.push({file: join(dir, f), step: m[1], content: readJson(join(dir, f))})
  }
  const plan = events.find((e) => e.event === 'run-start')?.data?.plan
  if (typeof plan === 'string' && plan) {
    // A run folder copied elsewhere (an archive, a test fixture) still has its plan beside it.
    const p = [isAbsolute(plan) ? plan : join(dir, plan), join(dir, basename(plan))].find((x) => existsSync(x))
    const content = p ? readJson(p) : undefined
    if (p && content !== undefined && !out.some((d) => d.file === p)) out.push({file: p, content})
  }
  return out
}

export function openRun(stateDir: string, run: string): {dir: string; events: LooseEvent[]; unreadable: number} {
  // A run id is a folder name: refuse paths so a report never reads outside the state dir.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(run)) throw new InventoryError(`"${run}" is not a run id`, {hint: 'murderctl report --list shows the runs'})
  const dir = join(runsDir(stateDir), run)
  const path = join(dir, 'journal.jsonl')
  if (!existsSync(path)) throw new InventoryError(`no journal for run ${run} in ${runsDir(stateDir)}`, {hint: 'murderctl report --list shows the runs'})
  return {dir, ...readEvents(path)}
}

/** The copies a run saved, as its saved-copy events record them (host and copy path at least). */
export function savedCopies(events: LooseEvent[]): {host: string; copy: string; sha256?: string}[] {
  const seen = new Set<string>()
  const out: {host: string; copy: string; sha256?: string}[] = []
  for (const e of events) {
    if (e.event !== 'saved-copy') continue
    const d = e.data ?? {}
    const host = typeof d.host === 'string' ? d.host : e.host
    const copy = typeof d.copy === 'string' ? d.copy : undefined
    // Two records of one copy path with different checksums mean a later step overwrote an
    // earlier copy: both are kept, so the check below shows one of them changed.
    const key = `${host}:${copy}:${String(d.sha256)}`
    if (!host || !copy || seen.has(key)) continue
    seen.add(key)
    out.push({host, copy, sha256: typeof d.sha256 === 'string' ? d.sha256 : undefined})
  }
  return out
}

/** Is each saved copy still on its host with its checksum? One sha256sum per copy, over SSH. */
export async function checkCopies(ctx: MurderContext, copies: {host: string; copy: string; sha256?: string}[]): Promise<CopyCheck[]> {
  return mapLimit(copies, ctx.concurrency, async (c): Promise<CopyCheck> => {
    const host = ctx.inv.hosts.find((h) => h.name === c.host)
    if (!host) return {...c, state: 'unchecked', reason: 'host not in this inventory'}
    try {
      const sum = await fileSha256(ctx, host, c.copy)
      if (sum === null) return {...c, state: 'missing'}
      return {...c, state: c.sha256 && sum !== c.sha256 ? 'changed' : 'present', sha256Now: sum}
    } catch (error) {
      return {...c, state: 'unchecked', reason: asMurderctlError(error).oneLine()}
    }
  })
}

/** Everything the report shows about one run; with ctx, the copies are checked on their hosts. */
export async function gatherRun(inv: Inventory, run: string, ctx: MurderContext | undefined): Promise<GatheredRun> {
  const {dir, events, unreadable} = openRun(inv.stateDir, run)
  const copies = savedCopies(events)
  return {
    run,
    dir,
    inventory: {name: inv.name, mode: inv.mode, path: inv.path},
    events,
    unreadableLines: unreadable,
    diffs: keptDiffs(dir, events),
    copies: ctx ? await checkCopies(ctx, copies) : copies.map((c) => ({...c, state: 'unchecked' as const, reason: 'offline'})),
    checkedAt: new Date().toISOString(),
    offline: !ctx,
  }
}

/** The newest runs' journals and diffs, for a one-line-each list (no SSH). */
export function recentRuns(stateDir: string, limit: number): Pick<GatheredRun, 'run' | 'events' | 'diffs'>[] {
  return runIds(stateDir)
    .slice(0, limit)
    .map((run) => {
      const {dir, events} = openRun(stateDir, run)
      return {run, events, diffs: keptDiffs(dir, events)}
    })
}
