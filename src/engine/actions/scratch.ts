// Scratch folders on a host for this run's working files (a local-only mailbox list, a kept
// dump): private, named for the run and the host, on tmpfs when it has room.
import {dbInfo} from '../../host/db.js'
import type {Host} from '../../inventory/schema.js'
import {shellQuote} from '../../ssh/quote.js'
import type {RunContext} from '../context.js'

/** Size of the host's mailboxes.db in bytes (too large for any tmpfs when it cannot be read: then the scratch goes beside the db). */
export async function dbBytes(rc: RunContext, h: Host): Promise<number> {
  const {path} = await dbInfo(rc.murder, h)
  const r = await rc.murder.pool.exec(h, ['stat', '-c', '%s', '--', path])
  return r.exitCode === 0 && /^[0-9]+$/.test(r.stdout.trim()) ? Number(r.stdout.trim()) : Number.MAX_SAFE_INTEGER / 4
}

/**
 * A private folder for a scratch mailbox list, writable by the Cyrus user (ctl_mboxlist runs
 * as the owner of configdirectory). On tmpfs when /dev/shm has room for `bytes` (a container's
 * is often 64 MB): the list is read once by -m, and there ctl_mboxlist -u loads 20,000 entries
 * in 1.4 s instead of 15 s of fsyncs. Else beside the mailboxes.db.
 */
export async function scratchDir(rc: RunContext, h: Host, prefix: string, bytes: number, opts: {sweep?: boolean} = {}): Promise<string> {
  const {configDirectory} = await dbInfo(rc.murder, h)
  const cfg = shellQuote(configDirectory)
  const shm = `[ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')" -gt ${Math.ceil(bytes / 1024)} ] 2>/dev/null && mktemp -d ${shellQuote(`/dev/shm/${prefix}_XXXXXX`)} 2>/dev/null`
  const r = await rc.murder.pool.execOk(h, {
    shell: `${opts.sweep === false ? 'true' : sweepScript(configDirectory, prefix)}; d=$(${shm} || mktemp -d ${shellQuote(`${configDirectory}/${prefix}_XXXXXX`)}) && chown -- "$(stat -c %u:%g -- ${cfg})" "$d" && echo "$d"`,
  })
  return r.stdout.trim()
}

/**
 * An earlier process of this run (killed, or its host cut off mid-push) may have left folders
 * of this prefix: this run's lock makes this process the only one that can be using this run's
 * scratch. `_` is in no host name: the pattern of host b1 cannot match b1.x's folders.
 */
const sweepScript = (configDirectory: string, prefix: string) =>
  `rm -rf -- ${shellQuote(`/dev/shm/${prefix}`)}_* ${shellQuote(`${configDirectory}/${prefix}`)}_* 2>/dev/null`

/** Remove what an earlier process of this run left under this prefix on the host (best effort). */
export async function sweepScratch(rc: RunContext, h: Host, prefix: string): Promise<void> {
  const {configDirectory} = await dbInfo(rc.murder, h)
  await rc.murder.pool.exec(h, {shell: `${sweepScript(configDirectory, prefix)}; true`}).catch(() => undefined)
}

export const removeDir = (rc: RunContext, h: Host, dir: string) =>
  rc.murder.pool.exec(h, ['rm', '-rf', '--', dir]).then(
    () => undefined,
    () => undefined,
  )
