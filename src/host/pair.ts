// Replication pairs: a backend plus the replica naming it in replicaOf. Which member is the
// master is read from the members themselves (their configs and processes), never from the
// inventory, so the inventory stays valid whichever way round the pair is.
import {z} from 'zod'
import {asMurderctlError, InventoryError} from '../errors.js'
import {pairConfigFacts} from '../cyrus/pair-config.js'
import {parseImapdConf} from '../cyrus/imapd-conf.js'
import {DEFAULT_SYSLOG_FILE, type Host, type Inventory, PairSettings} from '../inventory/schema.js'
import {shellQuote} from '../ssh/quote.js'
import type {MurderContext} from './context.js'
import {childRunning, masterPid} from './remote.js'

export interface Pair {
  /** The backend's inventory name: how commands name the pair. */
  name: string
  servername: string
  /** Both members, the inventory's backend first. */
  members: [Host, Host]
  settings: PairSettings
}

export function pairsOf(inv: Inventory): Pair[] {
  return inv.hosts
    .filter((r) => r.role === 'replica' && r.replicaOf)
    .map((r) => {
      const b = inv.hosts.find((h) => h.name === r.replicaOf)!
      return {
        name: b.name,
        servername: b.servername,
        members: [b, r] as [Host, Host],
        settings: inv.pairs.find((p) => p.backend === b.name) ?? PairSettings.parse({backend: b.name}),
      }
    })
}

/** A pair by its backend's name or its servername. */
export function findPair(inv: Inventory, name: string): Pair {
  const pairs = pairsOf(inv)
  const p = pairs.find((x) => x.name === name) ?? pairs.find((x) => x.servername === name)
  if (!p)
    throw new InventoryError(`no replication pair named "${name}" in ${inv.path}`, {
      hint: pairs.length ? `pairs: ${pairs.map((x) => x.name).join(', ')}` : 'a pair is a backend plus a host with role replica and replicaOf naming it',
    })
  return p
}

export const otherMember = (pair: Pair, name: string): Host => (pair.members[0].name === name ? pair.members[1] : pair.members[0])

export const SyncLogFile = z.object({file: z.string(), bytes: z.number(), ageSeconds: z.number()})
export type SyncLogFile = z.infer<typeof SyncLogFile>

export const SyncBacklog = z.object({
  bytes: z.number(),
  /** Age of the oldest waiting change (0 with nothing waiting). */
  ageSeconds: z.number(),
  files: z.array(SyncLogFile),
})
export type SyncBacklog = z.infer<typeof SyncBacklog>

/** `<configdir>/sync`: where sync_log writes (`log`), the rolling client works (`log-run`), and failed runs leave `log-<PID>`. */
export function syncDir(imapd: ReadonlyMap<string, string>): string {
  return `${(imapd.get('configdirectory') ?? '/var/lib/cyrus').replace(/\/+$/, '')}/sync`
}

/**
 * The sync log backlog: `log`, `log-run` and every `log-*` leftover (not murderctl's own copies),
 * with size and age. Age is from the birth time when the filesystem keeps it, else the last write.
 */
export async function syncBacklog(ctx: MurderContext, host: Host, imapd: ReadonlyMap<string, string>): Promise<SyncBacklog> {
  const dir = shellQuote(syncDir(imapd))
  const r = await ctx.pool.exec(host, {
    shell: `date +%s; cd ${dir} 2>/dev/null || exit 0; for f in log log-*; do case "$f" in *.murderctl-*) continue;; esac; [ -f "$f" ] && stat -c '%s %W %Y %n' -- "$f"; done; true`,
  })
  const [now, ...rows] = r.stdout.trim().split('\n')
  const files: SyncLogFile[] = []
  for (const row of rows) {
    const m = /^(\d+) (-?\d+) (\d+) (.+)$/.exec(row)
    if (!m) continue
    const [size, born, modified] = [Number(m[1]), Number(m[2]), Number(m[3])]
    files.push({file: m[4]!, bytes: size, ageSeconds: size ? Number(now) - (born > 0 ? born : modified) : 0})
  }
  const waiting = files.filter((f) => f.bytes > 0)
  return {bytes: waiting.reduce((n, f) => n + f.bytes, 0), ageSeconds: Math.max(0, ...waiting.map((f) => f.ageSeconds)), files}
}

/** The last replication error this host logged (sync_client or sync_server lines in its syslog). */
export async function lastReplicationError(ctx: MurderContext, host: Host, imapd: ReadonlyMap<string, string>): Promise<string | null> {
  const prefix = imapd.get('syslog_prefix') ?? 'cyrus'
  const f = shellQuote(host.cyrus.syslogFile ?? DEFAULT_SYSLOG_FILE)
  const r = await ctx.pool.exec(host, {
    shell: `[ -r ${f} ] || exit 0; tail -n 50000 ${f} | grep -a -F -e ${shellQuote(`${prefix}/sync_client[`)} -e ${shellQuote(`${prefix}/syncserver[`)} -e ${shellQuote(`${prefix}/sync_server[`)} | grep -a -i -E 'error|fail|refused|bailing|unable' | tail -n 1`,
  })
  const line = r.stdout.trim()
  return line ? line.slice(0, 300) : null
}

export const MemberState = z.object({
  name: z.string(),
  address: z.string(),
  reachable: z.boolean(),
  error: z.string().optional(),
  /** Which config its files hold: master (in the murder, logging, replicating), replica, or mixed. */
  config: z.enum(['master', 'replica', 'mixed']).nullable(),
  mupdateServer: z.string().nullable(),
  syncLog: z.boolean(),
  syncHost: z.string().nullable(),
  mupdatePush: z.boolean(),
  syncServer: z.boolean(),
  cyrusMaster: z.object({running: z.boolean(), pid: z.number().nullable()}),
  /** The rolling sync_client: configured and running as a child of cyrus-master. */
  rollingClient: z.enum(['running', 'stopped', 'none']),
  backlog: SyncBacklog.nullable(),
  lastReplicationError: z.string().nullable(),
})
export type MemberState = z.infer<typeof MemberState>

export interface MemberRead {
  state: MemberState
  /** The files as read (never printed: they hold passwords). */
  imapdText?: string
  cyrusText?: string
}

/** Everything about one member, read over SSH; an unreachable member is reported, not thrown. */
export async function readMember(ctx: MurderContext, host: Host): Promise<MemberRead> {
  const state: MemberState = {
    name: host.name,
    address: host.address,
    reachable: false,
    config: null,
    mupdateServer: null,
    syncLog: false,
    syncHost: null,
    mupdatePush: false,
    syncServer: false,
    cyrusMaster: {running: false, pid: null},
    rollingClient: 'none',
    backlog: null,
    lastReplicationError: null,
  }
  try {
    const [imapdText, cyrusText] = await Promise.all(
      [host.cyrus.imapdConf, host.cyrus.cyrusConf].map((p) => ctx.pool.readFile(host, p).then((b) => b.toString('utf8'))),
    )
    state.reachable = true
    const facts = pairConfigFacts(imapdText!, cyrusText!)
    const imapd = parseImapdConf(imapdText!, {lenient: true})
    Object.assign(state, {
      config: facts.role,
      mupdateServer: facts.mupdateServer,
      syncLog: facts.syncLog,
      syncHost: facts.syncHost,
      mupdatePush: facts.mupdatePush,
      syncServer: facts.syncServer,
    })
    const [pid, backlog, lastError] = await Promise.all([masterPid(ctx, host), syncBacklog(ctx, host, imapd), lastReplicationError(ctx, host, imapd)])
    state.cyrusMaster = {running: pid !== null, pid}
    state.backlog = backlog
    state.lastReplicationError = lastError
    if (facts.syncClient) state.rollingClient = pid !== null && (await childRunning(ctx, host, 'sync_client')) ? 'running' : 'stopped'
    return {state, imapdText, cyrusText}
  } catch (error) {
    state.error = asMurderctlError(error).at({host: host.name}).oneLine()
    return {state}
  }
}

/**
 * The active member: the one whose files hold the master config and whose cyrus-master runs.
 * `conflict` when both members are configured for the murder or both run a rolling client.
 */
export function activeOf(members: MemberState[]): {active: string | null; conflict: string | null} {
  const inMurder = members.filter((m) => m.mupdateServer !== null || m.mupdatePush)
  const rolling = members.filter((m) => m.rollingClient === 'running')
  const conflict =
    inMurder.length > 1
      ? `both members are configured for the murder (${inMurder.map((m) => m.name).join(', ')})`
      : rolling.length > 1
        ? `both members run a rolling sync_client (${rolling.map((m) => m.name).join(', ')})`
        : null
  const masters = members.filter((m) => m.config === 'master' && m.cyrusMaster.running)
  return {active: masters.length === 1 ? masters[0]!.name : null, conflict}
}
