// The failover actions (playbooks/failover-*.yaml): a replication pair's master role moved to the
// other member, controlled or --hard. The command's service decides the direction from the hosts
// and provides the selectors old-master and new-master; the actions read the pair and the
// direction from the run's options. Every config is copied aside (checksummed, journaled, a name
// per run and step) before it changes.
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {AbortError, asMurderctlError, RefusedError, UnreachableError} from '../../errors.js'
import {lintImapdConf} from '../../cyrus/imapd-conf.js'
import {masterSettings, type PairConfigs, toMasterConfig, toReplicaConfig} from '../../cyrus/pair-config.js'
import {parseCyrusConf, syncServerService} from '../../cyrus/cyrus-conf.js'
import {isLiveLocal, isRemote} from '../../cyrus/mboxlist-dump.js'
import type {Journal} from '../journal.js'
import type {RunContext} from '../context.js'
import {defineAction, need} from './types.js'
import {z} from 'zod'
import type {MurderContext} from '../../host/context.js'
import {compareStates, type MailboxSelection, mailboxStates} from '../../host/mailbox-state.js'
import {scanDump} from '../../host/mboxlist.js'
import {activeOf, findPair, type MemberRead, type Pair, readMember, syncBacklog, syncDir} from '../../host/pair.js'
import {childRunning, copyAside, hupMaster, masterPid, tool} from '../../host/remote.js'
import {ImapClient, imapString} from '../../imap/client.js'
import {hostsByRole, resolvePath} from '../../inventory/load.js'
import type {Host} from '../../inventory/schema.js'
import {shellQuote} from '../../ssh/quote.js'
import {readFence, writeFence} from '../../store/fence.js'
import {sha256} from '../../util/hash.js'
import {failoverHistory} from '../history.js'
import {parseImapdConf} from '../../cyrus/imapd-conf.js'
import {readFileSync} from 'node:fs'
import {poll} from '../../util/poll.js'

/** A failover run's options, journaled at its start (a resume reads them back). */
export const FailoverOptions = z
  .object({
    pair: z.string(),
    kind: z.enum(['controlled', 'hard']),
    from: z.string(),
    to: z.string(),
    /** Past the lag limit and the anti-flapping period. */
    force: z.boolean().default(false),
    /** Also a full `sync_client -A` before the drain. */
    full: z.boolean().default(false),
  })
  .strict()
export type FailoverOptions = z.infer<typeof FailoverOptions>

export interface StepReport {
  id: string
  title: string
  status: 'done' | 'skipped' | 'planned' | 'already-done'
  detail?: string
}

export interface Fc {
  ctx: MurderContext
  opts: {force: boolean; full: boolean; progress?: (line: string) => void}
  pair: Pair
  from: Host
  to: Host
  journal: Journal
  run: string
  kind: 'controlled' | 'hard'
  /** A resumed run: its preflight passed before, the pair is part-way on purpose. */
  resumed?: boolean
  /** Times (ms) the service gap is measured between, journaled as notes so a resume keeps them. */
  marks: Record<string, number>
  /** What the run learned that later steps use. */
  facts: Record<string, unknown>
}

// ---- small helpers ----------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** `poll` every 250 ms until `fn` answers (a failed ask counts as no answer), else a timeout naming `what`. */
async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | null | false | undefined>, host?: string, step?: string): Promise<T> {
  const v = await poll(() => fn().catch(() => null), Boolean, {timeoutMs, intervalMs: 250, firstIntervalMs: 250})
  if (v) return v
  throw new AbortError(`${what} did not happen within ${Math.round(timeoutMs / 1000)}s`, {host, step})
}

/** Placeholders of the inventory's pair commands, shell-quoted. */
export function fillCommand(cmd: string, v: Record<string, string>): string {
  return cmd.replace(/\{([a-z.]+)\}/g, (m, k: string) => (k in v ? shellQuote(v[k]!) : m))
}

const placeholders = (fc: Fc): Record<string, string> => ({
  pair: fc.pair.name,
  servername: fc.pair.servername,
  old: fc.from.name,
  'old.address': fc.from.address,
  new: fc.to.name,
  'new.address': fc.to.address,
})

export async function runLocal(fc: Fc, step: string, cmd: string): Promise<void> {
  const filled = fillCommand(cmd, placeholders(fc))
  const started = Date.now()
  // Loaded here: only a failover's address move runs a local command, and execa costs every
  // other command about 0.1 s of start-up.
  const {execa} = await import('execa')
  const r = await execa('sh', ['-c', filled], {reject: false, timeout: 300_000})
  fc.journal.write({
    event: 'command',
    step,
    host: 'local',
    command: filled,
    exitCode: r.exitCode ?? null,
    stdoutSha256: sha256(r.stdout),
    stderr: r.stderr.slice(0, 2000),
    durationMs: Date.now() - started,
  })
  if (r.exitCode !== 0)
    throw new AbortError(`${step} command failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`, {
      step,
      hint: 'fix it and resume the run',
    })
}

/** Lines of a config with secrets masked, for showing diffs. */
const mask = (line: string) => line.replace(/^(\s*#?\s*[A-Za-z0-9_-]*(?:password|secret)[A-Za-z0-9_-]*\s*:\s*).*$/i, '$1***')

/** A small line diff (LCS), secrets masked: what a config edit changes. */
export function configDiff(before: string, after: string): string {
  const a = before.split('\n')
  const b = after.split('\n')
  const n = a.length
  const m = b.length
  const lcs: number[][] = Array.from({length: n + 1}, () => new Array<number>(m + 1).fill(0))
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
  const out: string[] = []
  let i = 0
  let j = 0
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      i++
      j++
    } else if (i < n && (j >= m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push(`- ${mask(a[i++]!)}`)
    else out.push(`+ ${mask(b[j++]!)}`)
  }
  return out.join('\n')
}

/** Copy a config aside (journaled), write the new text by rename, and read it back. */
async function writeConfig(fc: Fc, host: Host, path: string, text: string, step: string): Promise<void> {
  const before = (await fc.ctx.pool.readFile(host, path)).toString('utf8')
  if (before === text) return
  fc.journal.saved(step, await copyAside(fc.ctx, host, path, `${fc.run}-${step}`, step))
  await fc.ctx.pool.writeFileAtomic(host, path, text)
  const back = (await fc.ctx.pool.readFile(host, path)).toString('utf8')
  if (back !== text) throw new AbortError(`${path} does not read back as written`, {host: host.name, step})
  fc.ctx.imapdConf.delete(host.name)
  fc.journal.write({event: 'note', step, host: host.name, data: {wrote: path, sha256: sha256(text)}})
}

export async function readConfigs(fc: Fc, host: Host): Promise<PairConfigs> {
  const [imapd, cyrus] = await Promise.all(
    [host.cyrus.imapdConf, host.cyrus.cyrusConf].map((p) => fc.ctx.pool.readFile(host, p).then((b) => b.toString('utf8'))),
  )
  return {imapd: imapd!, cyrus: cyrus!}
}

function checkImapd(text: string, host: Host, step: string): void {
  const fatal = lintImapdConf(text).find((p) => p.fatal)
  if (fatal)
    throw new AbortError(`the new imapd.conf would be refused by Cyrus: ${fatal.message}`, {
      host: host.name,
      step,
      hint: 'this is a murderctl bug; nothing was written',
    })
}

/** What writing `next` on a member changes, secrets masked ('' when nothing). */
export function configDiffs(host: Host, cur: PairConfigs, next: PairConfigs): string {
  return [
    cur.imapd === next.imapd ? '' : `--- ${host.name}:${host.cyrus.imapdConf}\n${configDiff(cur.imapd, next.imapd)}`,
    cur.cyrus === next.cyrus ? '' : `--- ${host.name}:${host.cyrus.cyrusConf}\n${configDiff(cur.cyrus, next.cyrus)}`,
  ]
    .filter(Boolean)
    .join('\n')
}

/** Write a member's new configs (each copied aside first); the diff goes beside the journal. */
export async function applyConfigs(fc: Fc, host: Host, next: PairConfigs, step: string): Promise<string> {
  const cur = await readConfigs(fc, host)
  checkImapd(next.imapd, host, step)
  const diff = configDiffs(host, cur, next)
  if (!diff) return 'already so'
  fc.journal.keep(`${step}-${host.name}.diff`, `${diff}\n`)
  await writeConfig(fc, host, host.cyrus.imapdConf, next.imapd, step)
  await writeConfig(fc, host, host.cyrus.cyrusConf, next.cyrus, step)
  return `wrote ${[cur.imapd !== next.imapd && host.cyrus.imapdConf, cur.cyrus !== next.cyrus && host.cyrus.cyrusConf].filter(Boolean).join(' and ')} on ${host.name} (copies aside in the journal)`
}

const unified = (fc: Fc) => fc.ctx.inv.mode === 'unified'

/** The frontend a probe goes through: a frontend, or in a unified murder a backend not in this pair. */
function probeFrontend(fc: Fc): Host | undefined {
  const members = new Set(fc.pair.members.map((m) => m.name))
  return hostsByRole(fc.ctx.inv, 'frontend')[0] ?? hostsByRole(fc.ctx.inv, 'backend').find((b) => !members.has(b.name))
}

interface Probe {
  user: string
  password: string
  mailbox: string
}

function probeSettings(fc: Fc): Probe | null {
  const p = fc.pair.settings.probe
  if (!p) return null
  return {user: p.user, password: readFileSync(resolvePath(fc.ctx.inv.path, p.passwordFile), 'utf8').trim(), mailbox: p.mailbox}
}

/** Log in through a frontend and select the pair's probe mailbox: the pair serves. */
async function servesThroughFrontend(fc: Fc, probe: Probe): Promise<boolean> {
  const fe = probeFrontend(fc)
  if (!fe) return false
  const c = await ImapClient.open(fe.address, 143, {timeoutMs: 3000, label: fe.name})
  try {
    await c.login(probe.user, probe.password)
    const r = await c.command(`SELECT ${imapString(probe.mailbox)}`)
    return r.status === 'OK'
  } finally {
    await c.logout()
  }
}

async function messageOn(address: string, label: string, probe: Probe, messageId: string): Promise<boolean> {
  const c = await ImapClient.open(address, 143, {timeoutMs: 3000, label})
  try {
    await c.login(probe.user, probe.password)
    await c.ok(`EXAMINE ${imapString(probe.mailbox)}`)
    const r = await c.ok(`UID SEARCH HEADER Message-ID ${imapString(messageId)}`)
    return r.untagged.some((l) => /^\* SEARCH \d/.test(l))
  } finally {
    await c.logout()
  }
}

/**
 * Stop a member's cyrus-master as Fastmail does: the stop command, given 10 s (an imapd busy
 * with a proxied client can hold a graceful shutdown for half a minute), then whatever of its
 * processes is left is killed, children first.
 */
export async function stopMember(fc: Fc, host: Host, step: string): Promise<string> {
  const pid = await masterPid(fc.ctx, host)
  if (pid === null) return 'cyrus-master was not running'
  const children = async () => (await fc.ctx.pool.exec(host, ['pgrep', '-P', String(pid)])).stdout.split('\n').filter((x) => /^\d+$/.test(x))
  const seen = new Set(await children())
  const r = await fc.ctx.pool.exec(host, {shell: `timeout 10 sh -c ${shellQuote(host.cyrus.stop)}`})
  fc.journal.command(step, host.name, r)
  const alive = async (pids: string[]) => {
    if (!pids.length) return []
    // A killed process stays a zombie until its parent reaps it: that one is gone.
    const x = await fc.ctx.pool.exec(host, {shell: `ps -o pid=,stat= -p ${pids.join(',')} 2>/dev/null; true`})
    return x.stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([p, st]) => p && st && !st.startsWith('Z'))
      .map(([p]) => p!)
  }
  for (const c of await children()) seen.add(c)
  let kids = await alive([...seen])
  const killed: string[] = []
  if (kids.length) {
    await fc.ctx.pool.exec(host, ['kill', '-KILL', ...kids])
    killed.push(...kids)
    await sleep(500)
    kids = await alive(kids)
  }
  // With its children gone, cyrus-master finishes its shutdown by itself; else it is killed too.
  for (let i = 0; i < 10 && (await alive([String(pid)])).length; i++) await sleep(200)
  if ((await alive([String(pid)])).length) {
    await fc.ctx.pool.exec(host, ['kill', '-KILL', String(pid)])
    killed.push(String(pid))
    await sleep(300)
  }
  let left = await alive([String(pid), ...kids])
  for (let i = 0; i < 10 && left.length; i++) {
    await sleep(500)
    left = await alive(left)
  }
  if (left.length) throw new AbortError(`processes ${left.join(', ')} of cyrus-master ${pid} survive kill -KILL`, {host: host.name, step})
  if (killed.length) fc.journal.write({event: 'note', step, host: host.name, data: {killed}})
  return `stopped cyrus-master ${pid}${r.exitCode === 124 ? ' (its stop command hung past 10 s' : ' ('}${killed.length ? `${r.exitCode === 124 ? '; ' : ''}killed ${killed.length} leftover processes` : r.exitCode === 124 ? '' : 'cleanly'})`
}

async function startCyrus(fc: Fc, host: Host, step: string): Promise<number> {
  const r = await fc.ctx.pool.exec(host, {shell: host.cyrus.start})
  fc.journal.command(step, host.name, r)
  return waitFor(`cyrus-master on ${host.name} starting`, 30_000, () => masterPid(fc.ctx, host), host.name, step)
}

/** The port a member's sync_server listens on, from its cyrus.conf (csync = 2005). */
function syncServerPort(cyrusText: string): number {
  const e = syncServerService(parseCyrusConf(cyrusText))
  const tail = (e?.args.listen ?? 'csync').split(':').pop() ?? ''
  return /^\d+$/.test(tail) ? Number(tail) : 2005
}

// ---- the steps ------------------------------------------------------------------------------

export async function readBoth(fc: Fc): Promise<{from: MemberRead; to: MemberRead}> {
  const [from, to] = await Promise.all([readMember(fc.ctx, fc.from), readMember(fc.ctx, fc.to)])
  return {from, to}
}

async function preflight(fc: Fc): Promise<string> {
  const step = 'preflight'
  const {from, to} = await readBoth(fc)
  for (const m of [from, to])
    if (!m.state.reachable)
      throw new UnreachableError(`${m.state.name} cannot be read: ${m.state.error}`, {
        host: m.state.name,
        step,
        hint: m.state.name === fc.from.name ? `if it is dead, promote the replica with: murderctl failover ${fc.pair.name} --hard` : undefined,
      })
  for (const m of [fc.from, fc.to]) {
    const f = readFence(fc.ctx.inv.stateDir, m.name)
    if (f)
      throw new RefusedError(`${m.name} is FENCED since ${f.at} (hard failover run ${f.run}): it may hold changes the other member lacks`, {
        host: m.name,
        step,
        hint: 'run reconcile first; it lifts the mark',
      })
  }
  // A resumed run left the pair part-way on purpose: the rest of the checks were passed before.
  if (fc.resumed) return `resumed: both members answer (${fc.from.name} ${from.state.config}, ${fc.to.name} ${to.state.config})`
  const {conflict} = activeOf([from.state, to.state])
  if (conflict) throw new RefusedError(`pair ${fc.pair.name}: ${conflict}`, {step, hint: 'settle the split brain first (reconcile)'})
  if (from.state.config !== 'master' || !from.state.cyrusMaster.running)
    throw new RefusedError(
      `${fc.from.name} is not a running master (config ${from.state.config}, cyrus-master ${from.state.cyrusMaster.running ? 'up' : 'down'})`,
      {host: fc.from.name, step},
    )
  if (to.state.config !== 'replica')
    throw new RefusedError(`${fc.to.name} does not hold the replica config (${to.state.config})`, {
      host: fc.to.name,
      step,
      hint: 'a half-switched pair: fix it by hand or resume the run that left it so',
    })
  if (!to.state.cyrusMaster.running)
    throw new RefusedError(`cyrus-master is not running on the replica ${fc.to.name}: replication to it is stopped`, {host: fc.to.name, step})
  if (from.state.rollingClient !== 'running')
    throw new RefusedError(`the rolling sync_client on ${fc.from.name} is ${from.state.rollingClient}: ${fc.to.name} is not receiving changes`, {
      host: fc.from.name,
      step,
      hint: 'start replication and let it catch up first',
    })
  const s = fc.pair.settings
  const lag = from.state.backlog!
  if ((lag.bytes > s.maxLagBytes || lag.ageSeconds > s.maxLagSeconds) && !fc.opts.force)
    throw new RefusedError(
      `${fc.from.name}'s sync log is behind: ${lag.bytes} bytes, oldest ${lag.ageSeconds}s (limits ${s.maxLagBytes} bytes, ${s.maxLagSeconds}s)`,
      {host: fc.from.name, step, hint: 'wait for replication to catch up, or --force'},
    )
  if (!s.moveAddress)
    throw new RefusedError(`pair ${fc.pair.name} has no moveAddress command in the inventory: the frontends would keep reaching the old member`, {
      step,
      hint: 'add pairs: [{backend: ..., moveAddress: ...}] (see README)',
    })
  antiFlap(fc, step)
  // The replica's live mailbox list equals the master's (a deleted entry, mbtype d, is no mailbox).
  const local = new Set<string>()
  const replica = new Set<string>()
  await Promise.all([
    scanDump(fc.ctx, fc.from, (e) => isLiveLocal(e) && local.add(e.name), step),
    scanDump(fc.ctx, fc.to, (e) => isLiveLocal(e) && replica.add(e.name), step),
  ])
  const missing = [...local].filter((n) => !replica.has(n))
  const extra = [...replica].filter((n) => !local.has(n))
  if (missing.length || extra.length)
    throw new RefusedError(
      `the mailbox lists differ: ${missing.length} only on ${fc.from.name} (${missing.slice(0, 3).join(', ')}), ${extra.length} only on ${fc.to.name} (${extra.slice(0, 3).join(', ')})`,
      {step, hint: 'let replication catch up (sync_client -A), then run again'},
    )
  fc.facts.mailboxes = local.size
  return `${fc.from.name} master, ${fc.to.name} replica; ${local.size} mailboxes on both; backlog ${lag.bytes} bytes`
}

function antiFlap(fc: Fc, step: string): void {
  const last = failoverHistory(fc.ctx.inv.stateDir, fc.pair.name)
    .filter((h) => h.outcome === 'done' && h.run !== fc.run && h.kind !== 'fence')
    .pop()
  const min = fc.pair.settings.minIntervalSeconds
  if (last?.endedAt && Date.now() - Date.parse(last.endedAt) < min * 1000 && !fc.opts.force)
    throw new RefusedError(
      `pair ${fc.pair.name} failed over ${Math.round((Date.now() - Date.parse(last.endedAt)) / 1000)}s ago (run ${last.run}); the anti-flapping period is ${min}s`,
      {step, hint: 'find out why first; --force overrides'},
    )
}

async function preflightHard(fc: Fc): Promise<string> {
  const step = 'preflight'
  const {from, to} = await readBoth(fc)
  if (!to.state.reachable) throw new UnreachableError(`the replica ${fc.to.name} cannot be read: ${to.state.error}`, {host: fc.to.name, step})
  fc.facts.oldReachable = from.state.reachable
  if (fc.resumed) return `resumed: ${fc.to.name} answers (${to.state.config} config)`
  if (from.state.reachable && from.state.cyrusMaster.running && !fc.opts.force)
    throw new RefusedError(`${fc.from.name} is reachable and its cyrus-master runs: this is no dead master`, {
      host: fc.from.name,
      step,
      hint: `use a controlled failover (murderctl failover ${fc.pair.name}), or --force`,
    })
  const f = readFence(fc.ctx.inv.stateDir, fc.to.name)
  if (f)
    throw new RefusedError(`${fc.to.name} is FENCED (run ${f.run}): promoting it could lose what ${f.promoted} took since`, {
      host: fc.to.name,
      step,
      hint: 'run reconcile first',
    })
  if (to.state.config === 'master') throw new RefusedError(`${fc.to.name} already holds the master config`, {host: fc.to.name, step})
  if (!fc.pair.settings.moveAddress) throw new RefusedError(`pair ${fc.pair.name} has no moveAddress command in the inventory`, {step})
  antiFlap(fc, step)
  fc.facts.oldReachable = from.state.reachable
  return `${fc.from.name} ${from.state.reachable ? 'reachable, Cyrus down' : 'unreachable'}; ${fc.to.name} will be promoted without drain`
}

async function preHook(fc: Fc): Promise<string> {
  const cmd = fc.pair.settings.preFailover
  if (!cmd) return 'no preFailover hook'
  await runLocal(fc, 'pre-hook', cmd)
  return 'preFailover hook ran'
}

async function postHook(fc: Fc): Promise<string> {
  const cmd = fc.pair.settings.postFailover
  if (!cmd) return 'no postFailover hook'
  try {
    await runLocal(fc, 'post-hook', cmd)
    return 'postFailover hook ran'
  } catch (error) {
    // The failover stands; say the hook failed.
    const msg = asMurderctlError(error).message
    fc.opts.progress?.(`! postFailover hook failed: ${msg}`)
    return `postFailover hook FAILED: ${msg}`
  }
}

async function stopOld(fc: Fc): Promise<string> {
  if (!fc.marks.stopStartedAt) {
    fc.marks.stopStartedAt = Date.now()
    fc.journal.write({event: 'note', step: 'stop-old', data: {mark: 'stopStartedAt', at: fc.marks.stopStartedAt}})
  }
  return stopMember(fc, fc.from, 'stop-old')
}

/** Replay every sync log file left on the old master until nothing is left. */
async function drain(fc: Fc): Promise<string> {
  const step = 'drain'
  const host = fc.from
  const imapd = parseImapdConf((await fc.ctx.pool.readFile(host, host.cyrus.imapdConf)).toString('utf8'), {lenient: true})
  const dir = syncDir(imapd)
  const replayed: string[] = []
  if (fc.opts.full) {
    const r = await fc.ctx.pool.exec(host, [tool(host, 'sync_client'), '-v', '-A'])
    fc.journal.command(step, host.name, r)
    if (r.exitCode !== 0)
      throw new AbortError(`sync_client -A failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').pop() ?? ''}`, {host: host.name, step})
  }
  for (let round = 0; round < 5; round++) {
    const backlog = await syncBacklog(fc.ctx, host, imapd)
    // log-run is the rolling client's work file (older than log), log-<PID> leftovers of failed runs.
    const files = backlog.files
      .filter((f) => f.bytes > 0)
      .sort((a, b) => ((a.file === 'log') === (b.file === 'log') ? a.file.localeCompare(b.file) : a.file === 'log' ? 1 : -1))
    if (!files.length) return replayed.length ? `replayed ${replayed.join(', ')}` : 'nothing to replay'
    for (const f of files) {
      const path = `${dir}/${f.file}`
      const saved = fc.journal.saved(step, await copyAside(fc.ctx, host, path, `${fc.run}-${step}-${round}`, step))
      const r = await fc.ctx.pool.exec(host, [tool(host, 'sync_client'), '-r', '-f', path])
      fc.journal.command(step, host.name, r)
      if (r.exitCode !== 0 || /error|fail/i.test(r.stderr))
        throw new AbortError(`sync_client -r -f ${path} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').pop() ?? ''}`, {
          host: host.name,
          step,
          hint: `the log is kept (copy ${saved.copy}); fix replication to ${fc.to.name} and resume, or restart ${fc.from.name} (${host.cyrus.start}) to abandon`,
        })
      // Replayed: the file goes, only if it is still what was replayed (its copy stays).
      const q = shellQuote(path)
      await fc.ctx.pool.execOk(host, {shell: `[ "$(sha256sum -- ${q} | cut -d' ' -f1)" = ${shellQuote(saved.sha256)} ] && rm -f -- ${q}`})
      replayed.push(`${f.file} (${f.bytes} bytes)`)
    }
  }
  throw new AbortError('the sync log keeps refilling with cyrus-master stopped', {
    host: host.name,
    step,
    hint: 'something else writes to it; find it and resume',
  })
}

/**
 * The member's own mailboxes as a mailbox-state selection. A unified backend also holds the
 * murder's remote entries, and `mbexamine` prints only "Examining user.bob..." (no newline,
 * nothing else) for one of those, which the state reader cannot parse: select the local
 * mailboxes' users (and the other local names) instead of `*` there.
 */
async function localSelection(fc: Fc, host: Host): Promise<MailboxSelection> {
  if (!unified(fc)) return {}
  const users = new Set<string>()
  const others: string[] = []
  await scanDump(
    fc.ctx,
    host,
    (e) => {
      if (isRemote(e)) return
      const m = /^user\.([^.]+)/.exec(e.name)
      if (m) users.add(m[1]!)
      else others.push(e.name)
    },
    'mailbox-state',
  )
  return {users: [...users], mailboxes: others}
}

/** Both members' mailboxes agree, one by one: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, count, digest. */
async function agree(fc: Fc): Promise<string> {
  const step = 'agree'
  const sel = await localSelection(fc, fc.from)
  const [a, b] = await Promise.all([mailboxStates(fc.ctx, fc.from, sel), mailboxStates(fc.ctx, fc.to, sel)])
  const cmp = compareStates(a, b)
  const differ = cmp.filter((c) => c.differences.length)
  fc.journal.keep('agree.json', JSON.stringify(cmp, null, 1))
  if (differ.length)
    throw new RefusedError(
      `${differ.length} of ${cmp.length} mailboxes differ between ${fc.from.name} and ${fc.to.name}: ${differ
        .slice(0, 3)
        .map((c) => `${c.name} (${c.differences.join(', ')})`)
        .join('; ')}`,
      {step, hint: `nothing was switched; restart ${fc.from.name} (${fc.from.cyrus.start}) and let replication catch up, or resume after fixing it`},
    )
  const unproven = cmp.filter((c) => c.unproven).length
  return `${cmp.length} mailboxes agree${unproven ? ` (${unproven} without a digest: counters only)` : ''}`
}

async function cutoff(fc: Fc): Promise<string> {
  const states = await mailboxStates(fc.ctx, fc.to, await localSelection(fc, fc.to))
  const dir = join(fc.ctx.inv.stateDir, 'cutoffs')
  mkdirSync(dir, {recursive: true})
  const path = join(dir, `${fc.pair.name}-${fc.to.name}-${fc.run}.json`)
  writeFileSync(
    path,
    `${JSON.stringify({pair: fc.pair.name, promoted: fc.to.name, lost: fc.from.name, at: new Date().toISOString(), run: fc.run, mailboxes: states}, null, 1)}\n`,
  )
  fc.journal.write({event: 'note', step: 'cutoff', data: {cutoff: path, mailboxes: states.length}})
  fc.facts.cutoff = path
  return `${states.length} mailboxes' state at promotion in ${path}`
}

async function switchOld(fc: Fc): Promise<string> {
  const cur = await readConfigs(fc, fc.from)
  return applyConfigs(fc, fc.from, toReplicaConfig(cur, {unified: unified(fc)}), 'switch-old')
}

async function switchNew(fc: Fc): Promise<string> {
  const cur = await readConfigs(fc, fc.to)
  // The old master's own settings when it can be read (a controlled failover), else the replica's marked lines.
  let peer: string | undefined
  try {
    peer = (await fc.ctx.pool.readFile(fc.from, fc.from.cyrus.imapdConf)).toString('utf8')
  } catch {
    peer = undefined
  }
  const next = toMasterConfig(cur, {
    settings: masterSettings(cur.imapd, peer),
    syncHost: fc.from.address,
    unified: unified(fc),
    hold: {mupdatePush: true, syncClient: true},
  })
  return applyConfigs(fc, fc.to, next, 'switch-new')
}

async function moveAddress(fc: Fc): Promise<string> {
  if (!fc.marks.firstChangeAt) {
    fc.marks.firstChangeAt = Date.now()
    fc.journal.write({event: 'note', step: 'move-address', data: {mark: 'firstChangeAt', at: fc.marks.firstChangeAt}})
  }
  await runLocal(fc, 'move-address', fc.pair.settings.moveAddress!)
  return `${fc.pair.servername} now reaches ${fc.to.name} (${fc.to.address})`
}

/**
 * The undo of move-address: the same inventory command with the members swapped, so the pair's
 * servername reaches the old master again ({new} is the member it is to reach).
 */
const swapped = (fc: Fc): Fc => ({...fc, from: fc.to, to: fc.from})

async function moveAddressBack(fc: Fc, step: string): Promise<string> {
  await runLocal(swapped(fc), step, fc.pair.settings.moveAddress!)
  return `${fc.pair.servername} reaches ${fc.from.name} (${fc.from.address}) again`
}

async function startNew(fc: Fc): Promise<string> {
  const step = 'start-new'
  const pid = await startCyrus(fc, fc.to, step)
  const probe = probeSettings(fc)
  if (probe) {
    await waitFor(`${fc.pair.servername} serving through a frontend`, 60_000, () => servesThroughFrontend(fc, probe), fc.to.name, step)
    fc.marks.servedAt = Date.now()
    fc.journal.write({event: 'note', step, data: {mark: 'servedAt', at: fc.marks.servedAt}})
  }
  return `cyrus-master ${pid} on ${fc.to.name}${probe ? ', serving through a frontend' : ''}`
}

/** The new master's push at start goes back on (it was held so `-m -w` could be checked first). */
async function enablePushAtStart(fc: Fc): Promise<string> {
  const cur = await readConfigs(fc, fc.to)
  const next = toMasterConfig(cur, {settings: masterSettings(cur.imapd), syncHost: fc.from.address, unified: unified(fc), hold: {syncClient: true}})
  await writeConfig(fc, fc.to, fc.to.cyrus.cyrusConf, next.cyrus, 'enable-push')
  return 'ctl_mboxlist -m at start enabled again'
}

export async function startOld(fc: Fc): Promise<string> {
  const step = 'start-old'
  const pid = await startCyrus(fc, fc.from, step)
  const port = syncServerPort((await fc.ctx.pool.readFile(fc.from, fc.from.cyrus.cyrusConf)).toString('utf8'))
  await waitFor(
    `sync_server listening on ${fc.from.name}:${port}`,
    30_000,
    async () => (await fc.ctx.pool.exec(fc.from, {shell: `ss -Htln '( sport = :${port} )' | grep -q .`})).exitCode === 0,
    fc.from.name,
    step,
  )
  return `cyrus-master ${pid} on ${fc.from.name} as replica, sync_server on port ${port}`
}

export async function replicate(fc: Fc): Promise<string> {
  const step = 'replicate'
  const f = readFence(fc.ctx.inv.stateDir, fc.from.name)
  if (f) throw new RefusedError(`${fc.from.name} is FENCED: no replication towards it until reconcile`, {host: fc.from.name, step})
  const cur = await readConfigs(fc, fc.to)
  const next = toMasterConfig(cur, {settings: masterSettings(cur.imapd), syncHost: fc.from.address, unified: unified(fc)})
  await writeConfig(fc, fc.to, fc.to.cyrus.cyrusConf, next.cyrus, step)
  await hupMaster(fc.ctx, fc.to, step)
  await waitFor(`the rolling sync_client on ${fc.to.name}`, 20_000, () => childRunning(fc.ctx, fc.to, 'sync_client'), fc.to.name, step)
  return `rolling sync_client on ${fc.to.name} towards ${fc.from.address}`
}

async function verify(fc: Fc): Promise<string> {
  const step = 'verify'
  const {from, to} = await readBoth(fc)
  const hard = fc.kind === 'hard'
  const inMurder = [from, to].filter((m) => m.state.mupdateServer !== null || m.state.mupdatePush).map((m) => m.state.name)
  const problems: string[] = []
  if (to.state.config !== 'master' || !to.state.cyrusMaster.running) problems.push(`${fc.to.name} is not a running master (config ${to.state.config})`)
  if (from.state.reachable && from.state.config !== 'replica') problems.push(`${fc.from.name} does not hold the replica config (${from.state.config})`)
  if (inMurder.length !== 1 && !(hard && !from.state.reachable)) problems.push(`${inMurder.length} members configured for the murder (${inMurder.join(', ')})`)
  if (!hard && to.state.rollingClient !== 'running') problems.push(`the rolling sync_client on ${fc.to.name} is ${to.state.rollingClient}`)
  const detail: Record<string, unknown> = {inMurder}
  const probe = probeSettings(fc)
  if (probe && !problems.length) {
    const fe = probeFrontend(fc)!
    const messageId = `<murderctl-failover-${fc.run}@${fc.pair.servername}>`
    const msg = Buffer.from(
      [
        `From: murderctl <murderctl@${fc.pair.servername}>`,
        `To: ${probe.user}`,
        `Subject: murderctl failover ${fc.run}`,
        `Message-ID: ${messageId}`,
        `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
        '',
        `Failover of ${fc.pair.name} to ${fc.to.name}: probe message.`,
        '',
      ].join('\r\n'),
    )
    const c = await ImapClient.open(fe.address, 143, {label: fe.name})
    try {
      await c.login(probe.user, probe.password)
      await c.append(probe.mailbox, msg, {flags: ['\\Seen']})
    } finally {
      await c.logout()
    }
    if (!(await messageOn(fc.to.address, fc.to.name, probe, messageId))) problems.push(`a message appended through ${fe.name} is not on ${fc.to.name}`)
    detail.appendedThrough = fe.name
    if (!hard && !problems.length) {
      const started = Date.now()
      const timeout = fc.pair.settings.replicationTimeoutSeconds * 1000
      try {
        await waitFor(`the probe message reaching ${fc.from.name}`, timeout, async () => {
          const [x, y] = await Promise.all([
            mailboxStates(fc.ctx, fc.to, {mailboxes: [probe.mailbox]}),
            mailboxStates(fc.ctx, fc.from, {mailboxes: [probe.mailbox]}),
          ])
          return compareStates(x, y).every((s) => !s.differences.length) && x.length > 0
        })
        detail.replicatedInMs = Date.now() - started
      } catch {
        problems.push(`the probe message did not reach ${fc.from.name} within ${timeout / 1000}s`)
      }
    }
  } else if (!probe) detail.probe = 'no probe configured for this pair: IMAP through a frontend not checked'
  fc.facts.verify = detail
  fc.journal.write({event: 'note', step, data: detail})
  if (problems.length)
    throw new AbortError(`verification failed: ${problems.join('; ')}`, {step, hint: 'look at `murderctl pair status`; the journal has every copy taken'})
  return `one member in the murder (${fc.to.name})${detail.appendedThrough ? `; a message appended through ${detail.appendedThrough} is on ${fc.to.name}` : ''}${detail.replicatedInMs !== undefined ? ` and reached ${fc.from.name} in ${detail.replicatedInMs} ms` : ''}`
}

/**
 * After a rollback: the pair as it was before the run. The old master holds the master config,
 * runs, is the one member in the murder and runs its rolling client (started by cyrus-master
 * a moment after it); the replica holds the replica config and runs sync_server. A dead old
 * master (a hard failover) is left as it was: only the replica is checked.
 */
async function pairRestored(fc: Fc): Promise<string> {
  const step = 'rollback-verify'
  const problems = (from: MemberRead, to: MemberRead) => {
    const p: string[] = []
    if (!to.state.reachable) p.push(`${fc.to.name} cannot be read: ${to.state.error}`)
    else {
      if (to.state.config !== 'replica') p.push(`${fc.to.name} holds the ${to.state.config} config, not the replica's`)
      if (!to.state.cyrusMaster.running || !to.state.syncServer) p.push(`${fc.to.name} does not run as replica (sync_server)`)
    }
    if (from.state.reachable) {
      if (from.state.config !== 'master' || !from.state.cyrusMaster.running) p.push(`${fc.from.name} is not a running master (${from.state.config} config)`)
      if (from.state.rollingClient !== 'running') p.push(`${fc.from.name}'s rolling sync_client is ${from.state.rollingClient}`)
    } else if (fc.kind !== 'hard') p.push(`${fc.from.name} cannot be read: ${from.state.error}`)
    const {conflict} = activeOf([from.state, to.state])
    if (conflict) p.push(conflict)
    return p
  }
  // cyrus-master starts the rolling client a moment after it starts: asked again for up to 20 s.
  const last = await poll(
    async () => {
      const {from, to} = await readBoth(fc)
      return {fromReachable: from.state.reachable, left: problems(from, to)}
    },
    (x) => x.left.length === 0,
    {timeoutMs: 20_000, intervalMs: 250, firstIntervalMs: 250},
  )
  if (last.left.length)
    throw new AbortError(`the pair is not as before the run: ${last.left.join('; ')}`, {step, hint: 'murderctl pair status shows both members'})
  return last.fromReachable
    ? `${fc.from.name} master with its rolling client, ${fc.to.name} replica with sync_server, one member in the murder`
    : `${fc.to.name} replica with sync_server; ${fc.from.name} unreachable, as before the run`
}

async function fenceMark(fc: Fc): Promise<string> {
  const p = writeFence(fc.ctx.inv.stateDir, {
    pair: fc.pair.name,
    member: fc.from.name,
    promoted: fc.to.name,
    at: new Date().toISOString(),
    run: fc.run,
    cutoff: fc.facts.cutoff as string | undefined,
    reason: 'hard failover: it was master and may hold changes never replicated',
  })
  fc.journal.write({event: 'note', step: 'fence-mark', data: {fenced: fc.from.name, mark: p}})
  return `${fc.from.name} marked FENCED (${p})`
}

// ---- as engine actions -------------------------------------------------------------------------

/** The failover context of a playbook run: the pair and direction from the run's options. */
export function fcOf(rc: RunContext): Fc {
  const o = FailoverOptions.parse(rc.options)
  const pair = findPair(rc.murder.inv, o.pair)
  const member = (name: string) => {
    const h = pair.members.find((m) => m.name === name)
    if (!h) throw new AbortError(`${name} is not a member of pair ${pair.name}`, {step: 'failover'})
    return h
  }
  let f = rc.facts.get('failover') as Fc | undefined
  if (!f) {
    const marks: Record<string, number> = {}
    for (const e of rc.journal.events()) {
      const d = e.data as {mark?: string; at?: number} | undefined
      if (e.event === 'note' && d?.mark && d.at) marks[d.mark] = d.at
    }
    f = {
      ctx: rc.murder,
      opts: {force: o.force, full: o.full},
      pair,
      from: member(o.from),
      to: member(o.to),
      journal: rc.journal,
      run: rc.runId,
      kind: o.kind,
      resumed: rc.resumed,
      marks,
      facts: {},
    }
    rc.facts.set('failover', f)
  }
  return f
}

const none = z.object({}).strict()

/** An action running one failover step; its detail line is the step's result. */
const pairAction = (mutating: boolean, describe: (fc: Fc) => string, run: (fc: Fc) => Promise<string>, planOnly = false) =>
  defineAction({
    mutating,
    planOnly,
    params: none,
    describe: (rc) => describe(fcOf(rc)),
    run: async (rc) => ({detail: await run(fcOf(rc))}),
  })

/** The configs both members will get, computed before anything stops, shown in the plan. */
async function planConfigs(fc: Fc): Promise<string> {
  const out: string[] = []
  if (fc.kind === 'controlled') {
    const cur = await readConfigs(fc, fc.from)
    const d = configDiffs(fc.from, cur, toReplicaConfig(cur, {unified: unified(fc)}))
    fc.facts[`diff:${fc.from.name}`] = d
    out.push(d)
  }
  const cur = await readConfigs(fc, fc.to)
  const d = configDiffs(fc.to, cur, await newMasterConfig(fc, cur))
  fc.facts[`diff:${fc.to.name}`] = d
  out.push(d)
  return `${out.filter(Boolean).length} members' configs to switch`
}

/** The replica's master config: the old master's own settings when it can be read, else its own marked lines. */
async function newMasterConfig(fc: Fc, cur: PairConfigs): Promise<PairConfigs> {
  let peer: string | undefined
  if (fc.kind === 'controlled' || fc.facts.oldReachable) {
    try {
      peer = (await fc.ctx.pool.readFile(fc.from, fc.from.cyrus.imapdConf)).toString('utf8')
    } catch {
      peer = undefined
    }
  }
  return toMasterConfig(cur, {
    settings: masterSettings(cur.imapd, peer),
    syncHost: fc.from.address,
    unified: unified(fc),
    hold: {mupdatePush: true, syncClient: true},
  })
}

const withDiff = (fc: Fc, host: Host, words: string) => {
  const d = fc.facts[`diff:${host.name}`] as string | undefined
  return d === undefined ? words : d ? `${words}\n${d.replace(/^/gm, '        ')}` : `${words} (already so)`
}

export const PAIR_ACTIONS = {
  'pair-preflight': pairAction(
    false,
    () => 'read both members',
    (fc) => (fc.kind === 'hard' ? preflightHard(fc) : preflight(fc)),
  ),
  'plan-configs': pairAction(false, () => "compute both members' new configs", planConfigs),
  'pair-hook': defineAction({
    mutating: true,
    params: z.object({which: z.enum(['pre', 'post'])}).strict(),
    describe: (rc, p) => {
      const s = fcOf(rc).pair.settings
      return (p.which === 'pre' ? s.preFailover : s.postFailover) ?? '(no hook configured)'
    },
    run: async (rc, _s, p) => ({detail: await (p.which === 'pre' ? preHook(fcOf(rc)) : postHook(fcOf(rc)))}),
  }),
  'stop-old-master': pairAction(true, (fc) => `${fc.from.cyrus.stop} on ${fc.from.name}; wait 10 s; kill what is left of its processes`, stopOld),
  'stop-member': defineAction({
    mutating: true,
    params: none,
    describe: (_rc, _p, h) => `${h?.cyrus.stop}; wait 10 s; kill what is left of its processes`,
    run: async (rc, step, _p, h) => ({detail: await stopMember(fcOf(rc), need(h, step), step.id)}),
  }),
  'drain-sync-log': pairAction(
    true,
    (fc) =>
      `on ${fc.from.name}: copy aside, then sync_client -r -f each of sync/log-run, log-*, log until none is left${fc.opts.full ? '; first sync_client -A' : ''}`,
    drain,
  ),
  'prove-agree': pairAction(false, () => 'UIDVALIDITY, last UID, HIGHESTMODSEQ, count and SYNC_CRC of every mailbox on both members must match', agree, true),
  'record-cutoff': pairAction(
    true,
    (fc) =>
      `state of every mailbox on ${fc.to.name} into ${fc.ctx.inv.stateDir}/cutoffs. MAY BE LOST: whatever ${fc.from.name} accepted and had not replicated (its sync log backlog, unknown while it is down): mail delivered, flags set, folders created or deleted there since its last replication are not on ${fc.to.name} until reconcile`,
    cutoff,
  ),
  'switch-to-replica': pairAction(
    true,
    (fc) => withDiff(fc, fc.from, `${fc.from.name}: out of the murder, no sync_log, no rolling client, no push at start, sync_server on`),
    switchOld,
  ),
  'switch-to-master': pairAction(
    true,
    (fc) =>
      withDiff(
        fc,
        fc.to,
        `${fc.to.name}: mupdate_server and credentials, sync_log: 1, sync_host: ${fc.from.address}, no sync_server (push at start and rolling client held until checked)`,
      ),
    switchNew,
  ),
  'move-address': pairAction(true, (fc) => fillCommand(fc.pair.settings.moveAddress ?? '(none)', placeholders(fc)), moveAddress),
  'move-address-back': defineAction({
    mutating: true,
    params: none,
    describe: (rc) => {
      const fc = fcOf(rc)
      return fillCommand(fc.pair.settings.moveAddress ?? '(none)', placeholders(swapped(fc)))
    },
    run: async (rc, step) => ({detail: await moveAddressBack(fcOf(rc), step.id)}),
  }),
  'start-new-master': pairAction(true, (fc) => `${fc.to.cyrus.start} on ${fc.to.name}; wait until a frontend serves the pair`, startNew),
  'enable-push-at-start': pairAction(true, (fc) => `${fc.to.name}: ctl_mboxlist -m back in START`, enablePushAtStart),
  'start-as-replica': pairAction(true, (fc) => `${fc.from.cyrus.start} on ${fc.from.name}; wait for sync_server`, startOld),
  'start-replication': pairAction(true, (fc) => `enable syncclient on ${fc.to.name} (towards ${fc.from.address}), HUP cyrus-master`, replicate),
  'mark-fenced': pairAction(
    true,
    (fc) => `${fc.from.name} FENCED in ${fc.ctx.inv.stateDir}/fenced: no replication towards it, no rejoining, until reconcile`,
    fenceMark,
  ),
  'verify-pair-restored': pairAction(false, () => 'the old master master again with its rolling client, the replica replica again', pairRestored, true),
  'verify-pair': pairAction(
    false,
    (fc) =>
      fc.kind === 'hard'
        ? 'the new master alone in the murder; IMAP through a frontend reaches it'
        : 'one member in the murder; IMAP through a frontend reaches the new master; the message reaches the replica',
    verify,
    true,
  ),
}
