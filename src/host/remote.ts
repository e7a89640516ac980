// Cyrus operations on one host, over SSH. Each returns parsed facts or throws a typed error
// naming the host; none of them trusts an exit code alone (Cyrus tools exit 0 on failure).
import type {Host} from '../inventory/schema.js'
import {AbortError, RemoteCommandError} from '../errors.js'
import {mupdateMasterPort, parseImapdConf} from '../cyrus/imapd-conf.js'
import {shellQuote} from '../ssh/quote.js'
import type {MurderContext} from './context.js'

export const tool = (host: Host, name: string) => `${host.cyrus.binDir}/${name}`

/** The line withExit sends a producer's exit status as: `EXIT n`. */
export const EXIT = 'EXIT'

/**
 * Run `producer | consumer` in any POSIX sh (dash has no pipefail): the producer's exit status
 * travels down the pipe as an `EXIT n` line the consumer (an awk script) passes on; its stderr
 * comes after. The line starts after an empty one: a producer whose output ends without a
 * newline (mbexamine's "Examining x..." for a mailbox without index) would else glue the two.
 */
export function withExit(producer: string, consumer: string): string {
  return ['e=$(mktemp) || exit 1', `{ ${producer}; printf '\\n${EXIT} %s\\n' "$?"; } 2>"$e" | ${consumer}`, 'rc=$?; cat "$e" >&2; rm -f "$e"; exit $rc'].join(
    '\n',
  )
}

/** The producer's exit status from an `EXIT n` line; null when the line is missing. */
export function producerExit(out: string): number | null {
  const m = new RegExp(`^${EXIT} (\\d+)$`, 'm').exec(out)
  return m ? Number(m[1]) : null
}

/** The host's imapd.conf, as Cyrus reads it (a bad line is skipped, not fatal); read once per invocation. */
export function readImapdConf(ctx: MurderContext, host: Host): Promise<Map<string, string>> {
  let conf = ctx.imapdConf.get(host.name)
  if (!conf) {
    conf = ctx.pool.readFile(host, host.cyrus.imapdConf).then((b) => parseImapdConf(b.toString('utf8'), {lenient: true}))
    // A failed read (host down) is not remembered: the next attempt asks again.
    conf.catch(() => ctx.imapdConf.delete(host.name))
    ctx.imapdConf.set(host.name, conf)
  }
  return conf
}

/** The pid of cyrus-master from its pidfile, or null when it is not running. */
export async function masterPid(ctx: MurderContext, host: Host): Promise<number | null> {
  const f = shellQuote(host.cyrus.pidFile)
  // A zombie (exited, not yet reaped: some containers' pid 1 never reaps) is not running.
  const r = await ctx.pool.exec(host, {
    shell: `p=$(cat -- ${f} 2>/dev/null) && kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" | cut -c1)" != Z ] && echo "$p"`,
  })
  const pid = Number(r.stdout.trim())
  return r.exitCode === 0 && Number.isInteger(pid) && pid > 0 ? pid : null
}

/**
 * Whether cyrus-master serves: its pid is alive and it holds its listening sockets. A start
 * command returns once the pidfile is written, before the services listen; a backend's
 * ctl_mboxlist run then would find no MUPDATE master.
 */
export async function masterListening(ctx: MurderContext, host: Host): Promise<boolean> {
  const f = shellQuote(host.cyrus.pidFile)
  const r = await ctx.pool.exec(host, {shell: `p=$(cat -- ${f} 2>/dev/null) && kill -0 "$p" 2>/dev/null && ss -Htlnp | grep -q "pid=$p,"`})
  return r.exitCode === 0
}

export async function cyrusVersion(ctx: MurderContext, host: Host): Promise<string | null> {
  const r = await ctx.pool.exec(host, [tool(host, 'cyr_info'), 'version'])
  const m = /^cyrus-imapd (\S+)/m.exec(r.stdout)
  return m ? m[1] : null
}

/** SIGHUP cyrus-master so it rereads cyrus.conf; fails if it is not running. */
export async function hupMaster(ctx: MurderContext, host: Host, step = 'hup'): Promise<number> {
  const pid = await masterPid(ctx, host)
  if (pid === null)
    throw new AbortError(`cyrus-master is not running (no live pid in ${host.cyrus.pidFile})`, {
      host: host.name,
      step,
      hint: `start it (${host.cyrus.start}) and resume`,
    })
  await ctx.pool.execOk(host, ['kill', '-HUP', String(pid)])
  return pid
}

/** Whether cyrus-master has a live child process with this name (e.g. sync_client). */
export async function childRunning(ctx: MurderContext, host: Host, name: string): Promise<boolean> {
  const f = shellQuote(host.cyrus.pidFile)
  const r = await ctx.pool.exec(host, {shell: `p=$(cat -- ${f} 2>/dev/null) && pgrep -P "$p" -x ${shellQuote(name)} >/dev/null`})
  return r.exitCode === 0
}

/**
 * Whether this host's mupdate slave holds an established connection to the master's port:
 * the pid of a `mupdate` child of this host's cyrus-master must own a TCP connection to it.
 * The banner cannot tell: a slave keeps answering with its normal banner while disconnected.
 */
export async function slaveConnected(ctx: MurderContext, host: Host): Promise<boolean> {
  const masterPort = mupdateMasterPort(await readImapdConf(ctx, host))
  const f = shellQuote(host.cyrus.pidFile)
  const script = [
    `p=$(cat -- ${f} 2>/dev/null) || exit 3`,
    `for c in $(pgrep -P "$p" -x mupdate); do`,
    `  ss -Htnp state established '( dport = :${masterPort} )' | grep -q "pid=$c," && { echo connected; exit 0; }`,
    'done',
    'exit 1',
  ].join('\n')
  const r = await ctx.pool.exec(host, {shell: script})
  return r.stdout.trim() === 'connected'
}

export interface SavedCopy {
  host: string
  path: string
  copy: string
  sha256: string
  bytes: number
  /** The original was moved (not copied): it is no longer at `path`. */
  moved?: boolean
}

/** The name a run's step gives its copy of `path`: no later step of any run reuses it. */
export const asideName = (path: string, runId: string, step: string) => `${path}.murderctl-${runId}-${step.replace(/[^A-Za-z0-9._-]+/g, '-')}`

/**
 * Copy a file aside on its own host before anything changes it, and prove the copy: the
 * checksum of the copy must equal the original's. Never replaces a file: when the name is
 * taken by an identical copy (a resumed step that copied before it could journal), that copy
 * is the one; a different file there makes a new name (.2, .3, ...). `cp -n` then checked.
 * The copy is named after `besides` (default: the file itself): a file in memory is copied to disk.
 */
export async function copyAside(ctx: MurderContext, host: Host, path: string, runId: string, step: string, besides = path): Promise<SavedCopy> {
  const q = shellQuote(path)
  const script = [
    `b=${shellQuote(asideName(besides, runId, step))}; c="$b"; n=1`,
    `test -f ${q} || { echo "no file ${path.replace(/[^\w./-]/g, '?')}" >&2; exit 3; }`,
    'while test -e "$c" || test -L "$c"; do',
    `  cmp -s -- ${q} "$c" && break`,
    '  n=$((n+1)); c="$b.$n"',
    'done',
    // A copy cut short (a full disk) is this command's own file: removed, never left half.
    `test -e "$c" || cp -n -p -- ${q} "$c" || { rm -f -- "$c"; exit 1; }`,
    `sha256sum -- ${q} "$c" && stat -c %s -- "$c" && printf '%s\n' "$c"`,
  ].join('\n')
  const r = await ctx.pool.exec(host, {shell: script})
  const lines = r.stdout.trim().split('\n')
  const sums = lines.slice(0, 2).map((l) => l.split(/\s+/)[0])
  const copy = lines[3] ?? ''
  if (r.exitCode !== 0 || sums.length !== 2 || sums[0] !== sums[1] || !/^[0-9a-f]{64}$/.test(sums[0]) || !copy.startsWith(asideName(besides, runId, step)))
    throw new RemoteCommandError(
      `could not copy ${path} aside with a matching checksum${r.stderr.trim() ? `: ${r.stderr.trim().split('\n')[0]}` : ''}`,
      {command: r.command, exitCode: r.exitCode, stderr: r.stderr},
      {host: host.name, step, hint: 'nothing was changed by this step; free space on the host if it is full, then resume'},
    )
  return {host: host.name, path, copy, sha256: sums[0], bytes: Number(lines[2])}
}

/**
 * Move a file aside (it must not stay in place: a step rebuilds it), never over another file:
 * `mv -n`, then the original must be gone and the moved file's checksum equal the original's.
 * A file already moved by this step of this run (resumed before it journaled) is taken as is.
 * Null when there was nothing to move.
 */
export async function moveAside(ctx: MurderContext, host: Host, path: string, runId: string, step: string): Promise<SavedCopy | null> {
  const q = shellQuote(path)
  const a = shellQuote(asideName(path, runId, step))
  const script = [
    `if ! test -e ${q}; then test -e ${a} || exit 3; sha256sum -- ${a}; sha256sum -- ${a}; stat -c %s -- ${a}; exit 0; fi`,
    `test -e ${a} && { echo 'the aside name is taken by another file' >&2; exit 4; }`,
    `sha256sum -- ${q} || exit 1`,
    `mv -n -- ${q} ${a} || exit 1`,
    `test -e ${q} && { echo 'the original is still in place' >&2; exit 5; }`,
    `sha256sum -- ${a} && stat -c %s -- ${a}`,
  ].join('\n')
  const r = await ctx.pool.exec(host, {shell: script})
  if (r.exitCode === 3) return null
  const lines = r.stdout.trim().split('\n')
  const sums = lines.slice(0, 2).map((l) => l.split(/\s+/)[0])
  if (r.exitCode !== 0 || sums.length !== 2 || sums[0] !== sums[1] || !/^[0-9a-f]{64}$/.test(sums[0]))
    throw new RemoteCommandError(
      `could not move ${path} aside with a matching checksum${r.stderr.trim() ? `: ${r.stderr.trim().split('\n')[0]}` : ''}`,
      {command: r.command, exitCode: r.exitCode, stderr: r.stderr},
      {host: host.name, step},
    )
  return {host: host.name, path, copy: asideName(path, runId, step), sha256: sums[0], bytes: Number(lines[2]), moved: true}
}

/** The sha256 of a file on a host, or null when there is none; a failed checksum throws. */
export async function fileSha256(ctx: MurderContext, host: Host, path: string, step?: string): Promise<string | null> {
  const q = shellQuote(path)
  const r = await ctx.pool.exec(host, {shell: `if [ -e ${q} ]; then sha256sum -- ${q}; else echo missing; fi`})
  const out = r.stdout.trim()
  if (out === 'missing') return null
  const sum = out.split(/\s+/)[0]
  if (r.exitCode !== 0 || !/^[0-9a-f]{64}$/.test(sum))
    throw new RemoteCommandError(`cannot checksum ${path}`, {command: r.command, exitCode: r.exitCode, stderr: r.stderr}, {host: host.name, step})
  return sum
}
