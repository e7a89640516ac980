// A run's journal: one folder per run under the inventory's stateDir, with journal.jsonl
// (one JSON object per event: step, host, command, exit code, output digest, timestamps)
// and whatever files the run wants to keep beside it (diffs, plans, backups).
import {appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {z} from 'zod'
import type {MurderContext} from '../host/context.js'
import {dbInfo} from '../host/db.js'
import {copyAside, type SavedCopy} from '../host/remote.js'
import type {Host} from '../inventory/schema.js'
import {sha256} from '../util/hash.js'

export const JournalEvent = z.object({
  at: z.string(),
  run: z.string(),
  event: z.enum(['run-start', 'step-start', 'step-done', 'step-failed', 'step-skipped', 'command', 'saved-copy', 'note', 'interrupted', 'run-end']),
  step: z.string().optional(),
  host: z.string().optional(),
  command: z.string().optional(),
  exitCode: z.number().nullable().optional(),
  /** sha256 of the command's stdout (the output itself may be large or private). */
  stdoutSha256: z.string().optional(),
  stderr: z.string().optional(),
  durationMs: z.number().optional(),
  data: z.record(z.string(), z.unknown()).optional(),
})
export type JournalEvent = z.infer<typeof JournalEvent>

export function newRunId(kind: string): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  return `${t}-${kind}-${Math.random().toString(36).slice(2, 6)}`
}

export class Journal {
  readonly dir: string
  readonly path: string

  constructor(
    stateDir: string,
    readonly run: string,
  ) {
    this.dir = join(stateDir, 'runs', run)
    this.path = join(this.dir, 'journal.jsonl')
    mkdirSync(this.dir, {recursive: true})
  }

  static open(stateDir: string, run: string): Journal {
    const j = new Journal(stateDir, run)
    if (!existsSync(j.path)) throw new Error(`no journal for run ${run} in ${j.dir}`)
    return j
  }

  write(e: Omit<JournalEvent, 'at' | 'run'>): void {
    const full: JournalEvent = {at: new Date().toISOString(), run: this.run, ...e}
    appendFileSync(this.path, `${JSON.stringify(full)}\n`)
  }

  command(step: string, host: string, r: {command: string; exitCode: number | null; stdout: string; stderr: string; durationMs: number}): void {
    this.write({event: 'command', step, host, command: r.command, exitCode: r.exitCode, stdoutSha256: sha256(r.stdout), stderr: r.stderr.slice(0, 2000), durationMs: r.durationMs})
  }

  /** Record where a file was copied aside, and its checksum. */
  saved(step: string, copy: SavedCopy): SavedCopy {
    this.write({event: 'saved-copy', step, host: copy.host, data: {...copy}})
    return copy
  }

  /** Keep a file in the run folder; returns its path. */
  keep(name: string, content: string): string {
    const p = join(this.dir, name)
    writeFileSync(p, content)
    return p
  }

  events(): JournalEvent[] {
    return readFileSync(this.path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JournalEvent.parse(JSON.parse(l)))
  }
}

/** Nothing lost: a checksummed copy of the host's mailboxes.db beside it, recorded in the journal. */
export async function saveDbAside(ctx: MurderContext, host: Host, journal: Journal, step: string): Promise<SavedCopy> {
  const {path} = await dbInfo(ctx, host)
  return journal.saved(step, await copyAside(ctx, host, path, journal.run, step))
}
