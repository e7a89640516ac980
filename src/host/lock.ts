// One run at a time on a murder: a folder on the mupdate master (mkdir is atomic), holding the
// owner's run id and who runs it (operator host, pid, start time). recover-master and
// sync-backends take it; status and check report it. A held lock is never taken over: a
// stale one is shown with how to break it (--break-lock, confirmed).
import {hostname} from 'node:os'
import {z} from 'zod'
import {RefusedError} from '../errors.js'
import type {Host} from '../inventory/schema.js'
import {shellQuote} from '../ssh/quote.js'
import type {MurderContext} from './context.js'
import {dbInfo} from './db.js'

export const LockOwner = z.object({
  run: z.string(),
  /** The operator's machine and the murderctl process holding the run. */
  host: z.string(),
  pid: z.number().int(),
  startedAt: z.string(),
  command: z.string(),
})
export type LockOwner = z.infer<typeof LockOwner>

export const lockDir = async (ctx: MurderContext, host: Host) => `${(await dbInfo(ctx, host)).configDirectory}/murderctl-recovery.lock`

export function ownerHere(run: string, command: string): LockOwner {
  return {run, host: hostname(), pid: process.pid, startedAt: new Date().toISOString(), command}
}

/**
 * Whether the owning process still runs: known only on the machine it runs on. Elsewhere
 * (another operator's machine) it counts as live: never taken over on a guess.
 */
export function ownerAlive(o: Pick<LockOwner, 'host' | 'pid'>): boolean | 'unknown' {
  if (o.host !== hostname()) return 'unknown'
  if (o.pid === process.pid) return true
  try {
    process.kill(o.pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export interface HeldLock {
  dir: string
  /** The owner's run id (`run` file), '' when unreadable. */
  run: string
  owner?: LockOwner
  /** Seconds since the lock folder was made (its mtime on the host). */
  ageSeconds: number | null
}

/** The lock as it is on the master, or null when free. */
export async function readLock(ctx: MurderContext, host: Host): Promise<HeldLock | null> {
  const dir = await lockDir(ctx, host)
  const d = shellQuote(dir)
  const r = await ctx.pool.exec(host, {
    shell: `test -d ${d} || exit 3; echo $(( $(date +%s) - $(stat -c %Y -- ${d}) )); cat -- ${d}/run 2>/dev/null; echo; cat -- ${d}/owner 2>/dev/null`,
  })
  if (r.exitCode === 3) return null
  const [age, run, ...rest] = r.stdout.split('\n')
  let owner: LockOwner | undefined
  try {
    owner = LockOwner.parse(JSON.parse(rest.join('\n')))
  } catch {
    owner = undefined
  }
  return {dir, run: (run ?? '').trim(), owner, ageSeconds: /^\d+$/.test(age ?? '') ? Number(age) : null}
}

/** "run R (recover-master, pid P on H since T)" */
export function describeLock(l: HeldLock): string {
  const o = l.owner
  return `run ${l.run || 'unknown'}${o ? ` (${o.command}, pid ${o.pid} on ${o.host} since ${o.startedAt})` : ''}`
}

/** What the operator can do about a lock someone else holds. */
export function lockHint(l: HeldLock, inventoryPath: string): string {
  const alive = l.owner ? ownerAlive(l.owner) : 'unknown'
  if (alive === true) return `that run is still going (pid ${l.owner!.pid}): wait for it to finish; never run a second one beside it`
  const who = l.owner ? `pid ${l.owner.pid} on ${l.owner.host}` : 'its owner'
  return `if that run is truly over (${who} gone), murderctl recover-master -i ${inventoryPath} --break-lock shows the lock and removes it once confirmed; then resume the run with --resume ${l.run || 'RUN'}`
}

/**
 * Take the lock for `owner.run`. Already held by the same run: taken only when its recorded
 * process is gone (a resume); a live owner is refused, as is any other run.
 */
export async function acquireLock(ctx: MurderContext, host: Host, owner: LockOwner, step: string): Promise<{dir: string; resumed: boolean}> {
  const dir = await lockDir(ctx, host)
  const d = shellQuote(dir)
  const json = JSON.stringify(owner)
  const write = `printf '%s\\n' ${shellQuote(owner.run)} > ${d}/run && printf '%s\\n' ${shellQuote(json)} > ${d}/owner`
  const r = await ctx.pool.exec(host, {shell: `mkdir -- ${d} 2>/dev/null || exit 3; ${write}`})
  if (r.exitCode === 0) return {dir, resumed: false}
  const held = await readLock(ctx, host)
  if (held && held.run === owner.run && held.owner && held.owner.pid !== owner.pid && ownerAlive(held.owner) === false) {
    // Our own run's lock, left by a process that is gone: this process takes it over.
    await ctx.pool.execOk(host, {shell: write})
    return {dir, resumed: true}
  }
  if (held && held.run === owner.run && held.owner?.pid === owner.pid && held.owner.host === owner.host) return {dir, resumed: true}
  if (!held) throw new RefusedError(`could not create the lock ${dir}`, {host: host.name, step, hint: 'check that configdirectory is writable by the SSH user'})
  throw new RefusedError(`another run holds the murder's lock: ${describeLock(held)}`, {host: host.name, step, hint: lockHint(held, ctx.inv.path)})
}

/** Refuse (as acquireLock would) when a run other than `run` holds the lock; read-only. */
export async function assertLockFree(ctx: MurderContext, host: Host, run: string, step: string): Promise<void> {
  const held = await readLock(ctx, host)
  if (held && held.run !== run)
    throw new RefusedError(`another run holds the murder's lock: ${describeLock(held)}`, {host: host.name, step, hint: lockHint(held, ctx.inv.path)})
}

/** Release the lock if `run` holds it; true when it was released. */
export async function releaseLock(ctx: MurderContext, host: Host, run: string): Promise<boolean> {
  const held = await readLock(ctx, host)
  if (!held || held.run !== run) return false
  await ctx.pool.execOk(host, ['rm', '-r', '--', held.dir])
  return true
}

/** Remove a lock whatever holds it (the operator confirmed it is stale). */
export async function breakLock(ctx: MurderContext, host: Host, expected: HeldLock): Promise<void> {
  const now = await readLock(ctx, host)
  if (!now) return
  if (now.run !== expected.run)
    throw new RefusedError(`the lock changed hands while you were asked (now ${describeLock(now)})`, {host: host.name, step: 'break-lock', hint: 'look again'})
  await ctx.pool.execOk(host, ['rm', '-r', '--', now.dir])
}
