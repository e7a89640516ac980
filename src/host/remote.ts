// Cyrus operations on one host, over SSH. Each returns parsed facts or throws a typed error
// naming the host; none of them trusts an exit code alone (Cyrus tools exit 0 on failure).
import type {Host} from '../inventory/schema.js'
import {AbortError, RemoteCommandError} from '../errors.js'
import {mupdateMasterPort, parseImapdConf} from '../cyrus/imapd-conf.js'
import {shellQuote} from '../ssh/quote.js'
import type {MurderContext} from './context.js'

export const tool = (host: Host, name: string) => `${host.cyrus.binDir}/${name}`

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
  const r = await ctx.pool.exec(host, {shell: `p=$(cat ${f} 2>/dev/null) && kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" | cut -c1)" != Z ] && echo "$p"`})
  const pid = Number(r.stdout.trim())
  return r.exitCode === 0 && Number.isInteger(pid) && pid > 0 ? pid : null
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
    throw new AbortError(`cyrus-master is not running (no live pid in ${host.cyrus.pidFile})`, {host: host.name, step, hint: `start it (${host.cyrus.start}) and resume`})
  await ctx.pool.execOk(host, ['kill', '-HUP', String(pid)])
  return pid
}

/** Whether cyrus-master has a live child process with this name (e.g. sync_client). */
export async function childRunning(ctx: MurderContext, host: Host, name: string): Promise<boolean> {
  const f = shellQuote(host.cyrus.pidFile)
  const r = await ctx.pool.exec(host, {shell: `p=$(cat ${f} 2>/dev/null) && pgrep -P "$p" -x ${shellQuote(name)} >/dev/null`})
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
    `p=$(cat ${f} 2>/dev/null) || exit 3`,
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
}

/**
 * Copy a file aside on its own host before anything changes it, and prove the copy:
 * the checksum of the copy must equal the original's.
 */
export async function copyAside(ctx: MurderContext, host: Host, path: string, runId: string, step: string): Promise<SavedCopy> {
  const copy = `${path}.murderctl-${runId}`
  const q = shellQuote(path)
  const c = shellQuote(copy)
  const r = await ctx.pool.exec(host, {
    shell: `cp -p -- ${q} ${c} && sha256sum -- ${q} ${c} && stat -c %s -- ${c}`,
  })
  const lines = r.stdout.trim().split('\n')
  const sums = lines.slice(0, 2).map((l) => l.split(/\s+/)[0])
  if (r.exitCode !== 0 || sums.length !== 2 || sums[0] !== sums[1] || !/^[0-9a-f]{64}$/.test(sums[0]))
    throw new RemoteCommandError(`could not copy ${path} aside with a matching checksum`, {command: r.command, exitCode: r.exitCode, stderr: r.stderr}, {host: host.name, step})
  return {host: host.name, path, copy, sha256: sums[0], bytes: Number(lines[2])}
}
