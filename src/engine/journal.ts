// A run's journal: one folder per run under the inventory's stateDir, with journal.jsonl
// (one JSON object per event: step, host, command, exit code, output digest, timestamps)
// and whatever files the run wants to keep beside it (diffs, plans, backups).
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {z} from 'zod'
import type {MurderContext} from '../host/context.js'
import {dbInfo} from '../host/db.js'
import {memoryDbRun} from '../host/memory-db.js'
import {copyAside, type SavedCopy} from '../host/remote.js'
import type {Host} from '../inventory/schema.js'
import {sha256} from '../util/hash.js'
import {appendLineSynced, ensurePrivateDir, writePrivateFile} from '../util/files.js'
import {AbortError, UsageError} from '../errors.js'

export const JournalEvent = z.object({
  at: z.string(),
  run: z.string(),
  event: z.enum([
    'run-start',
    'step-start',
    'step-done',
    'step-failed',
    'step-skipped',
    'command',
    'saved-copy',
    'note',
    'interrupted',
    'run-end',
    'rollback-start',
    'rollback-step',
    'rollback-end',
  ]),
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
  const t = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
  return `${t}-${kind}-${Math.random().toString(36).slice(2, 6).padEnd(4, '0')}`
}

/** What newRunId makes; anything else (a path, `..`) is refused before it names a folder. */
const RUN_ID = /^\d{8}T\d{6}Z-[a-z][a-z0-9-]*-[a-z0-9]{4}$/

export function assertRunId(run: string): string {
  if (!RUN_ID.test(run))
    throw new UsageError(`"${run}" is not a run id`, {hint: 'a run id looks like 20261122T103000Z-recover-master-ab12 (murderctl prints it when a run stops)'})
  return run
}

export const runsDir = (stateDir: string) => join(stateDir, 'runs')

export class Journal {
  readonly dir: string
  readonly path: string
  /** A last line cut short (a crash while writing it): reported, never read as an event. */
  tornLine?: string

  /** A new run's journal: its folder is created, private (0700; files 0600). */
  constructor(
    stateDir: string,
    readonly run: string,
  ) {
    // Never a path: a run names one folder under runs/.
    if (!run || /[/\\]|^\.\.?$/.test(run)) throw new UsageError(`"${run}" is not a run id`)
    this.dir = join(runsDir(stateDir), run)
    this.path = join(this.dir, 'journal.jsonl')
    ensurePrivateDir(stateDir)
    ensurePrivateDir(runsDir(stateDir))
    ensurePrivateDir(this.dir)
  }

  /** An existing run's journal; creates nothing when there is none. */
  static open(stateDir: string, run: string): Journal {
    assertRunId(run)
    const path = join(runsDir(stateDir), run, 'journal.jsonl')
    if (!existsSync(path)) throw new UsageError(`no run ${run} in ${runsDir(stateDir)}`, {hint: `runs are the folders in ${runsDir(stateDir)}`})
    return new Journal(stateDir, run)
  }

  write(e: Omit<JournalEvent, 'at' | 'run'>): void {
    const full: JournalEvent = {at: new Date().toISOString(), run: this.run, ...e}
    appendLineSynced(this.path, JSON.stringify(full))
  }

  command(step: string, host: string, r: {command: string; exitCode: number | null; stdout: string; stderr: string; durationMs: number}): void {
    this.write({
      event: 'command',
      step,
      host,
      command: r.command,
      exitCode: r.exitCode,
      stdoutSha256: sha256(r.stdout),
      stderr: r.stderr.slice(0, 2000),
      durationMs: r.durationMs,
    })
  }

  /** Record where a file was copied aside, and its checksum. */
  saved(step: string, copy: SavedCopy): SavedCopy {
    this.write({event: 'saved-copy', step, host: copy.host, data: {...copy}})
    return copy
  }

  /** Keep a file in the run folder (temp, fsync, rename; 0600); returns its path. */
  keep(name: string, content: string): string {
    return writePrivateFile(join(this.dir, name), content)
  }

  /**
   * The events in order. A torn line (murderctl stopped while appending it: the start of an
   * event, cut short) is left out and kept in `tornLine` for the caller to report; anything
   * else that is not an event means the file was damaged or edited, and the run is not trusted.
   */
  events(): JournalEvent[] {
    const out: JournalEvent[] = []
    this.tornLine = undefined
    readFileSync(this.path, 'utf8')
      .split('\n')
      .forEach((l, i) => {
        if (!l) return
        let parsed: unknown
        try {
          parsed = JSON.parse(l)
        } catch {
          if (l.startsWith('{"at":"')) {
            this.tornLine = l
            return
          }
          throw new AbortError(`${this.path}: line ${i + 1} is not a journal event`, {
            hint: 'the journal was damaged or edited; start a new run (the saved copies it lists stay on the hosts)',
          })
        }
        const e = JournalEvent.safeParse(parsed)
        if (!e.success)
          throw new AbortError(`${this.path}: line ${i + 1} is not a journal event (${e.error.issues[0]?.message})`, {
            hint: 'the journal was damaged or edited; start a new run',
          })
        out.push(e.data)
      })
    return out
  }
}

/** Nothing lost: a checksummed copy of the host's mailboxes.db beside it, recorded in the journal. */
export async function saveDbAside(ctx: MurderContext, host: Host, journal: Journal, step: string): Promise<SavedCopy> {
  const {path, configDirectory} = await dbInfo(ctx, host)
  // A list in memory (a recovery's tmpfs) is copied to disk: the tmpfs goes away at the end of the run.
  const besides = memoryDbRun(path) ? `${configDirectory}/mailboxes.db` : path
  return journal.saved(step, await copyAside(ctx, host, path, journal.run, step, besides))
}
