// Conditions a step checks before and after it acts. A step is done when its post-condition
// holds, not when a command exited 0. Conditions that settle asynchronously (a slave going
// away or reconnecting) are polled up to a deadline.
import {dbInfo} from '../host/db.js'
import {hostname} from 'node:os'
import {describeLock, readLock} from '../host/lock.js'
import {countMupdateWarn, localMupdateWarn} from '../host/mboxlist.js'
import {memoryDbRun, memoryDirLeft} from '../host/memory-db.js'
import {childRunning, masterListening, masterPid, readImapdConf, slaveConnected} from '../host/remote.js'
import type {Host} from '../inventory/schema.js'
import {poll} from '../util/poll.js'
import {remoteMailboxes} from './actions/local-lists.js'
import type {RunContext} from './context.js'
import {readMw} from './mw-read.js'

export interface ConditionResult {
  ok: boolean
  detail: string
}

type Check = (rc: RunContext, host: Host) => Promise<ConditionResult>

const cyrusRunning: Check = async (rc, h) => {
  const pid = await masterPid(rc.murder, h)
  // Running means serving: the next step may need its MUPDATE port.
  const listening = pid !== null && (await masterListening(rc.murder, h))
  return {ok: listening, detail: pid ? `cyrus-master pid ${pid}${listening ? '' : ' (not listening yet)'}` : 'cyrus-master is not running'}
}

/** `-m -w` (with authoritative, `-m -w -a`) says nothing about a unified backend's own mailboxes. */
async function ownMailboxesAgree(rc: RunContext, h: Host, authoritative: boolean): Promise<ConditionResult> {
  const read = () => localMupdateWarn(rc.murder, h, 'verify', remoteMailboxes(rc, h, 'verify'), {authoritative})
  // With -a it is the check a unified verify makes: an empty answer is kept for it (mw-read.ts).
  const w = authoritative ? await readMw(rc, h, 'own', 'verify', read) : await read()
  const cmd = `ctl_mboxlist -m -w${authoritative ? ' -a' : ''}`
  return {
    ok: w.changes === 0,
    detail:
      w.changes === 0
        ? `${cmd} prints nothing about local mailboxes${w.claimsAvoided.length ? ` (${w.claimsAvoided.length} ${authoritative ? '' : 'lagging '}remote entries, for the slave)` : ''}`
        : `${cmd} still prints ${w.changes} changes to local mailboxes`,
  }
}

/** Every condition a playbook may name. A new one goes here, with its settle time below if it settles. */
export const CONDITIONS = {
  'cyrus-running': cyrusRunning,
  'cyrus-stopped': async (rc, h) => {
    const pid = await masterPid(rc.murder, h)
    return {ok: pid === null, detail: pid ? `cyrus-master still runs (pid ${pid})` : 'cyrus-master is stopped'}
  },
  'slave-stopped': async (rc, h) => {
    const running = (await masterPid(rc.murder, h)) !== null && (await childRunning(rc.murder, h, 'mupdate'))
    return {ok: !running, detail: running ? 'a mupdate process still runs under cyrus-master' : 'no mupdate slave runs'}
  },
  'slave-connected': async (rc, h) => {
    const ok = await slaveConnected(rc.murder, h)
    return {ok, detail: ok ? 'the mupdate slave is connected to the master' : 'the mupdate slave is not connected to the master'}
  },
  'mw-empty': async (rc, h) => {
    // The check a standard verify makes: an empty answer is kept for it (mw-read.ts).
    const w = await readMw(rc, h, 'plain', 'verify', () => countMupdateWarn(rc.murder, h, 'verify'))
    return {ok: w.changes === 0, detail: w.changes === 0 ? 'ctl_mboxlist -m -w prints nothing' : `ctl_mboxlist -m -w still prints ${w.changes} changes`}
  },
  // After a unified backend's local-only push: its own mailboxes agree with the master.
  'local-mw-empty': (rc, h) => ownMailboxesAgree(rc, h, false),
  // The same after a push into the master this run emptied (freshMaster), with -a: no FIND for
  // each remote entry the backend holds (20,000 on the lab, while the other backend still
  // pushes), and an own mailbox the master places on another backend is printed, where plain
  // -m -w in a unified murder passes over it in silence. So it is the stricter check.
  'own-mw-empty': (rc, h) => ownMailboxesAgree(rc, h, true),
  'db-absent': async (rc, h) => {
    const {path} = await dbInfo(rc.murder, h)
    const r = await rc.murder.pool.exec(h, ['test', '!', '-e', path])
    return {ok: r.exitCode === 0, detail: r.exitCode === 0 ? `${path} is not there` : `${path} exists`}
  },
  'db-present': async (rc, h) => {
    const {path} = await dbInfo(rc.murder, h)
    const r = await rc.murder.pool.exec(h, ['test', '-s', path])
    return {ok: r.exitCode === 0, detail: r.exitCode === 0 ? `${path} is in place` : `${path} is missing or empty`}
  },
  // After a push into a list in memory: the key that put it there is out of imapd.conf, this
  // run's folder in memory is gone, and the master serves from its disk.
  'master-db-on-disk': async (rc, h) => {
    rc.murder.imapdConf.delete(h.name)
    const path = (await readImapdConf(rc.murder, h)).get('mboxlist_db_path')
    if (memoryDbRun(path)) return {ok: false, detail: `${h.cyrus.imapdConf} points mailboxes.db at ${path} (in memory)`}
    const left = await memoryDirLeft(rc.murder, h, rc.runId)
    if (left) return {ok: false, detail: `${left} is still there`}
    const running = await cyrusRunning(rc, h)
    return {ok: running.ok, detail: running.ok ? `mailboxes.db is on disk; ${running.detail}` : running.detail}
  },
  // Held by this run AND this process: a live earlier process of the same run is not us.
  locked: async (rc, h) => {
    const held = await readLock(rc.murder, h)
    const mine = held?.run === rc.runId && held.owner?.pid === process.pid && held.owner.host === hostname()
    return {ok: mine, detail: held ? `locked by ${describeLock(held)}` : 'not locked'}
  },
} satisfies Record<string, Check>
export type ConditionName = keyof typeof CONDITIONS

/** How long a condition may take to settle once its action is done. */
const SETTLE_MS: Partial<Record<ConditionName, number>> = {
  'master-db-on-disk': 20_000,
  'slave-stopped': 20_000,
  'slave-connected': 90_000,
  'cyrus-running': 20_000,
  'cyrus-stopped': 40_000,
}

export async function checkCondition(rc: RunContext, name: string, host: Host, opts: {settle?: boolean} = {}): Promise<ConditionResult> {
  const check = (CONDITIONS as Record<string, Check>)[name]
  if (!check) throw new Error(`unknown condition ${name}`)
  return poll(
    () => check(rc, host),
    (r) => r.ok,
    {timeoutMs: opts.settle ? (SETTLE_MS[name as ConditionName] ?? 0) : 0, intervalMs: 250},
  )
}
