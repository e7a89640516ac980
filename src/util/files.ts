// Local files on the operator's machine. Replace a file so that a reader (node_exporter's textfile collector, the next `murderctl
// check`) sees either the old content or the new one, never half of it: write `<path>.<pid>.tmp`
// in the same directory (rename is only atomic within one filesystem), fsync it, rename it over
// the target, then fsync the directory so the rename survives a crash.
import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {AbortError} from '../errors.js'

/** The temporary file writeFileAtomic uses for `path` (the textfile collector only reads `*.prom`, so it never sees it). */
export function tempPathFor(path: string): string {
  return `${path}.${process.pid}.tmp`
}

export function writeFileAtomic(path: string, content: string | Uint8Array, opts: {mode?: number} = {}): void {
  const tmp = tempPathFor(path)
  let fd: number | undefined
  try {
    fd = openSync(tmp, 'w', opts.mode ?? 0o644)
    // The mode as asked whatever the umask (a private file must not depend on it).
    if (opts.mode !== undefined) chmodSync(tmp, opts.mode)
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : content
    let off = 0
    while (off < data.length) off += writeSync(fd, data, off, data.length - off)
    fsyncSync(fd)
    closeSync(fd)
    fd = undefined
    renameSync(tmp, path)
  } catch (err) {
    if (fd !== undefined) {
      try {
        closeSync(fd)
      } catch {
        // already failing; the first error is the one to report
      }
    }
    rmSync(tmp, {force: true})
    const reason = err instanceof Error ? err.message : String(err)
    throw new AbortError(`could not write ${path}: ${reason}`, {
      step: 'write-file',
      hint: `check that ${dirname(path)} exists and is writable by this user`,
      cause: err,
    })
  }
  fsyncDir(dirname(path))
}

function fsyncDir(dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch {
    // Some filesystems refuse fsync on a directory; the file itself is already complete.
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

// ---- private files: journals, plans, diffs, backups name mailboxes and users ------------------

/** Mode of every local file naming mailboxes or users, and of the folders holding them. */
export const PRIVATE_FILE = 0o600
export const PRIVATE_DIR = 0o700

/** Pseudo-filesystems where a write may block or mean something else entirely. */
const SPECIAL = ['/proc', '/sys', '/dev']

/** Why `dir` cannot hold murderctl's state, or null when it can (it may not exist yet). */
export function stateDirProblem(dir: string): string | null {
  let real = resolve(dir)
  try {
    real = realpathSync(dir)
  } catch {
    // not there yet: judged by its path and its nearest existing parent
  }
  if (SPECIAL.some((p) => real === p || real.startsWith(`${p}/`)))
    return `${dir} is under ${real.split('/')[1] ? `/${real.split('/')[1]}` : real}, a pseudo-filesystem, not a place for files`
  let probe = real
  for (;;) {
    try {
      const st = statSync(probe)
      if (!st.isDirectory()) return probe === real ? `${dir} is not a directory` : `${probe} (on the way to ${dir}) is not a directory`
      accessSync(probe, constants.W_OK | constants.X_OK)
      return null
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT' && dirname(probe) !== probe) {
        probe = dirname(probe)
        continue
      }
      if (code === 'ENOTDIR') return `${dir} is not a directory (a file is on its path)`
      return `${probe} is not writable (${code ?? (error as Error).message})`
    }
  }
}

/** A folder only this user can read (0700 whatever the umask), created with its parents. */
export function ensurePrivateDir(dir: string): string {
  const problem = stateDirProblem(dir)
  if (problem)
    throw new AbortError(`cannot keep state in ${dir}: ${problem}`, {
      step: 'state',
      hint: 'set stateDir in the inventory to a writable folder (murderctl inventory validate checks it)',
    })
  try {
    mkdirSync(dir, {recursive: true, mode: PRIVATE_DIR})
    chmodSync(dir, PRIVATE_DIR)
  } catch (error) {
    throw new AbortError(`cannot create ${dir}: ${(error as Error).message}`, {
      step: 'state',
      hint: 'set stateDir in the inventory to a writable folder',
      cause: error,
    })
  }
  return dir
}

/** A private file written through temp + fsync + rename. */
export function writePrivateFile(path: string, content: string | Uint8Array): string {
  writeFileAtomic(path, content, {mode: PRIVATE_FILE})
  return path
}

/**
 * Append one line and fsync it before returning: a journal line that was reported written
 * survives a crash. A file left without its final newline (torn by a crash) gets one first,
 * so the torn line stays alone and is ignored by its reader.
 */
export function appendLineSynced(path: string, line: string): void {
  const fd = openSync(path, 'a+', PRIVATE_FILE)
  try {
    const size = fstatSync(fd).size
    let prefix = ''
    if (size > 0) {
      const last = Buffer.alloc(1)
      readSync(fd, last, 0, 1, size - 1)
      if (last[0] !== 0x0a) prefix = '\n'
    } else chmodSync(path, PRIVATE_FILE)
    const data = Buffer.from(`${prefix}${line}\n`, 'utf8')
    let off = 0
    while (off < data.length) off += writeSync(fd, data, off, data.length - off)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
