// The actions playbooks name. Each says whether it changes a host (a dry run does not run
// those), what it will send (for the plan), and does it. Every file it changes is copied or
// moved aside first, with its checksum, and the journal says where.
import {AbortError, asMurderctlError, HostKeyError, RefusedError, UnexpectedOutputError, UnreachableError} from '../errors.js'
import {disableService, enableService, mupdateService, parseCyrusConf} from '../cyrus/cyrus-conf.js'
import {isLiveLocal, type MailboxEntry} from '../cyrus/mboxlist-dump.js'
import {hostsByRole, master} from '../inventory/load.js'
import type {Host} from '../inventory/schema.js'
import {dbInfo, installDb, snapshotDb} from '../host/db.js'
import {latestVerifiedBackup, readVerifiedBackup} from '../store/backups.js'
import {saveDbAside} from './journal.js'
import {sha256} from '../util/hash.js'
import {localMupdateWarn, mailboxLocations, mupdatePush, mupdateWarn, scanDump} from '../host/mboxlist.js'
import {copyAside, hupMaster, moveAside, tool} from '../host/remote.js'
import {shellQuote} from '../ssh/quote.js'
import type {ExecResult} from '../ssh/types.js'
import {mapLimit} from '../util/limit.js'
import {acquireLock, ownerHere, releaseLock} from '../host/lock.js'
import {checkCondition} from './conditions.js'
import type {PushDiff, RunContext} from './context.js'
import type {ActionName, Step} from './playbook.js'

export interface Action {
  mutating: boolean
  /** A read-only action that only makes sense after the mutating ones: planned, not run, in a dry run. */
  planOnly?: boolean
  /** What it will do on this host, in words and commands, for the plan. */
  describe: (rc: RunContext, step: Step, host?: Host) => string
  run: (rc: RunContext, step: Step, host?: Host) => Promise<Record<string, unknown> | void>
}

const need = (host: Host | undefined, step: Step): Host => {
  if (!host) throw new AbortError(`step ${step.id} needs a host`, {step: step.id})
  return host
}

// ---- preflight -------------------------------------------------------------------------------

async function preflight(rc: RunContext, step: Step): Promise<Record<string, unknown>> {
  const ctx = rc.murder
  const m = master(ctx.inv)
  const backends = hostsByRole(ctx.inv, 'backend')
  // Every host answers before anything starts, or the operator names the dead ones to skip.
  const down = (
    await mapLimit(ctx.inv.hosts, ctx.concurrency, async (h) =>
      ctx.pool.execOk(h, ['true']).then(
        () => null,
        (error) => asMurderctlError(error).at({host: h.name}),
      ),
    )
  ).filter((e) => e !== null)
  if (down.length)
    // The same fault, the same exit code in every command: a host key problem is 5, not 4.
    throw new (down.some((e) => e.code === 'hostKey') ? HostKeyError : UnreachableError)(down.map((e) => `${e.host}: ${e.message}`).join('; '), {
      host: down[0].host,
      step: step.id,
      hint: `bring ${down.map((e) => e.host).join(', ')} back, or leave ${down.length > 1 ? 'them' : 'it'} out with ${down.map((e) => `--skip-host ${e.host}`).join(' ')} (never the master)`,
    })
  // Every backend must answer: the recovery rebuilds from them and checks against them.
  const localP = mapLimit(backends, ctx.concurrency, async (b) => {
    let n = 0
    await scanDump(ctx, b, (e) => {
      if (isLiveLocal(e)) n++
    }, step.id)
    return [b.name, n] as const
  })
  const masterP = (async () => {
    const {path} = await dbInfo(ctx, m)
    const exists = (await ctx.pool.exec(m, ['test', '-e', path])).exitCode === 0
    // Never let ctl_mboxlist create a missing db: count only what is there.
    return {path, masterEntries: exists ? (await scanDump(ctx, m, () => {}, step.id)).entries : null}
  })()
  const [local, {path, masterEntries}] = await Promise.all([localP, masterP])
  const backendsLocal = Object.fromEntries(local)
  const unionLocal = local.reduce((s, [, n]) => s + n, 0)
  rc.before = {masterEntries, backendsLocal, unionLocal}
  const drop = ctx.inv.thresholds.masterDropCritPercent
  const lost = masterEntries === null || masterEntries < unionLocal * (1 - drop / 100)
  const figures = {masterDb: path, masterEntries, unionOfBackendsLocal: unionLocal, backendsLocal, lost}
  if (!lost && !rc.options.force && !rc.resumed)
    throw new RefusedError(`the master does not look lost: it holds ${masterEntries} entries, the backends ${unionLocal} local mailboxes`, {
      host: m.name,
      step: step.id,
      hint: 'after an outage, murderctl sync-backends is the usual repair; --force runs the recovery anyway',
    })
  if (rc.options.source === 'backup') {
    const b = rc.options.backupPath ? readVerifiedBackup(rc.options.backupPath) : latestVerifiedBackup(ctx, m.name)
    if (!b) throw new RefusedError(`no verified backup of ${m.name} in ${ctx.inv.stateDir}`, {host: m.name, step: step.id, hint: 'name one with --source backup=DIR, or use --source backends'})
    if (b.meta.murder !== ctx.inv.name) throw new RefusedError(`backup ${b.dir} is of murder "${b.meta.murder}", not "${ctx.inv.name}"`, {step: step.id})
    Object.assign(figures, {backup: b.dir, backupEntries: b.meta.entries, backupTakenAt: b.meta.takenAt})
  }
  if (rc.options.source === 'frontend') Object.assign(figures, {frontend: (await pickFrontend(rc, step)).name})
  return figures
}

async function pickFrontend(rc: RunContext, step: Step): Promise<Host> {
  const fes = hostsByRole(rc.murder.inv, 'frontend')
  if (rc.options.frontend) {
    const f = fes.find((x) => x.name === rc.options.frontend)
    if (!f) throw new RefusedError(`"${rc.options.frontend}" is not a frontend`, {step: step.id, hint: `frontends: ${fes.map((x) => x.name).join(', ')}`})
    return f
  }
  // The frontend holding the most entries is the one that heard the most from the master.
  const counts = await mapLimit(fes, rc.murder.concurrency, async (f) => {
    try {
      return {f, n: (await scanDump(rc.murder, f, () => {}, step.id)).entries}
    } catch {
      return {f, n: -1}
    }
  })
  const best = counts.sort((a, b) => b.n - a.n)[0]
  if (!best || best.n <= 0) throw new RefusedError('no frontend holds a mailbox list to copy', {step: step.id, hint: 'use --source backends or --source backup'})
  return best.f
}

// ---- the lock --------------------------------------------------------------------------------

async function lock(rc: RunContext, step: Step, host?: Host) {
  const h = need(host, step)
  const got = await acquireLock(rc.murder, h, ownerHere(rc.runId, rc.runId.split('-').slice(1, -1).join('-')), step.id)
  return {lock: got.dir, takenOver: got.resumed}
}

async function unlock(rc: RunContext, step: Step, host?: Host) {
  return {released: await releaseLock(rc.murder, need(host, step), rc.runId)}
}

// ---- the mupdate slave -----------------------------------------------------------------------

async function setSlave(rc: RunContext, step: Step, host: Host | undefined, enable: boolean) {
  const h = need(host, step)
  const text = (await rc.murder.pool.readFile(h, h.cyrus.cyrusConf)).toString('utf8')
  const svc = mupdateService(parseCyrusConf(text))
  if (!svc || svc.mode === 'master') throw new AbortError(`no mupdate slave service in ${h.cyrus.cyrusConf}`, {host: h.name, step: step.id, hint: 'is this a unified backend?'})
  const next = enable ? enableService(text, 'SERVICES', svc.entry.name) : disableService(text, 'SERVICES', svc.entry.name)
  let saved
  if (next !== text) {
    saved = rc.journal.saved(step.id, await copyAside(rc.murder, h, h.cyrus.cyrusConf, rc.runId, step.id))
    await rc.murder.pool.writeFileAtomic(h, h.cyrus.cyrusConf, Buffer.from(next))
  }
  const pid = await hupMaster(rc.murder, h, step.id)
  return {service: svc.entry.name, changed: next !== text, hup: pid, copy: saved?.copy}
}

// ---- cyrus-master ----------------------------------------------------------------------------

async function runServiceCommand(rc: RunContext, step: Step, host: Host | undefined, which: 'stop' | 'start') {
  const h = need(host, step)
  const r = await rc.murder.pool.exec(h, {shell: h.cyrus[which]})
  rc.journal.command(step.id, h.name, r)
  if (r.exitCode !== 0) throw new AbortError(`${which} command failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n')[0] ?? ''}`, {host: h.name, step: step.id, hint: `check: ${h.cyrus[which]}`})
  return {command: h.cyrus[which]}
}

// ---- mailboxes.db ----------------------------------------------------------------------------

async function setAsideDb(rc: RunContext, step: Step, host?: Host) {
  const h = need(host, step)
  const {path} = await dbInfo(rc.murder, h)
  const moved = await moveAside(rc.murder, h, path, rc.runId, step.id)
  if (!moved) return {note: `${path} was not there`}
  rc.journal.saved(step.id, moved)
  return {path, movedTo: moved.copy, sha256: moved.sha256}
}

/** Nothing lost: a checksummed copy of the db beside it before a step changes it in place. */
async function copyAsideDb(rc: RunContext, step: Step, host?: Host) {
  const h = need(host, step)
  const saved = await saveDbAside(rc.murder, h, rc.journal, step.id)
  return {copy: saved.copy, sha256: saved.sha256}
}

async function installFromFrontend(rc: RunContext, step: Step, host?: Host) {
  const h = need(host, step)
  const fe = await pickFrontend(rc, step)
  const snap = await snapshotDb(rc.murder, fe, rc.runId, step.id)
  const done = await installDb(rc.murder, h, snap.data, snap.meta, rc.runId, step.id)
  return {from: fe.name, entries: done.entries, sha256: snap.meta.sha256}
}

async function installFromBackup(rc: RunContext, step: Step, host?: Host) {
  const h = need(host, step)
  const b = rc.options.backupPath ? readVerifiedBackup(rc.options.backupPath) : latestVerifiedBackup(rc.murder, h.name)
  if (!b) throw new RefusedError(`no verified backup of ${h.name}`, {host: h.name, step: step.id})
  const done = await installDb(rc.murder, h, b.data, b.meta, rc.runId, step.id)
  return {from: b.dir, entries: done.entries, sha256: b.meta.sha256}
}

// ---- the push --------------------------------------------------------------------------------

/**
 * `-m -w` of a backend. With localOnly, lines for entries this backend holds as REMOTE are
 * left out and reported: on an empty master a plain -m would push them as its own.
 */
async function diffPush(rc: RunContext, step: Step, host?: Host) {
  const h = need(host, step)
  const w = step.params.localOnly ? await localMupdateWarn(rc.murder, h, step.id) : {...(await mupdateWarn(rc.murder, h, step.id)), claimsAvoided: []}
  const d: PushDiff = {backend: h.name, ...w.plan, claimsAvoided: w.claimsAvoided}
  rc.diffs.set(h.name, d)
  if (w.changes) rc.pending.set(`${step.params.localOnly ? 'local-mw-empty' : 'mw-empty'}@${h.name}`, `ctl_mboxlist -m -w printed ${w.changes} changes at step ${step.id}`)
  if (d.removeLocal.length)
    throw new RefusedError(`ctl_mboxlist -m would delete ${d.removeLocal.length} local mailboxes (${d.removeLocal.slice(0, 5).join(', ')})`, {
      host: h.name,
      step: step.id,
      hint: 'the restored list places them on another server: resolve with murderctl sync-backends --local-authoritative once the master is up',
    })
  return {activate: d.activate.length, removeFromMupdate: d.removeFromMupdate.length, removeRemoteFlag: d.removeRemoteFlag.length, claimsAvoided: d.claimsAvoided.length}
}

/** Push; with localOnly from a copy of the db holding only this backend's own mailboxes. */
async function push(rc: RunContext, step: Step, host?: Host) {
  const h = need(host, step)
  const record = (r: ExecResult) => rc.journal.command(step.id, h.name, r)
  if (!step.params.localOnly) {
    await mupdatePush(rc.murder, h, {step: step.id, record})
    return {pushed: 'all'}
  }
  // The entries as undump lines, not objects: a backend may hold hundreds of thousands.
  const local: string[] = []
  const withoutUniqueid: string[] = []
  const line = (e: MailboxEntry) => `${JSON.stringify(e.name)}: ${JSON.stringify(e)}`
  await scanDump(rc.murder, h, (e) => {
    if (!isLiveLocal(e)) return
    // A unified backend's slave rewrites some local entries without uniqueid (seen on a
    // delayed-deleted DELETED.* mailbox); -u would skip them, yet a plain -m pushes them. The
    // list below is only read by this -m, and MUPDATE carries no uniqueid, so a stand-in keeps
    // them in the push; the backend's own db is left as it is (check reports them).
    if (!e.uniqueid) {
      withoutUniqueid.push(e.name)
      local.push(line({...e, uniqueid: `murderctlpush${sha256(e.name).slice(0, 16)}`}))
    } else local.push(line(e))
  }, step.id)
  const ctl = tool(h, 'ctl_mboxlist')
  const json = `{\n${local.join(',\n')}\n}\n`
  // The db takes about twice the JSON (a name record and a uniqueid record per entry): room
  // for three times that.
  const dir = await scratchDir(rc, h, `murderctl-localonly-${rc.runId}`, 3 * Buffer.byteLength(json))
  const tmp = `${dir}/mailboxes.db`
  try {
    const u = await rc.murder.pool.exec(h, [ctl, '-u', '-f', tmp], {stdin: json})
    record(u)
    // -u skips entries it cannot take and still exits 0: count what it loaded.
    const loaded = (await scanDump(rc.murder, h, () => {}, step.id, tmp)).entries
    if (u.stderr.trim() || loaded !== local.length)
      throw new UnexpectedOutputError(`could not build the local-only list: loaded ${loaded} of ${local.length} (${u.stderr.trim().split('\n')[0] ?? ''})`, {
        host: h.name,
        step: step.id,
        hint: 'the journal has ctl_mboxlist -u\'s message; repair the entry it names (murderctl check lists broken entries), then resume',
      })
    await mupdatePush(rc.murder, h, {file: tmp, step: step.id, record})
    return {pushed: local.length, withoutUniqueid: withoutUniqueid.length, digest: sha256(json)}
  } finally {
    await rc.murder.pool.exec(h, ['rm', '-rf', '--', dir]).catch(() => {})
  }
}

/**
 * A private folder for a scratch mailbox list, writable by the Cyrus user (ctl_mboxlist runs
 * as the owner of configdirectory). On tmpfs when /dev/shm has room for `bytes` (a container's
 * is often 64 MB): the list is read once by -m, and there ctl_mboxlist -u loads 20,000 entries
 * in 1.4 s instead of 15 s of fsyncs. Else beside the mailboxes.db.
 */
async function scratchDir(rc: RunContext, h: Host, prefix: string, bytes: number): Promise<string> {
  const {configDirectory} = await dbInfo(rc.murder, h)
  const cfg = shellQuote(configDirectory)
  const shm = `[ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')" -gt ${Math.ceil(bytes / 1024)} ] 2>/dev/null && mktemp -d ${shellQuote(`/dev/shm/${prefix}.XXXXXX`)} 2>/dev/null`
  const r = await rc.murder.pool.execOk(h, {
    shell: `d=$(${shm} || mktemp -d ${shellQuote(`${configDirectory}/${prefix}.XXXXXX`)}) && chown -- "$(stat -c %u:%g -- ${cfg})" "$d" && echo "$d"`,
  })
  return r.stdout.trim()
}

// ---- verification ----------------------------------------------------------------------------

async function verifyMurder(rc: RunContext, step: Step) {
  const ctx = rc.murder
  const m = master(ctx.inv)
  const backends = hostsByRole(ctx.inv, 'backend')
  const slaves = [...hostsByRole(ctx.inv, 'frontend'), ...(ctx.inv.mode === 'unified' ? backends : [])]
  const problems: string[] = []
  // The checks read different hosts (or the same ones read-only): all at once, so the run waits
  // for the slowest of them (the slaves catching up) rather than their sum.
  // The master must hold exactly the union of the backends' local mailboxes, each where it lives.
  const expected = new Map<string, string>()
  const expectedP = Promise.all(
    backends.map((b) =>
      scanDump(ctx, b, (e) => {
        if (isLiveLocal(e)) expected.set(e.name, b.servername)
      }, step.id),
    ),
  )
  const masterP = mailboxLocations(ctx, m, step.id)
  // Slaves take a moment to hear the last pushes: wait for them to agree, up to a minute.
  let finished = false
  const slavesP = (async () => {
    const want = (await masterP).locations.size
    const deadline = Date.now() + 60_000
    for (;;) {
      const agreement = await mapLimit(slaves, ctx.concurrency, async (s) => {
        const [dump, connected] = await Promise.all([scanDump(ctx, s, () => {}, step.id), checkCondition(rc, 'slave-connected', s)])
        return {host: s.name, entries: dump.entries, connected: connected.ok}
      })
      if (finished || agreement.every((a) => a.entries === want && a.connected) || Date.now() > deadline) return agreement
      await new Promise((r) => setTimeout(r, 250))
    }
  })()
  // A unified backend's -m -w also reads its remote entries, which its slave may still be
  // bringing up to date: a non-empty answer there counts once the slaves agree.
  const mwP = mapLimit(backends, ctx.concurrency, async (b) => {
    let changes = (await mupdateWarn(ctx, b, step.id)).changes
    if (changes && ctx.inv.mode === 'unified') {
      await slavesP.catch(() => {})
      changes = (await mupdateWarn(ctx, b, step.id)).changes
    }
    return {host: b.name, changes}
  })
  // A check that fails ends the wait of the others.
  const [mw, , {locations}, slavesAgree] = await Promise.all([mwP, expectedP, masterP, slavesP]).finally(() => (finished = true))
  for (const x of mw) if (x.changes) problems.push(`${x.host}: ctl_mboxlist -m -w still prints ${x.changes} changes`)
  let misplaced = 0
  let missing = 0
  for (const [name, server] of expected) {
    const at = locations.get(name)
    if (!at) missing++
    else if (at.split('!')[0] !== server) misplaced++
  }
  let extra = 0
  for (const name of locations.keys()) if (!expected.has(name)) extra++
  if (missing) problems.push(`the master lacks ${missing} of the backends' mailboxes`)
  if (misplaced) problems.push(`the master places ${misplaced} mailboxes on the wrong server`)
  if (extra > 0) problems.push(`the master holds ${extra} entries no backend has`)
  for (const a of slavesAgree) {
    if (a.entries !== locations.size) problems.push(`${a.host} holds ${a.entries} entries, the master ${locations.size}`)
    if (!a.connected) problems.push(`${a.host}'s mupdate slave is not connected`)
  }
  const figures = {master: locations.size, unionOfBackendsLocal: expected.size, before: rc.before, backendsMw: mw, slaves: slavesAgree}
  if (problems.length) throw new AbortError(`verification failed: ${problems.join('; ')}`, {step: step.id, hint: 'read the figures in the journal; murderctl sync-backends --dry-run shows what differs'})
  return figures
}

export const ACTIONS: Record<ActionName, Action> = {
  preflight: {mutating: false, describe: () => 'read every backend\'s and the master\'s mailbox list; refuse unless the master looks lost', run: (rc, s) => preflight(rc, s)},
  lock: {mutating: true, describe: () => 'mkdir <configdirectory>/murderctl-recovery.lock (refused if another run holds it)', run: lock},
  unlock: {mutating: true, describe: () => 'remove the recovery lock', run: unlock},
  'disable-mupdate-slave': {
    mutating: true,
    describe: (_rc, _s, h) => `copy ${h?.cyrus.cyrusConf} aside, comment out the mupdate slave service, kill -HUP cyrus-master`,
    run: (rc, s, h) => setSlave(rc, s, h, false),
  },
  'enable-mupdate-slave': {
    mutating: true,
    describe: (_rc, _s, h) => `copy ${h?.cyrus.cyrusConf} aside, restore the mupdate slave service line, kill -HUP cyrus-master`,
    run: (rc, s, h) => setSlave(rc, s, h, true),
  },
  'stop-cyrus': {mutating: true, describe: (_rc, _s, h) => `${h?.cyrus.stop}`, run: (rc, s, h) => runServiceCommand(rc, s, h, 'stop')},
  'start-cyrus': {mutating: true, describe: (_rc, _s, h) => `${h?.cyrus.start}`, run: (rc, s, h) => runServiceCommand(rc, s, h, 'start')},
  'set-aside-db': {mutating: true, describe: (rc, s) => `sha256sum mailboxes.db; mv -n it to mailboxes.db.murderctl-${rc.runId}-${s.id}`, run: setAsideDb},
  'copy-aside-db': {mutating: true, describe: (rc, s) => `cp -n -p mailboxes.db mailboxes.db.murderctl-${rc.runId}-${s.id}, sha256 of both checked`, run: copyAsideDb},
  'install-db-from-frontend': {
    mutating: true,
    describe: (rc) => `cvt_cyrusdb a consistent copy of ${rc.options.frontend ?? 'the fullest frontend'}'s mailboxes.db, fetch it, upload it beside the master's, check sha256 and entry count, mv into place`,
    run: installFromFrontend,
  },
  'install-db-from-backup': {
    mutating: true,
    describe: (rc) => `upload ${rc.options.backupPath ?? 'the newest verified backup'}, check sha256 and entry count, mv into place`,
    run: installFromBackup,
  },
  'diff-push': {mutating: false, describe: (_rc, s) => `ctl_mboxlist -m -w${s.params.localOnly ? ' (lines for remote entries left out)' : ''}`, run: diffPush},
  push: {
    mutating: true,
    describe: (_rc, s) => (s.params.localOnly ? 'ctl_mboxlist -u -f <tmp> of the local entries only, then ctl_mboxlist -m -f <tmp>' : 'ctl_mboxlist -m'),
    run: push,
  },
  'verify-murder': {mutating: false, planOnly: true, describe: () => 'every backend -m -w empty; master = union of the backends\' local mailboxes; slaves connected and agreeing', run: (rc, s) => verifyMurder(rc, s)},
}
