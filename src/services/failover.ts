// murderctl failover: move a replication pair's master role to the other member (controlled
// switchover), or promote the replica of a dead master (--hard), and `pair fence`.
// Every step is journaled and done when its post-condition holds; a stopped run resumes with
// --resume RUN and skips what its journal says is done. Every config file is copied aside
// (checksummed, journaled, a name per run and step) before it changes.
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {AbortError, asMurderctlError, NeedsConfirmationError, RefusedError, UnreachableError} from '../errors.js'
import {lintImapdConf} from '../cyrus/imapd-conf.js'
import {masterSettings, pairConfigFacts, type PairConfigs, toMasterConfig, toReplicaConfig} from '../cyrus/pair-config.js'
import {parseCyrusConf, syncServerService} from '../cyrus/cyrus-conf.js'
import {isRemote} from '../cyrus/mboxlist-dump.js'
import {Journal, newRunId} from '../engine/journal.js'
import type {MurderContext} from '../host/context.js'
import {compareStates, mailboxStates} from '../host/mailbox-state.js'
import {mupdatePush, mupdateWarn, scanDump} from '../host/mboxlist.js'
import {activeOf, findPair, type MemberRead, otherMember, type Pair, readMember, syncBacklog, syncDir} from '../host/pair.js'
import {childRunning, copyAside, hupMaster, masterPid, tool} from '../host/remote.js'
import {ImapClient, imapString} from '../imap/client.js'
import {hostsByRole, resolvePath} from '../inventory/load.js'
import type {Host} from '../inventory/schema.js'
import {shellQuote} from '../ssh/quote.js'
import {readFence, writeFence} from '../store/fence.js'
import {sha256} from '../util/hash.js'
import {failoverHistory} from './pair.js'
import {parseImapdConf} from '../cyrus/imapd-conf.js'
import {readFileSync} from 'node:fs'

export interface FailoverOptions {
  pair: string
  to?: string
  hard: boolean
  dryRun: boolean
  /** Past the lag limit and the anti-flapping period. */
  force: boolean
  /** Also a full `sync_client -A` before the drain. */
  full: boolean
  resume?: string
  /** Ask a person (the command says how: TTY, --yes, or refuse); false stops the run. */
  confirm: (question: string, detail?: string) => Promise<boolean>
  progress: (line: string) => void
}

export interface StepReport {
  id: string
  title: string
  status: 'done' | 'skipped' | 'planned' | 'already-done'
  detail?: string
}

export interface FailoverResult {
  run: string
  journal: string
  pair: string
  kind: 'controlled' | 'hard' | 'fence'
  from: string
  to: string
  dryRun: boolean
  steps: StepReport[]
  /** From the old master stopping (hard: from the run's first change) until a frontend served the pair again. */
  serviceGapMs?: number
  verify?: Record<string, unknown>
  cutoff?: string
  fenced?: string
}

interface Fc {
  ctx: MurderContext
  opts: FailoverOptions
  pair: Pair
  from: Host
  to: Host
  journal: Journal
  run: string
  kind: 'controlled' | 'hard'
  marks: Record<string, number>
  /** What the run learned that later steps use. */
  facts: Record<string, unknown>
}

interface StepDef {
  id: string
  title: string
  mutating: boolean
  describe: (fc: Fc) => string
  run: (fc: Fc) => Promise<string | void>
}

// ---- small helpers ----------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | null | false | undefined>, host?: string, step?: string): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch(() => null)
    if (v) return v
    if (Date.now() > deadline) throw new AbortError(`${what} did not happen within ${Math.round(timeoutMs / 1000)}s`, {host, step})
    await sleep(250)
  }
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

async function runLocal(fc: Fc, step: string, cmd: string): Promise<void> {
  const filled = fillCommand(cmd, placeholders(fc))
  const started = Date.now()
  const r = await execa('sh', ['-c', filled], {reject: false, timeout: 300_000})
  fc.journal.write({event: 'command', step, host: 'local', command: filled, exitCode: r.exitCode ?? null, stdoutSha256: sha256(r.stdout), stderr: r.stderr.slice(0, 2000), durationMs: Date.now() - started})
  if (r.exitCode !== 0) throw new AbortError(`${step} command failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`, {step, hint: `fix it and resume: murderctl failover ${fc.pair.name} --resume ${fc.run}`})
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
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
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

async function readConfigs(fc: Fc, host: Host): Promise<PairConfigs> {
  const [imapd, cyrus] = await Promise.all([host.cyrus.imapdConf, host.cyrus.cyrusConf].map((p) => fc.ctx.pool.readFile(host, p).then((b) => b.toString('utf8'))))
  return {imapd: imapd!, cyrus: cyrus!}
}

function checkImapd(text: string, host: Host, step: string): void {
  const fatal = lintImapdConf(text).find((p) => p.fatal)
  if (fatal) throw new AbortError(`the new imapd.conf would be refused by Cyrus: ${fatal.message}`, {host: host.name, step, hint: 'this is a murderctl bug; nothing was written'})
}

/** Show both files' diffs and ask (once per member). */
async function applyConfigs(fc: Fc, host: Host, next: PairConfigs, step: string): Promise<string> {
  const cur = await readConfigs(fc, host)
  checkImapd(next.imapd, host, step)
  const diffs = [
    cur.imapd === next.imapd ? '' : `--- ${host.name}:${host.cyrus.imapdConf}\n${configDiff(cur.imapd, next.imapd)}`,
    cur.cyrus === next.cyrus ? '' : `--- ${host.name}:${host.cyrus.cyrusConf}\n${configDiff(cur.cyrus, next.cyrus)}`,
  ].filter(Boolean)
  if (!diffs.length) return 'already so'
  fc.journal.keep(`${step}-${host.name}.diff`, `${diffs.join('\n')}\n`)
  if (!(await fc.opts.confirm(`Write these changes on ${host.name}?`, diffs.join('\n'))))
    throw new RefusedError('stopped at the config diff: nothing written on this host', {host: host.name, step, hint: `resume with: murderctl failover ${fc.pair.name} --resume ${fc.run}`})
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

async function stopCyrus(fc: Fc, host: Host, step: string): Promise<string> {
  const pid = await masterPid(fc.ctx, host)
  if (pid === null) return 'cyrus-master was not running'
  // Its children now: whatever of them outlives the stop is killed, as Fastmail's procedure does.
  const kids = (await fc.ctx.pool.exec(host, ['pgrep', '-P', String(pid)])).stdout.split('\n').filter((x) => /^\d+$/.test(x))
  const r = await fc.ctx.pool.exec(host, {shell: host.cyrus.stop})
  fc.journal.command(step, host.name, r)
  const alive = async () => {
    const all = [String(pid), ...kids]
    const x = await fc.ctx.pool.exec(host, {shell: `for p in ${all.join(' ')}; do kill -0 "$p" 2>/dev/null && echo "$p"; done; true`})
    return x.stdout.split('\n').filter(Boolean)
  }
  const deadline = Date.now() + 10_000
  let left = await alive()
  while (left.length && Date.now() < deadline) {
    await sleep(500)
    left = await alive()
  }
  for (const sig of ['TERM', 'KILL']) {
    if (!left.length) break
    await fc.ctx.pool.exec(host, ['kill', `-${sig}`, ...left])
    await sleep(sig === 'TERM' ? 3000 : 500)
    left = await alive()
  }
  if (left.length) throw new AbortError(`processes ${left.join(', ')} of cyrus-master ${pid} survive kill -KILL`, {host: host.name, step})
  return `stopped cyrus-master ${pid} (${kids.length} children)`
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

async function readBoth(fc: Fc): Promise<{from: MemberRead; to: MemberRead}> {
  const [from, to] = await Promise.all([readMember(fc.ctx, fc.from), readMember(fc.ctx, fc.to)])
  return {from, to}
}

async function preflight(fc: Fc): Promise<string> {
  const step = 'preflight'
  const {from, to} = await readBoth(fc)
  for (const m of [from, to]) if (!m.state.reachable) throw new UnreachableError(`${m.state.name} cannot be read: ${m.state.error}`, {host: m.state.name, step, hint: m.state.name === fc.from.name ? `if it is dead, promote the replica with: murderctl failover ${fc.pair.name} --hard` : undefined})
  for (const m of [fc.from, fc.to]) {
    const f = readFence(fc.ctx.inv.stateDir, m.name)
    if (f) throw new RefusedError(`${m.name} is FENCED since ${f.at} (hard failover run ${f.run}): it may hold changes the other member lacks`, {host: m.name, step, hint: 'run reconcile first; it lifts the mark'})
  }
  const {conflict} = activeOf([from.state, to.state])
  if (conflict) throw new RefusedError(`pair ${fc.pair.name}: ${conflict}`, {step, hint: 'settle the split brain first (reconcile)'})
  if (from.state.config !== 'master' || !from.state.cyrusMaster.running) throw new RefusedError(`${fc.from.name} is not a running master (config ${from.state.config}, cyrus-master ${from.state.cyrusMaster.running ? 'up' : 'down'})`, {host: fc.from.name, step})
  if (to.state.config !== 'replica') throw new RefusedError(`${fc.to.name} does not hold the replica config (${to.state.config})`, {host: fc.to.name, step, hint: 'a half-switched pair: fix it by hand or resume the run that left it so'})
  if (!to.state.cyrusMaster.running) throw new RefusedError(`cyrus-master is not running on the replica ${fc.to.name}: replication to it is stopped`, {host: fc.to.name, step})
  if (from.state.rollingClient !== 'running') throw new RefusedError(`the rolling sync_client on ${fc.from.name} is ${from.state.rollingClient}: ${fc.to.name} is not receiving changes`, {host: fc.from.name, step, hint: 'start replication and let it catch up first'})
  const s = fc.pair.settings
  const lag = from.state.backlog!
  if ((lag.bytes > s.maxLagBytes || lag.ageSeconds > s.maxLagSeconds) && !fc.opts.force)
    throw new RefusedError(`${fc.from.name}'s sync log is behind: ${lag.bytes} bytes, oldest ${lag.ageSeconds}s (limits ${s.maxLagBytes} bytes, ${s.maxLagSeconds}s)`, {host: fc.from.name, step, hint: 'wait for replication to catch up, or --force'})
  if (!s.moveAddress) throw new RefusedError(`pair ${fc.pair.name} has no moveAddress command in the inventory: the frontends would keep reaching the old member`, {step, hint: 'add pairs: [{backend: ..., moveAddress: ...}] (see README)'})
  antiFlap(fc, step)
  // The replica's mailbox list equals the master's local one.
  const local = new Set<string>()
  const replica = new Set<string>()
  await Promise.all([scanDump(fc.ctx, fc.from, (e) => !isRemote(e) && local.add(e.name), step), scanDump(fc.ctx, fc.to, (e) => !isRemote(e) && replica.add(e.name), step)])
  const missing = [...local].filter((n) => !replica.has(n))
  const extra = [...replica].filter((n) => !local.has(n))
  if (missing.length || extra.length)
    throw new RefusedError(`the mailbox lists differ: ${missing.length} only on ${fc.from.name} (${missing.slice(0, 3).join(', ')}), ${extra.length} only on ${fc.to.name} (${extra.slice(0, 3).join(', ')})`, {step, hint: 'let replication catch up (sync_client -A), then run again'})
  fc.facts.mailboxes = local.size
  return `${fc.from.name} master, ${fc.to.name} replica; ${local.size} mailboxes on both; backlog ${lag.bytes} bytes`
}

function antiFlap(fc: Fc, step: string): void {
  const last = failoverHistory(fc.ctx.inv.stateDir, fc.pair.name).filter((h) => h.outcome === 'done' && h.run !== fc.run && h.kind !== 'fence').pop()
  const min = fc.pair.settings.minIntervalSeconds
  if (last?.endedAt && Date.now() - Date.parse(last.endedAt) < min * 1000 && !fc.opts.force)
    throw new RefusedError(`pair ${fc.pair.name} failed over ${Math.round((Date.now() - Date.parse(last.endedAt)) / 1000)}s ago (run ${last.run}); the anti-flapping period is ${min}s`, {step, hint: 'find out why first; --force overrides'})
}

async function preflightHard(fc: Fc): Promise<string> {
  const step = 'preflight'
  const {from, to} = await readBoth(fc)
  if (!to.state.reachable) throw new UnreachableError(`the replica ${fc.to.name} cannot be read: ${to.state.error}`, {host: fc.to.name, step})
  if (from.state.reachable && from.state.cyrusMaster.running && !fc.opts.force)
    throw new RefusedError(`${fc.from.name} is reachable and its cyrus-master runs: this is no dead master`, {host: fc.from.name, step, hint: `use a controlled failover (murderctl failover ${fc.pair.name}), or --force`})
  const f = readFence(fc.ctx.inv.stateDir, fc.to.name)
  if (f) throw new RefusedError(`${fc.to.name} is FENCED (run ${f.run}): promoting it could lose what ${f.promoted} took since`, {host: fc.to.name, step, hint: 'run reconcile first'})
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
    fc.opts.progress(`! postFailover hook failed: ${msg}`)
    return `postFailover hook FAILED: ${msg}`
  }
}

async function stopOld(fc: Fc): Promise<string> {
  fc.marks.stopStartedAt ??= Date.now()
  fc.journal.write({event: 'note', step: 'stop-old', data: {mark: 'stopStartedAt', at: fc.marks.stopStartedAt}})
  return stopCyrus(fc, fc.from, 'stop-old')
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
    if (r.exitCode !== 0) throw new AbortError(`sync_client -A failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').pop() ?? ''}`, {host: host.name, step})
  }
  for (let round = 0; round < 5; round++) {
    const backlog = await syncBacklog(fc.ctx, host, imapd)
    // log-run is the rolling client's work file (older than log), log-<PID> leftovers of failed runs.
    const files = backlog.files.filter((f) => f.bytes > 0).sort((a, b) => (a.file === 'log') === (b.file === 'log') ? a.file.localeCompare(b.file) : a.file === 'log' ? 1 : -1)
    if (!files.length) return replayed.length ? `replayed ${replayed.join(', ')}` : 'nothing to replay'
    for (const f of files) {
      const path = `${dir}/${f.file}`
      const saved = fc.journal.saved(step, await copyAside(fc.ctx, host, path, `${fc.run}-${step}-${round}`, step))
      const r = await fc.ctx.pool.exec(host, [tool(host, 'sync_client'), '-r', '-f', path])
      fc.journal.command(step, host.name, r)
      if (r.exitCode !== 0 || /error|fail/i.test(r.stderr))
        throw new AbortError(`sync_client -r -f ${path} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').pop() ?? ''}`, {host: host.name, step, hint: `the log is kept (copy ${saved.copy}); fix replication to ${fc.to.name} and resume, or restart ${fc.from.name} (${host.cyrus.start}) to abandon`})
      // Replayed: the file goes, only if it is still what was replayed (its copy stays).
      const q = shellQuote(path)
      await fc.ctx.pool.execOk(host, {shell: `[ "$(sha256sum -- ${q} | cut -d' ' -f1)" = ${shellQuote(saved.sha256)} ] && rm -f -- ${q}`})
      replayed.push(`${f.file} (${f.bytes} bytes)`)
    }
  }
  throw new AbortError('the sync log keeps refilling with cyrus-master stopped', {host: host.name, step, hint: 'something else writes to it; find it and resume'})
}

/** Both members' mailboxes agree, one by one: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, count, digest. */
async function agree(fc: Fc): Promise<string> {
  const step = 'agree'
  const [a, b] = await Promise.all([mailboxStates(fc.ctx, fc.from), mailboxStates(fc.ctx, fc.to)])
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
  const states = await mailboxStates(fc.ctx, fc.to)
  const dir = join(fc.ctx.inv.stateDir, 'cutoffs')
  mkdirSync(dir, {recursive: true})
  const path = join(dir, `${fc.pair.name}-${fc.to.name}-${fc.run}.json`)
  writeFileSync(path, `${JSON.stringify({pair: fc.pair.name, promoted: fc.to.name, lost: fc.from.name, at: new Date().toISOString(), run: fc.run, mailboxes: states}, null, 1)}\n`)
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
  const next = toMasterConfig(cur, {settings: masterSettings(cur.imapd, peer), syncHost: fc.from.address, unified: unified(fc), hold: {mupdatePush: true, syncClient: true}})
  return applyConfigs(fc, fc.to, next, 'switch-new')
}

async function moveAddress(fc: Fc): Promise<string> {
  fc.marks.firstChangeAt ??= Date.now()
  await runLocal(fc, 'move-address', fc.pair.settings.moveAddress!)
  return `${fc.pair.servername} now reaches ${fc.to.name} (${fc.to.address})`
}

async function startNew(fc: Fc): Promise<string> {
  const step = 'start-new'
  fc.marks.firstChangeAt ??= Date.now()
  const pid = await startCyrus(fc, fc.to, step)
  const probe = probeSettings(fc)
  if (probe) {
    await waitFor(`${fc.pair.servername} serving through a frontend`, 60_000, () => servesThroughFrontend(fc, probe), fc.to.name, step)
    fc.marks.servedAt = Date.now()
    fc.journal.write({event: 'note', step, data: {mark: 'servedAt', at: fc.marks.servedAt}})
  }
  return `cyrus-master ${pid} on ${fc.to.name}${probe ? ', serving through a frontend' : ''}`
}

/** `ctl_mboxlist -m -w` on the new master must print nothing; else show it and ask before -m. Then its push at start goes back on. */
async function pushCheck(fc: Fc): Promise<string> {
  const step = 'push-check'
  const w = await mupdateWarn(fc.ctx, fc.to, step)
  let said = '-m -w printed nothing'
  if (w.changes) {
    const lines = [...w.plan.activate.map((n) => `Force Activate: ${n}`), ...w.plan.removeFromMupdate.map((n) => `Remove from MUPDATE: ${n}`), ...w.plan.removeRemoteFlag.map((n) => `Remove remote flag on: ${n}`), ...w.plan.removeLocal.map((n) => `Remove Local Mailbox: ${n}`)]
    fc.journal.keep('push-check.txt', `${lines.join('\n')}\n`)
    if (w.plan.removeLocal.length) throw new RefusedError(`ctl_mboxlist -m on ${fc.to.name} would delete ${w.plan.removeLocal.length} local mailboxes`, {host: fc.to.name, step, hint: 'the murder knows them on another server: reconcile by hand'})
    if (!(await fc.opts.confirm(`ctl_mboxlist -m on ${fc.to.name} would make ${w.changes} changes in the murder. Push them?`, lines.slice(0, 40).join('\n'))))
      throw new RefusedError('stopped before pushing the new master\'s mailbox list', {host: fc.to.name, step, hint: `resume with --resume ${fc.run}`})
    await mupdatePush(fc.ctx, fc.to, {step, record: (r) => fc.journal.command(step, fc.to.name, r)})
    const again = await mupdateWarn(fc.ctx, fc.to, step)
    if (again.changes) throw new AbortError(`ctl_mboxlist -m -w still lists ${again.changes} changes after the push`, {host: fc.to.name, step})
    said = `pushed ${w.changes} changes`
  }
  const cur = await readConfigs(fc, fc.to)
  const next = toMasterConfig(cur, {settings: masterSettings(cur.imapd), syncHost: fc.from.address, unified: unified(fc), hold: {syncClient: true}})
  await writeConfig(fc, fc.to, fc.to.cyrus.cyrusConf, next.cyrus, step)
  return `${said}; push at start enabled again`
}

async function startOld(fc: Fc): Promise<string> {
  const step = 'start-old'
  const pid = await startCyrus(fc, fc.from, step)
  const port = syncServerPort((await fc.ctx.pool.readFile(fc.from, fc.from.cyrus.cyrusConf)).toString('utf8'))
  await waitFor(`sync_server listening on ${fc.from.name}:${port}`, 30_000, async () => (await fc.ctx.pool.exec(fc.from, {shell: `ss -Htln '( sport = :${port} )' | grep -q .`})).exitCode === 0, fc.from.name, step)
  return `cyrus-master ${pid} on ${fc.from.name} as replica, sync_server on port ${port}`
}

async function replicate(fc: Fc): Promise<string> {
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
      [`From: murderctl <murderctl@${fc.pair.servername}>`, `To: ${probe.user}`, `Subject: murderctl failover ${fc.run}`, `Message-ID: ${messageId}`, `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`, '', `Failover of ${fc.pair.name} to ${fc.to.name}: probe message.`, ''].join('\r\n'),
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
          const [x, y] = await Promise.all([mailboxStates(fc.ctx, fc.to, {mailboxes: [probe.mailbox]}), mailboxStates(fc.ctx, fc.from, {mailboxes: [probe.mailbox]})])
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
  if (problems.length) throw new AbortError(`verification failed: ${problems.join('; ')}`, {step, hint: 'look at `murderctl pair status`; the journal has every copy taken'})
  return `one member in the murder (${fc.to.name})${detail.appendedThrough ? `; a message appended through ${detail.appendedThrough} is on ${fc.to.name}` : ''}${detail.replicatedInMs !== undefined ? ` and reached ${fc.from.name} in ${detail.replicatedInMs} ms` : ''}`
}

async function fenceMark(fc: Fc): Promise<string> {
  const p = writeFence(fc.ctx.inv.stateDir, {pair: fc.pair.name, member: fc.from.name, promoted: fc.to.name, at: new Date().toISOString(), run: fc.run, cutoff: fc.facts.cutoff as string | undefined, reason: 'hard failover: it was master and may hold changes never replicated'})
  fc.journal.write({event: 'note', step: 'fence-mark', data: {fenced: fc.from.name, mark: p}})
  return `${fc.from.name} marked FENCED (${p})`
}

const CONTROLLED: StepDef[] = [
  {id: 'preflight', title: 'Preflight: both members, replication healthy, lag within limits, same mailbox list, anti-flapping', mutating: false, describe: () => 'read both members', run: preflight},
  {id: 'pre-hook', title: 'Pre-failover hook', mutating: true, describe: (fc) => fc.pair.settings.preFailover ?? '(none)', run: preHook},
  {id: 'stop-old', title: 'Stop the old master', mutating: true, describe: (fc) => `${fc.from.cyrus.stop} on ${fc.from.name}; wait 10 s; kill what is left`, run: stopOld},
  {id: 'drain', title: 'Drain the sync log', mutating: true, describe: (fc) => `on ${fc.from.name}: copy aside, then sync_client -r -f each of sync/log-run, log-*, log until none is left${fc.opts.full ? '; first sync_client -A' : ''}`, run: drain},
  {id: 'agree', title: 'Prove the members agree, mailbox by mailbox', mutating: false, describe: () => 'UIDVALIDITY, last UID, HIGHESTMODSEQ, count and SYNC_CRC of every mailbox on both', run: agree},
  {id: 'stop-new', title: 'Stop the replica', mutating: true, describe: (fc) => `${fc.to.cyrus.stop} on ${fc.to.name} (it restarts with the master config)`, run: (fc) => stopCyrus(fc, fc.to, 'stop-new')},
  {id: 'switch-old', title: 'Old master to the replica config', mutating: true, describe: (fc) => `${fc.from.name}: comment out mupdate_server, sync_log, sync_host; disable mupdatepush and syncclient; enable sync_server`, run: switchOld},
  {id: 'switch-new', title: 'Replica to the master config', mutating: true, describe: (fc) => `${fc.to.name}: mupdate_server and credentials, sync_log: 1, sync_host: ${fc.from.address}; disable sync_server (push at start and rolling client held until checked)`, run: switchNew},
  {id: 'move-address', title: 'Move the service address', mutating: true, describe: (fc) => fillCommand(fc.pair.settings.moveAddress ?? '(none)', placeholders(fc)), run: moveAddress},
  {id: 'start-new', title: 'Start the new master', mutating: true, describe: (fc) => `${fc.to.cyrus.start} on ${fc.to.name}; wait until a frontend serves the pair`, run: startNew},
  {id: 'push-check', title: 'ctl_mboxlist -m -w on the new master', mutating: true, describe: (fc) => `on ${fc.to.name}: must print nothing (else show and ask before -m); then enable its push at start`, run: pushCheck},
  {id: 'start-old', title: 'Start the old master as replica', mutating: true, describe: (fc) => `${fc.from.cyrus.start} on ${fc.from.name}; wait for sync_server`, run: startOld},
  {id: 'replicate', title: 'Rolling replication towards the old master', mutating: true, describe: (fc) => `enable syncclient on ${fc.to.name}, HUP cyrus-master`, run: replicate},
  {id: 'verify', title: 'Verify', mutating: false, describe: () => 'one member in the murder; IMAP through a frontend reaches the new master; the message reaches the replica', run: verify},
  {id: 'post-hook', title: 'Post-failover hook', mutating: true, describe: (fc) => fc.pair.settings.postFailover ?? '(none)', run: postHook},
]

const HARD: StepDef[] = [
  {id: 'preflight', title: 'Preflight: the old master is dead, the replica answers, anti-flapping', mutating: false, describe: () => 'read both members', run: preflightHard},
  {id: 'pre-hook', title: 'Pre-failover hook', mutating: true, describe: (fc) => fc.pair.settings.preFailover ?? '(none)', run: preHook},
  {id: 'cutoff', title: 'Record the cutoff', mutating: true, describe: (fc) => `state of every mailbox on ${fc.to.name} into the state dir`, run: cutoff},
  {id: 'switch-new', title: 'Replica to the master config', mutating: true, describe: (fc) => `${fc.to.name}: mupdate_server and credentials, sync_log: 1, sync_host: ${fc.from.address}; disable sync_server`, run: switchNew},
  {id: 'move-address', title: 'Move the service address', mutating: true, describe: (fc) => fillCommand(fc.pair.settings.moveAddress ?? '(none)', placeholders(fc)), run: moveAddress},
  {id: 'stop-new', title: 'Restart the new master with its new config', mutating: true, describe: (fc) => `${fc.to.cyrus.stop} on ${fc.to.name}`, run: (fc) => stopCyrus(fc, fc.to, 'stop-new')},
  {id: 'start-new', title: 'Start the new master', mutating: true, describe: (fc) => `${fc.to.cyrus.start} on ${fc.to.name}; wait until a frontend serves the pair`, run: startNew},
  {id: 'push-check', title: 'ctl_mboxlist -m -w on the new master', mutating: true, describe: (fc) => `on ${fc.to.name}: must print nothing (else show and ask); then enable its push at start`, run: pushCheck},
  {id: 'fence-mark', title: 'Mark the old master FENCED', mutating: true, describe: (fc) => `${fc.from.name} FENCED in ${fc.ctx.inv.stateDir}/fenced: no replication towards it, no rejoining, until reconcile`, run: fenceMark},
  {id: 'verify', title: 'Verify', mutating: false, describe: () => 'the new master in the murder; IMAP through a frontend reaches it', run: verify},
  {id: 'post-hook', title: 'Post-failover hook', mutating: true, describe: (fc) => fc.pair.settings.postFailover ?? '(none)', run: postHook},
]

// ---- running ----------------------------------------------------------------------------------

async function discover(ctx: MurderContext, pair: Pair, opts: FailoverOptions): Promise<{from: Host; to: Host}> {
  const reads = await Promise.all(pair.members.map((m) => readMember(ctx, m)))
  const {active} = activeOf(reads.map((r) => r.state))
  let from: Host | undefined
  if (active) from = pair.members.find((m) => m.name === active)
  else if (opts.hard) {
    // The dead master: the member that cannot be read (or whose files still say master) while the other holds the replica config.
    const dead = reads.filter((r) => !r.state.reachable || (r.state.config === 'master' && !r.state.cyrusMaster.running))
    if (dead.length === 1) from = pair.members.find((m) => m.name === dead[0]!.state.name)
  }
  if (!from) {
    const desc = reads.map((r) => `${r.state.name}: ${r.state.reachable ? `${r.state.config} config, cyrus-master ${r.state.cyrusMaster.running ? 'up' : 'down'}` : 'unreachable'}`).join('; ')
    throw new RefusedError(`cannot tell which member of pair ${pair.name} is master (${desc})`, {step: 'discover', hint: opts.hard ? 'a hard failover needs exactly one dead member' : `if the master is dead: murderctl failover ${pair.name} --hard`})
  }
  const to = otherMember(pair, from.name)
  if (opts.to && !pair.members.some((m) => m.name === opts.to)) throw new RefusedError(`${opts.to} is not a member of pair ${pair.name} (${pair.members.map((m) => m.name).join(', ')})`, {step: 'discover'})
  if (opts.to && opts.to === from.name) throw new RefusedError(`${opts.to} is already the active member of pair ${pair.name}`, {step: 'discover', hint: 'nothing to do'})
  return {from, to}
}

export async function failover(ctx: MurderContext, opts: FailoverOptions): Promise<FailoverResult> {
  const pair = findPair(ctx.inv, opts.pair)
  let run: string
  let journal: Journal
  let from: Host
  let to: Host
  let kind: 'controlled' | 'hard' = opts.hard ? 'hard' : 'controlled'
  const marks: Record<string, number> = {}
  let done = new Set<string>()
  if (opts.resume) {
    run = opts.resume
    try {
      journal = Journal.open(ctx.inv.stateDir, run)
    } catch (error) {
      throw new RefusedError(`no run ${run} to resume: ${(error as Error).message}`, {step: 'resume'})
    }
    const events = journal.events()
    const start = events.find((e) => e.event === 'run-start')?.data as {pair: string; from: string; to: string; kind: 'controlled' | 'hard'; dryRun?: boolean}
    if (!start || start.pair !== pair.name || start.dryRun) throw new RefusedError(`run ${run} is not a failover of pair ${pair.name}`, {step: 'resume'})
    from = pair.members.find((m) => m.name === start.from)!
    to = pair.members.find((m) => m.name === start.to)!
    kind = start.kind
    done = new Set(events.filter((e) => e.event === 'step-done' && e.step).map((e) => e.step!))
    for (const e of events) if (e.event === 'note' && (e.data as {mark?: string})?.mark) marks[(e.data as {mark: string}).mark] = (e.data as {at: number}).at
    journal.write({event: 'note', step: 'resume', data: {done: [...done]}})
  } else {
    ;({from, to} = await discover(ctx, pair, opts))
    run = newRunId('failover')
    journal = new Journal(ctx.inv.stateDir, run)
    journal.write({event: 'run-start', data: {pair: pair.name, kind, from: from.name, to: to.name, dryRun: opts.dryRun, force: opts.force, full: opts.full}})
  }
  const fc: Fc = {ctx, opts, pair, from, to, journal, run, kind, marks, facts: {}}
  const steps = kind === 'hard' ? HARD : CONTROLLED
  const reports: StepReport[] = []
  const result: FailoverResult = {run, journal: journal.path, pair: pair.name, kind, from: from.name, to: to.name, dryRun: opts.dryRun, steps: reports}
  opts.progress(`${kind} failover of pair ${pair.name} (${pair.servername}): ${from.name} -> ${to.name}, run ${run}`)

  if (opts.dryRun) {
    // Read-only steps run (preflight), the rest is shown.
    for (const s of steps) {
      if (!s.mutating && s.id === 'preflight') {
        const detail = (await s.run(fc)) ?? ''
        reports.push({id: s.id, title: s.title, status: 'done', detail})
      } else reports.push({id: s.id, title: s.title, status: 'planned', detail: s.describe(fc)})
    }
    journal.write({event: 'run-end', data: {outcome: 'dry-run'}})
    return result
  }

  let consented = !!opts.resume
  try {
    for (const s of steps) {
      if (done.has(s.id)) {
        reports.push({id: s.id, title: s.title, status: 'already-done'})
        continue
      }
      if (s.mutating && !consented) {
        const plan = steps.filter((x) => !done.has(x.id)).map((x, i) => `  ${i + 1}. ${x.title}: ${x.describe(fc)}`).join('\n')
        const what =
          kind === 'hard'
            ? `HARD failover of ${pair.name}: ${to.name} is promoted WITHOUT draining ${from.name}. Whatever ${from.name} accepted and had not replicated (its sync log backlog, unknown while it is down) is NOT on ${to.name}: mail delivered, flags set, folders created there since its last replication may be lost until reconcile. ${from.name} will be FENCED.`
            : `Controlled failover of ${pair.name}: ${from.name} stops (mail to ${pair.servername} is unavailable until ${to.name} serves), its sync log is drained to ${to.name}, configs switch, the address moves.`
        if (!(await opts.confirm(`${what}\nProceed?`, plan))) throw new RefusedError('not confirmed: nothing changed', {step: s.id})
        consented = true
      }
      journal.write({event: 'step-start', step: s.id})
      opts.progress(`- ${s.title} ...`)
      const detail = (await s.run(fc)) ?? ''
      journal.write({event: 'step-done', step: s.id, data: {detail}})
      opts.progress(`  ${detail}`)
      reports.push({id: s.id, title: s.title, status: 'done', detail})
    }
  } catch (error) {
    const e = asMurderctlError(error)
    const current = steps.find((s) => !reports.some((r) => r.id === s.id))
    journal.write({event: 'step-failed', step: e.step ?? current?.id, host: e.host, data: {message: e.message}})
    // A refusal before any change is no failed run: it ends here. Otherwise it stays resumable.
    const changed = reports.some((r) => r.status === 'done' && steps.find((x) => x.id === r.id)?.mutating) || done.size > 0
    journal.write({event: 'run-end', data: {outcome: changed ? 'failed' : e instanceof NeedsConfirmationError || e instanceof RefusedError ? 'refused' : 'failed'}})
    if (e instanceof NeedsConfirmationError) throw e
    if (changed && !e.hint?.includes('--resume')) (e as {hint?: string}).hint = `${e.hint ? `${e.hint}; ` : ''}resume with: murderctl failover ${pair.name} --resume ${run}`
    throw e
  }
  const start = marks.stopStartedAt ?? marks.firstChangeAt
  if (start && marks.servedAt) result.serviceGapMs = marks.servedAt - start
  result.verify = fc.facts.verify as Record<string, unknown> | undefined
  result.cutoff = fc.facts.cutoff as string | undefined
  if (kind === 'hard') result.fenced = from.name
  journal.write({event: 'run-end', data: {outcome: 'done', serviceGapMs: result.serviceGapMs}})
  return result
}

// ---- pair fence --------------------------------------------------------------------------------

export interface FenceOptions {
  member: string
  dryRun: boolean
  confirm: (question: string, detail?: string) => Promise<boolean>
  progress: (line: string) => void
}

/**
 * Rewrite a returning old master's configs to the replica ones, without starting Cyrus (it is
 * stopped first if it runs). Refused when the member is the pair's only master.
 */
export async function fenceMember(ctx: MurderContext, opts: FenceOptions): Promise<FailoverResult> {
  const host = ctx.inv.hosts.find((h) => h.name === opts.member)
  const pair = host && (host.role === 'replica' ? findPair(ctx.inv, host.replicaOf!) : findPair(ctx.inv, host.name))
  if (!host || !pair) throw new RefusedError(`${opts.member} is not a member of a replication pair`, {step: 'fence'})
  const peer = otherMember(pair, host.name)
  const [me, other] = await Promise.all([readMember(ctx, host), readMember(ctx, peer)])
  if (!me.state.reachable) throw new UnreachableError(`${host.name} cannot be read: ${me.state.error}`, {host: host.name, step: 'fence'})
  if (!(other.state.config === 'master' && other.state.cyrusMaster.running) && !readFence(ctx.inv.stateDir, host.name))
    throw new RefusedError(`${peer.name} is not a running master and ${host.name} is not marked FENCED: fencing ${host.name} would leave the pair without a master`, {host: host.name, step: 'fence'})
  const run = newRunId('fence')
  const journal = new Journal(ctx.inv.stateDir, run)
  journal.write({event: 'run-start', data: {pair: pair.name, kind: 'fence', from: host.name, to: peer.name, dryRun: opts.dryRun}})
  const fc: Fc = {ctx, opts: {pair: pair.name, hard: false, dryRun: opts.dryRun, force: false, full: false, confirm: opts.confirm, progress: opts.progress}, pair, from: host, to: peer, journal, run, kind: 'hard', marks: {}, facts: {}}
  const steps: StepReport[] = []
  const result: FailoverResult = {run, journal: journal.path, pair: pair.name, kind: 'fence', from: host.name, to: peer.name, dryRun: opts.dryRun, steps}
  const cur = {imapd: me.imapdText!, cyrus: me.cyrusText!}
  const next = toReplicaConfig(cur, {unified: ctx.inv.mode === 'unified'})
  const running = me.state.cyrusMaster.running
  if (opts.dryRun) {
    if (running) steps.push({id: 'stop', title: `Stop cyrus-master on ${host.name}`, status: 'planned', detail: host.cyrus.stop})
    steps.push({id: 'fence', title: `Replica config on ${host.name}, Cyrus not started`, status: 'planned', detail: `${configDiff(cur.imapd, next.imapd)}\n${configDiff(cur.cyrus, next.cyrus)}`})
    journal.write({event: 'run-end', data: {outcome: 'dry-run'}})
    return result
  }
  try {
    if (!(await opts.confirm(`Fence ${host.name}: ${running ? 'stop its cyrus-master and ' : ''}rewrite its configs to the replica ones (Cyrus is not started)?`))) throw new RefusedError('not confirmed: nothing changed', {step: 'fence'})
    if (running) steps.push({id: 'stop', title: `Stop cyrus-master on ${host.name}`, status: 'done', detail: await stopCyrus(fc, host, 'stop')})
    const detail = await applyConfigs(fc, host, next, 'fence')
    const after = await readMember(ctx, host)
    if (after.state.config !== 'replica') throw new AbortError(`${host.name} still does not hold the replica config (${after.state.config})`, {host: host.name, step: 'fence'})
    steps.push({id: 'fence', title: `Replica config on ${host.name}, Cyrus not started`, status: 'done', detail})
  } catch (error) {
    journal.write({event: 'run-end', data: {outcome: 'failed'}})
    throw error
  }
  journal.write({event: 'run-end', data: {outcome: 'done'}})
  result.fenced = host.name
  return result
}

export {pairConfigFacts}

// ---- pair replicate ----------------------------------------------------------------------------

/**
 * Start (or restart) replication from the pair's master towards the other member: the member must
 * hold the replica config and not be FENCED; its Cyrus is started if stopped, then the master's
 * rolling client is enabled. What a hard failover leaves for after reconcile.
 */
export async function startReplication(ctx: MurderContext, opts: {pair: string; dryRun: boolean; confirm: (q: string) => Promise<boolean>; progress: (l: string) => void}): Promise<FailoverResult> {
  const pair = findPair(ctx.inv, opts.pair)
  const reads = await Promise.all(pair.members.map((m) => readMember(ctx, m)))
  const {active, conflict} = activeOf(reads.map((r) => r.state))
  if (conflict) throw new RefusedError(`pair ${pair.name}: ${conflict}`, {step: 'replicate'})
  if (!active) throw new RefusedError(`pair ${pair.name} has no running master`, {step: 'replicate'})
  const from = pair.members.find((m) => m.name === active)!
  const to = otherMember(pair, active)
  const target = reads.find((r) => r.state.name === to.name)!.state
  const f = readFence(ctx.inv.stateDir, to.name)
  if (f) throw new RefusedError(`${to.name} is FENCED since ${f.at}: no replication towards it until reconcile has run`, {host: to.name, step: 'replicate'})
  if (!target.reachable) throw new UnreachableError(`${to.name} cannot be read: ${target.error}`, {host: to.name, step: 'replicate'})
  if (target.config !== 'replica') throw new RefusedError(`${to.name} holds the ${target.config} config, not the replica one`, {host: to.name, step: 'replicate', hint: `murderctl pair fence ${to.name}`})
  const run = newRunId('replicate')
  const journal = new Journal(ctx.inv.stateDir, run)
  journal.write({event: 'run-start', data: {pair: pair.name, kind: 'replicate', from: active, to: to.name, dryRun: opts.dryRun}})
  // Roles as in a failover's last steps: `from` is the replica side there, so swap.
  const fc: Fc = {ctx, opts: {pair: pair.name, hard: false, dryRun: opts.dryRun, force: false, full: false, confirm: async (q) => opts.confirm(q), progress: opts.progress}, pair, from: to, to: from, journal, run, kind: 'controlled', marks: {}, facts: {}}
  const steps: StepReport[] = []
  const result: FailoverResult = {run, journal: journal.path, pair: pair.name, kind: 'controlled', from: active, to: to.name, dryRun: opts.dryRun, steps}
  const plan = [...(target.cyrusMaster.running ? [] : [{id: 'start-old', title: `Start ${to.name} as replica`, run: startOld}]), {id: 'replicate', title: `Rolling replication ${active} -> ${to.name}`, run: replicate}]
  if (opts.dryRun) {
    for (const s of plan) steps.push({id: s.id, title: s.title, status: 'planned'})
    journal.write({event: 'run-end', data: {outcome: 'dry-run'}})
    return result
  }
  if (!(await opts.confirm(`Start replication ${active} -> ${to.name}?`))) throw new RefusedError('not confirmed: nothing changed', {step: 'replicate'})
  try {
    for (const s of plan) {
      journal.write({event: 'step-start', step: s.id})
      const detail = (await s.run(fc)) ?? ''
      journal.write({event: 'step-done', step: s.id, data: {detail}})
      steps.push({id: s.id, title: s.title, status: 'done', detail})
    }
  } catch (error) {
    journal.write({event: 'run-end', data: {outcome: 'failed'}})
    throw error
  }
  journal.write({event: 'run-end', data: {outcome: 'done'}})
  return result
}
