// What each host of the murder looks like right now, read over SSH (and the MUPDATE banner
// over TCP). Read-only; a host that cannot be reached is reported, never fatal.
import {z} from 'zod'
import {asMurderctlError} from '../errors.js'
import {type CyrusConf, hasMupdatePush, mupdateService, parseCyrusConf, syncClientDaemon} from '../cyrus/cyrus-conf.js'
import {DEFAULT_MUPDATE_PORT, imapdBool, murderRole, parseMupdateServer} from '../cyrus/imapd-conf.js'
import {pairConfigOf} from '../cyrus/pair-config.js'
import {pairsOf} from '../host/pair.js'
import {EntryCounts} from '../cyrus/mboxlist-dump.js'
import {probeMupdate} from '../cyrus/mupdate-banner.js'
import {Role} from '../inventory/schema.js'
import {master} from '../inventory/load.js'
import {describeLock, readLock} from '../host/lock.js'
import type {Host} from '../inventory/schema.js'
import {mapLimit} from '../util/limit.js'
import type {MurderContext} from '../host/context.js'
import {countEntriesOnHost} from '../host/mboxlist.js'
import {memoryDbRun} from '../host/memory-db.js'
import {childRunning, cyrusVersion, masterPid, readImapdConf, slaveConnected} from '../host/remote.js'

export const HostStatus = z.object({
  name: z.string(),
  role: Role,
  address: z.string(),
  reachable: z.boolean(),
  /** Why the host could not be read (one line), when it could not. */
  error: z.string().optional(),
  /** The error's class (unreachable, hostKey, ...): the command's exit code comes from it. */
  errorCode: z.string().optional(),
  version: z.string().nullable(),
  servername: z.string().nullable(),
  /** What imapd.conf says the host is in the murder. */
  murderRole: z.string().nullable(),
  mupdateConfig: z.string().nullable(),
  mupdateServer: z.string().nullable(),
  mupdate: z.object({
    /** The mupdate service in cyrus.conf: master (-m), slave, or none. */
    service: z.enum(['master', 'slave', 'auto']).nullable(),
    enabled: z.boolean(),
    /** What the MUPDATE banner on its port says. */
    banner: z.enum(['master', 'slave', 'unavailable', 'unreachable']).nullable(),
    bannerDetail: z.string().optional(),
    /** A slave's established connection to the master, when it runs a slave. */
    slaveConnected: z.boolean().nullable(),
  }),
  mupdatePush: z.boolean(),
  cyrusMaster: z.object({running: z.boolean(), pid: z.number().nullable()}),
  mailboxes: EntryCounts.nullable(),
  replication: z.object({
    syncLog: z.boolean(),
    syncHost: z.string().nullable(),
    rollingClient: z.enum(['running', 'stopped', 'disabled', 'none']),
  }),
  /** For a member of a replication pair: which of the pair's configs its files hold. */
  pairConfig: z.enum(['master', 'replica', 'mixed']).nullable(),
  /** Things an operator should look at, one line each. */
  notes: z.array(z.string()),
})
export type HostStatus = z.infer<typeof HostStatus>

export const MurderStatus = z.object({
  murder: z.string(),
  mode: z.enum(['standard', 'unified']),
  hosts: z.array(HostStatus),
  /** The murder's run lock on the master, when a recovery or sync holds it (or held it and died). */
  lock: z.object({run: z.string(), owner: z.string().nullable(), ageSeconds: z.number().nullable()}).nullable(),
  durationMs: z.number(),
})
export type MurderStatus = z.infer<typeof MurderStatus>

/** The port a cyrus.conf listen= value names: "1.2.3.4:3905", "3905", "mupdate", "[::1]:3905". */
export function listenPort(listen: string | undefined): number {
  const tail = (listen ?? '').split(':').pop() ?? ''
  return /^\d+$/.test(tail) ? Number(tail) : DEFAULT_MUPDATE_PORT
}

/** Every mailbox count of a host's mailboxes.db, counted on the host: only the figures cross SSH. */
export function mailboxCounts(ctx: MurderContext, host: Host): Promise<EntryCounts> {
  return countEntriesOnHost(ctx, host, 'status')
}

export async function readConfigs(ctx: MurderContext, host: Host): Promise<{imapd: Map<string, string>; cyrus: CyrusConf; cyrusText: string}> {
  const [imapd, cyrusText] = await Promise.all([readImapdConf(ctx, host), ctx.pool.readFile(host, host.cyrus.cyrusConf).then((b) => b.toString('utf8'))])
  return {imapd, cyrus: parseCyrusConf(cyrusText), cyrusText}
}

function empty(host: Host): HostStatus {
  return {
    name: host.name,
    role: host.role,
    address: host.address,
    reachable: false,
    version: null,
    servername: null,
    murderRole: null,
    mupdateConfig: null,
    mupdateServer: null,
    mupdate: {service: null, enabled: false, banner: null, slaveConnected: null},
    mupdatePush: false,
    cyrusMaster: {running: false, pid: null},
    mailboxes: null,
    replication: {syncLog: false, syncHost: null, rollingClient: 'none'},
    pairConfig: null,
    notes: [],
  }
}

/** The MUPDATE banner, read through the host's sshd when it can (a firewall or a bastion may hide the port), else over plain TCP. */
async function probe(host: Host, port: number, s: HostStatus, timeoutMs: number, ctx?: MurderContext): Promise<void> {
  const forward = ctx?.pool.forward?.bind(ctx.pool)
  let p = await probeMupdate(host.address, port, timeoutMs, forward ? () => forward(host, port) : undefined)
  // An sshd that refuses forwarding (AllowTcpForwarding no) is no answer about MUPDATE: ask directly.
  if (!p.reachable && forward && p.reason === 'error') p = await probeMupdate(host.address, port, timeoutMs)
  if (p.reachable) {
    s.mupdate.banner = p.banner.role
    if (p.banner.role === 'unavailable') s.mupdate.bannerDetail = p.banner.bye
    else if (p.banner.role === 'slave' && p.banner.master) s.mupdate.bannerDetail = `slave of ${p.banner.master}`
  } else {
    s.mupdate.banner = 'unreachable'
    s.mupdate.bannerDetail = p.message
  }
}

export async function hostStatus(ctx: MurderContext, host: Host, opts: {counts?: boolean; probeTimeoutMs?: number} = {}): Promise<HostStatus> {
  const s = empty(host)
  const probeTimeout = opts.probeTimeoutMs ?? 5000
  let configs: Awaited<ReturnType<typeof readConfigs>>
  try {
    configs = await readConfigs(ctx, host)
    s.reachable = true
  } catch (error) {
    const e = asMurderctlError(error)
    s.error = e.oneLine()
    s.errorCode = e.code
    // SSH is down, but the MUPDATE port may still answer; say what it says.
    if (host.role === 'mupdate-master' || host.role === 'frontend' || (ctx.inv.mode === 'unified' && host.role === 'backend'))
      await probe(host, DEFAULT_MUPDATE_PORT, s, probeTimeout)
    return s
  }
  const {imapd, cyrus} = configs
  const role = murderRole(imapd)
  s.servername = imapd.get('servername') ?? null
  s.murderRole = role.role
  s.mupdateConfig = role.mupdateServer ? role.mupdateConfig : null
  s.mupdateServer = role.mupdateServer ?? null
  const svc = mupdateService(cyrus)
  s.mupdate.service = svc?.mode ?? null
  s.mupdate.enabled = svc?.enabled ?? false
  s.mupdatePush = hasMupdatePush(cyrus)
  s.replication.syncLog = imapdBool(imapd.get('sync_log'))
  s.replication.syncHost = imapd.get('sync_host') ?? null
  const sync = syncClientDaemon(cyrus)
  if (pairsOf(ctx.inv).some((p) => p.members.some((m) => m.name === host.name))) s.pairConfig = pairConfigOf(imapd, cyrus).role

  const tasks: Promise<unknown>[] = [
    masterPid(ctx, host).then((pid) => {
      s.cyrusMaster = {running: pid !== null, pid}
    }),
    cyrusVersion(ctx, host).then((v) => {
      s.version = v
    }),
  ]
  if (opts.counts !== false)
    tasks.push(
      mailboxCounts(ctx, host).then(
        (c) => {
          s.mailboxes = c
        },
        (error) => {
          s.notes.push(`mailbox counts unavailable: ${asMurderctlError(error).message}`)
        },
      ),
    )
  if (svc?.enabled) tasks.push(probe(host, listenPort(svc.entry.args.listen), s, probeTimeout, ctx))
  try {
    await Promise.all(tasks)
    if (svc?.enabled && svc.mode !== 'master' && s.cyrusMaster.running) s.mupdate.slaveConnected = await slaveConnected(ctx, host)
    if (sync)
      s.replication.rollingClient = !sync.enabled ? 'disabled' : s.cyrusMaster.running && (await childRunning(ctx, host, 'sync_client')) ? 'running' : 'stopped'
  } catch (error) {
    // Reachable, but a probe failed (a hung command, a tool that errs): say so and stop here.
    s.error = asMurderctlError(error).at({host: host.name}).oneLine()
    return s
  }
  // Notes an operator should see at a glance.
  if (!s.cyrusMaster.running) s.notes.push(`cyrus-master is not running (${host.cyrus.pidFile})`)
  if (s.servername && s.servername !== host.servername) s.notes.push(`imapd.conf says servername ${s.servername}, the inventory ${host.servername}`)
  if (s.pairConfig === 'mixed') s.notes.push('its config is half master, half replica (a failover stopped part-way, or a hand edit): see murderctl pair status')
  if (s.mailboxes && s.mailboxes.withoutUniqueid > 0)
    s.notes.push(`${s.mailboxes.withoutUniqueid} local mailboxes have no uniqueid (Cyrus 3.6 cannot open them)`)
  if (s.mupdate.slaveConnected === false) s.notes.push('the mupdate slave is not connected to the master')
  const inMemory = imapd.get('mboxlist_db_path')
  if (memoryDbRun(inMemory))
    s.notes.push(`its mailboxes.db is in memory (${inMemory}), left by run ${memoryDbRun(inMemory)}: resume that run to put it on disk`)
  return s
}

export async function murderStatus(ctx: MurderContext, opts: {counts?: boolean} = {}): Promise<MurderStatus> {
  const started = Date.now()
  const [hosts, lock] = await Promise.all([mapLimit(ctx.inv.hosts, ctx.concurrency, (h) => hostStatus(ctx, h, opts)), murderLock(ctx)])
  // A host SSH could not reach had its banner asked on the default port: the murder's own MUPDATE
  // port is the one its reachable members' mupdate_server names.
  const port = hosts.map((h) => (h.mupdateServer ? parseMupdateServer(h.mupdateServer).port : undefined)).find((p) => p !== undefined)
  if (port !== undefined && port !== DEFAULT_MUPDATE_PORT)
    await Promise.all(
      hosts
        .filter((s) => !s.reachable && s.mupdate.banner !== null)
        .map((s) =>
          probe(
            ctx.inv.hosts.find((h) => h.name === s.name)!,
            port,
            s,
            5000,
          ),
        ),
    )
  // A pair is fine whichever way round; both members in the murder is not.
  for (const p of pairsOf(ctx.inv)) {
    const ms = p.members.map((m) => hosts.find((h) => h.name === m.name)!)
    if (ms.every((m) => m.mupdateServer || m.mupdatePush))
      for (const m of ms) m.notes.push(`both members of pair ${p.name} take part in the murder (mupdate_server or mupdatepush set): only one may`)
  }
  return {murder: ctx.inv.name, mode: ctx.inv.mode, hosts, lock, durationMs: Date.now() - started}
}

/** The run lock as status and check report it; null when free or the master cannot be read. */
export async function murderLock(ctx: MurderContext): Promise<MurderStatus['lock']> {
  const held = await readLock(ctx, master(ctx.inv)).catch(() => null)
  return held ? {run: held.run, owner: held.owner ? describeLock(held) : null, ageSeconds: held.ageSeconds} : null
}
