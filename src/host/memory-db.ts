// The mupdate master's mailboxes.db in memory while a recovery pushes into it: a tmpfs of its
// own (or a folder in /dev/shm), named for the run, so that no insert waits for the disk; then
// the list copied to its real place on disk. The folder's name carries the run id: `check`
// and a resumed run find it from imapd.conf alone.
import {AbortError, RemoteCommandError} from '../errors.js'
import type {Host} from '../inventory/schema.js'
import {shellQuote} from '../ssh/quote.js'
import type {MurderContext} from './context.js'

export const MEMORY_DIR_MARKER = 'murderctl-tmpfs-'

const MiB = 1024 * 1024

/** The folders a run's list may live in: a tmpfs murderctl mounts (root), else a folder in /dev/shm. */
export const memoryDirs = (runId: string) => ({tmpfs: `/run/${MEMORY_DIR_MARKER}${runId}`, shm: `/dev/shm/${MEMORY_DIR_MARKER}${runId}`})

/** The run whose in-memory list this mailboxes.db path names, or null for any other path. */
export function memoryDbRun(path: string | undefined): string | null {
  const m = new RegExp(`/${MEMORY_DIR_MARKER}([A-Za-z0-9-]+)/[^/]+$`).exec(path ?? '')
  return m ? m[1] : null
}

/**
 * Room the list needs: a master's twoskip mailboxes.db holds about 160 bytes an entry (3.6,
 * measured on the lab); three times that for what a push appends before a repack, never under
 * 32 MB. A tmpfs takes memory only as it fills: this is its ceiling.
 */
export const memoryBytesFor = (entries: number) => Math.max(32 * MiB, entries * 512)

/** Memory the host must have free before murderctl puts the list there: the list twice, plus this. */
export const MEMORY_HEADROOM_BYTES = 256 * MiB

export type MemoryPlace = {kind: 'tmpfs' | 'shm'; dir: string; bytes: number} | {kind: 'disk'; reason: string}

/**
 * A folder in memory for `bytes` of mailbox list, owned by the Cyrus user. Free memory first
 * (MemAvailable must hold the list twice over plus 256 MB); then a tmpfs of that size mounted
 * for it, else a folder in /dev/shm when it has room; else the disk, with the reason. One SSH
 * command; a folder this run made already is taken as it is (a resumed step).
 */
export async function prepareMemoryDir(ctx: MurderContext, host: Host, runId: string, bytes: number): Promise<MemoryPlace> {
  const {tmpfs, shm} = memoryDirs(runId)
  const kb = Math.ceil(bytes / 1024)
  const owner = `${shellQuote(host.cyrus.user)}:${shellQuote(host.cyrus.group)}`
  const script = [
    `t=${shellQuote(tmpfs)}; s=${shellQuote(shm)}`,
    'if mountpoint -q "$t" 2>/dev/null; then echo "tmpfs $t"; exit 0; fi',
    'if [ -d "$s" ]; then echo "shm $s"; exit 0; fi',
    `avail=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null)`,
    'case "$avail" in ""|*[!0-9]*) echo "nomem unknown"; exit 0;; esac',
    `if [ "$avail" -lt ${2 * kb + MEMORY_HEADROOM_BYTES / 1024} ]; then echo "nomem $avail"; exit 0; fi`,
    `u=$(id -u -- ${shellQuote(host.cyrus.user)}) && g=$(getent group ${shellQuote(host.cyrus.group)} | cut -d: -f3) || { echo "nouser"; exit 0; }`,
    `if mkdir -p -- "$t" && err=$(mount -t tmpfs -o "size=${kb}k,mode=0750,uid=$u,gid=$g" murderctl-tmpfs "$t" 2>&1); then echo "tmpfs $t"; exit 0; fi`,
    'rmdir -- "$t" 2>/dev/null',
    `free=$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')`,
    `if [ "\${free:-0}" -gt ${kb} ] 2>/dev/null && mkdir -m 0750 -- "$s" && chown -- ${owner} "$s"; then echo "shm $s"; exit 0; fi`,
    'echo "nomount ${free:-0} $err"',
  ].join('\n')
  const r = await ctx.pool.exec(host, {shell: script})
  const [word, ...rest] = r.stdout.trim().split(' ')
  const mb = (k: string) => `${Math.round(Number(k) / 1024)} MB`
  if (r.exitCode !== 0)
    throw new RemoteCommandError(
      `cannot prepare a folder in memory for the mailbox list`,
      {command: r.command, exitCode: r.exitCode, stderr: r.stderr},
      {host: host.name},
    )
  if (word === 'tmpfs' || word === 'shm') return {kind: word, dir: rest.join(' '), bytes}
  const need = `${Math.round((2 * bytes + MEMORY_HEADROOM_BYTES) / MiB)} MB`
  if (word === 'nomem')
    return {
      kind: 'disk',
      reason:
        rest[0] === 'unknown' ? 'cannot read MemAvailable in /proc/meminfo' : `${mb(rest[0])} of memory available, ${need} wanted for a list of this size`,
    }
  if (word === 'nouser') return {kind: 'disk', reason: `no user ${host.cyrus.user} or group ${host.cyrus.group} to own a tmpfs`}
  return {kind: 'disk', reason: `no tmpfs could be mounted (${rest.slice(1).join(' ') || 'mount failed'}) and /dev/shm has ${mb(rest[0] ?? '0')} free`}
}

/** Unmount and remove this run's folders in memory (nothing left there is needed any more). */
export async function releaseMemoryDir(ctx: MurderContext, host: Host, runId: string, step: string): Promise<void> {
  const {tmpfs, shm} = memoryDirs(runId)
  const script = [
    `t=${shellQuote(tmpfs)}; s=${shellQuote(shm)}`,
    'if mountpoint -q "$t" 2>/dev/null; then umount -- "$t" || exit 1; fi',
    'if [ -d "$t" ]; then rmdir -- "$t" || exit 1; fi',
    'if [ -d "$s" ]; then rm -rf -- "$s" || exit 1; fi',
  ].join('\n')
  const r = await ctx.pool.exec(host, {shell: script})
  if (r.exitCode !== 0)
    throw new RemoteCommandError(
      `cannot remove the in-memory folder ${tmpfs}: ${r.stderr.trim().split('\n')[0] ?? ''}`,
      {command: r.command, exitCode: r.exitCode, stderr: r.stderr},
      {host: host.name, step, hint: 'is a process still holding it? (lsof +D); then resume'},
    )
}

/** Whether any of this run's folders in memory is still there. */
export async function memoryDirLeft(ctx: MurderContext, host: Host, runId: string): Promise<string | null> {
  const {tmpfs, shm} = memoryDirs(runId)
  const r = await ctx.pool.exec(host, {shell: `for d in ${shellQuote(tmpfs)} ${shellQuote(shm)}; do [ -e "$d" ] && echo "$d"; done; true`})
  return r.stdout.trim().split('\n')[0] || null
}

export type InstallOutcome = {installed: true; sha256: string; bytes: number} | {installed: false; reason: 'no-source' | 'occupied'}

/**
 * Copy the list from memory to its real place on the stopped master: beside it first
 * (`.murderctl-incoming-<tag>`), owner and group of the Cyrus user, mode 0600, fsync'd, the
 * same sha256 as the source; then `mv -n` into the empty place and the folder fsync'd. A place
 * already holding this very list (a resumed step) counts as done; one holding anything else is
 * left alone ('occupied': the caller moves it aside first).
 */
export async function installFromMemory(ctx: MurderContext, host: Host, src: string, dest: string, tag: string, step: string): Promise<InstallOutcome> {
  const incoming = `${dest}.murderctl-incoming-${tag}`
  const dir = dest.replace(/\/[^/]*$/, '') || '/'
  const script = [
    `src=${shellQuote(src)}; dest=${shellQuote(dest)}; inc=${shellQuote(incoming)}`,
    'test -f "$src" || { echo no-source; exit 0; }',
    'if test -e "$dest"; then cmp -s -- "$src" "$dest" && { sha256sum -- "$dest"; stat -c %s -- "$dest"; exit 0; }; echo occupied; exit 0; fi',
    'rm -f -- "$inc"',
    `cp -- "$src" "$inc" && chown -- ${shellQuote(host.cyrus.user)}:${shellQuote(host.cyrus.group)} "$inc" && chmod 0600 -- "$inc" && sync -- "$inc" || { rm -f -- "$inc"; exit 1; }`,
    'a=$(sha256sum -- "$src" | cut -d" " -f1); b=$(sha256sum -- "$inc" | cut -d" " -f1)',
    '[ "$a" = "$b" ] || { rm -f -- "$inc"; echo "the copy differs from the list in memory" >&2; exit 1; }',
    'mv -n -- "$inc" "$dest" && test ! -e "$inc" || exit 1',
    `sync -- ${shellQuote(dir)}`,
    'sha256sum -- "$dest"; stat -c %s -- "$dest"',
  ].join('\n')
  const r = await ctx.pool.exec(host, {shell: script})
  const out = r.stdout.trim()
  if (r.exitCode === 0 && out === 'no-source') return {installed: false, reason: 'no-source'}
  if (r.exitCode === 0 && out === 'occupied') return {installed: false, reason: 'occupied'}
  const [sumLine, size] = out.split('\n')
  const sum = sumLine?.split(/\s+/)[0] ?? ''
  if (r.exitCode !== 0 || !/^[0-9a-f]{64}$/.test(sum))
    throw new RemoteCommandError(
      `could not copy the mailbox list from ${src} to ${dest}: ${r.stderr.trim().split('\n')[0] ?? `exit ${r.exitCode}`}`,
      {command: r.command, exitCode: r.exitCode, stderr: r.stderr},
      {host: host.name, step, hint: 'the list is still in memory and imapd.conf still points at it: free space on the disk, then resume'},
    )
  return {installed: true, sha256: sum, bytes: Number(size)}
}

/** Refuses a list in memory that belongs to another run: that run's resume puts it back. */
export function otherRunsMemoryDb(host: Host, path: string, run: string, step: string): AbortError {
  return new AbortError(`${host.cyrus.imapdConf} points mailboxes.db at ${path}, the in-memory list of run ${run}`, {
    host: host.name,
    step,
    hint: `finish that run first: murderctl recover-master --resume ${run} (its journal names the copy of imapd.conf to restore by hand)`,
  })
}
