// Replace a file so that a reader (node_exporter's textfile collector, the next `murderctl
// check`) sees either the old content or the new one, never half of it: write `<path>.<pid>.tmp`
// in the same directory (rename is only atomic within one filesystem), fsync it, rename it over
// the target, then fsync the directory so the rename survives a crash.
import {closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync} from 'node:fs'
import {dirname} from 'node:path'
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
