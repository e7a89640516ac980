// A replication pair's two configurations, as text transformations: the master config (in the
// murder, logging changes and replicating them to the other member) and the replica config (out
// of the murder, receiving). Both directions go through the byte-faithful editors, are
// idempotent (applying one twice changes nothing), and undo each other: what the replica config
// comments out it marks, so the master config finds its values again.
//
// The keepalived script this replaces used sed comment/uncomment pairs that stack `##` and a
// pattern that never matched; here every edit is "set this key / entry to this state".
import {AbortError} from '../errors.js'
import {
  type CyrusConf,
  type CyrusConfEntry,
  disableService,
  enableService,
  insertService,
  mupdatePushEntry,
  mupdateService,
  parseCyrusConf,
  syncClientDaemon,
  syncServerService,
} from './cyrus-conf.js'
import {DEFAULT_MARKER, imapdBool, parseImapdConf, setImapdOption} from './imapd-conf.js'

/**
 * The keys a member needs to take part in the murder and replicate, other than the switches
 * themselves: copied from the other member (or from its own marked lines) when missing, never
 * overwritten when present.
 */
export const MURDER_CREDENTIAL_KEYS = [
  'mupdate_config',
  'mupdate_port',
  'mupdate_authname',
  'mupdate_password',
  'mupdate_realm',
  'mupdate_username',
  'mupdate_retry_delay',
  'proxy_authname',
  'proxy_password',
  'proxy_realm',
  'proxyservers',
  'sync_authname',
  'sync_password',
  'sync_realm',
  'sync_port',
  'sync_try_imap',
] as const

/** What the master config needs that a replica may not carry: the murder's address and credentials. */
export type MasterSettings = Map<string, string>

export type PairConfigRole = 'master' | 'replica' | 'mixed'

export interface PairConfigFacts {
  role: PairConfigRole
  mupdateServer: string | null
  syncLog: boolean
  syncHost: string | null
  mupdatePush: boolean
  syncClient: boolean
  syncServer: boolean
}

/**
 * Which of the two configs a member's files are. master: in the murder (mupdate_server);
 * replica: none of mupdate_server, sync_log, the rolling client, the push at start. Anything
 * else is mixed: a half-done switch or a hand edit, which a failover must not guess about.
 */
export function pairConfigFacts(imapdText: string, cyrusText: string): PairConfigFacts {
  return pairConfigOf(parseImapdConf(imapdText, {lenient: true}), parseCyrusConf(cyrusText))
}

/** pairConfigFacts from files already parsed. */
export function pairConfigOf(imapd: ReadonlyMap<string, string>, conf: CyrusConf): PairConfigFacts {
  const f = {
    mupdateServer: imapd.get('mupdate_server') ?? null,
    syncLog: imapdBool(imapd.get('sync_log')),
    syncHost: imapd.get('sync_host') ?? null,
    mupdatePush: mupdatePushEntry(conf)?.enabled === true,
    syncClient: syncClientDaemon(conf)?.enabled === true,
    syncServer: syncServerService(conf)?.enabled === true,
  }
  // In the murder means master (its replication may be paused: sync_log or the client off);
  // out of it with any master sign left is a half-done switch.
  const role: PairConfigRole = f.mupdateServer !== null ? 'master' : f.syncLog || f.syncClient || f.mupdatePush ? 'mixed' : 'replica'
  return {role, ...f}
}

const MARKED_RE = (marker: string) => new RegExp(`^\\s*#([A-Za-z0-9_-]+)\\s*:\\s*(.*?)\\s+#\\s*${marker.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`)

/** Keys murderctl commented out (`#key: value  # murderctl`), with their values: what a replica config keeps for later. */
export function markedImapdOptions(text: string, marker = DEFAULT_MARKER): Map<string, string> {
  const re = MARKED_RE(marker)
  const out = new Map<string, string>()
  for (const line of text.split(/\r?\n/)) {
    const m = re.exec(line)
    if (m && m[2] && !out.has(m[1]!.toLowerCase())) out.set(m[1]!.toLowerCase(), m[2])
  }
  return out
}

/**
 * The settings a member needs to become master: its own active and marked values, with the
 * other member's active values (a master's config, when it can be read) filling what is missing.
 */
export function masterSettings(ownImapd: string, peerImapd?: string): MasterSettings {
  const own = parseImapdConf(ownImapd, {lenient: true})
  const marked = markedImapdOptions(ownImapd)
  const peer = peerImapd === undefined ? new Map<string, string>() : parseImapdConf(peerImapd, {lenient: true})
  const out: MasterSettings = new Map()
  for (const key of ['mupdate_server', ...MURDER_CREDENTIAL_KEYS]) {
    const v = own.get(key) ?? marked.get(key) ?? peer.get(key)
    if (v !== undefined) out.set(key, v)
  }
  return out
}

export interface PairConfigs {
  imapd: string
  cyrus: string
}

export interface ToMasterOptions {
  settings: MasterSettings
  /** The OTHER member's own address (never the shared servername, which now names this member). */
  syncHost: string
  /** Unified murder: a member in the murder also runs the mupdate slave. */
  unified?: boolean
  /** Lines to add when the file has no such entry at all, enabled or commented out. */
  fallbackEntries?: {mupdatePush?: string; syncClient?: string}
  /**
   * Leave these disabled for now: the failover starts the new master without its push at start
   * (it checks `ctl_mboxlist -m -w` first) and without its rolling client (until the other
   * member listens), then enables them.
   */
  hold?: {mupdatePush?: boolean; syncClient?: boolean}
}

const DEFAULT_PUSH = '\tmupdatepush\tcmd="ctl_mboxlist -m"'
const DEFAULT_SYNC_CLIENT = '\tsyncclient\tcmd="sync_client -r"'
const DEFAULT_SYNC_SERVER = '\tsyncserver\tcmd="sync_server" listen="csync"'

function enableEntry(text: string, section: 'START' | 'SERVICES' | 'DAEMON', find: (c: CyrusConf) => CyrusConfEntry | undefined, fallback: string): string {
  const entry = find(parseCyrusConf(text))
  if (!entry) return insertService(text, section, fallback)
  if (entry.enabled) return text
  return enableService(text, section, entry.name, {match: (e) => e.line === entry.line})
}

function disableEntry(text: string, section: 'START' | 'SERVICES' | 'DAEMON', find: (c: CyrusConf) => CyrusConfEntry | undefined): string {
  // Several entries may run the program (a hand-added second one): disable until none is left.
  for (let i = 0; i < 10; i++) {
    const entry = find(parseCyrusConf(text))
    if (!entry?.enabled) return text
    text = disableService(text, section, entry.name)
  }
  throw new AbortError(`cannot disable every ${section} entry of this kind in cyrus.conf`)
}

const slaveService = (c: CyrusConf) => {
  const s = mupdateService(c)
  return s && s.mode !== 'master' ? s.entry : undefined
}

/** The master config: in the murder, logging, replicating towards syncHost; no sync_server. */
export function toMasterConfig(cfg: PairConfigs, opts: ToMasterOptions): PairConfigs {
  const server = opts.settings.get('mupdate_server')
  if (!server)
    throw new AbortError('no mupdate_server value to put in the master config', {
      hint: 'the other member cannot be read and this one has no `#mupdate_server: ...  # murderctl` line: add that line (and the mupdate credentials) to its imapd.conf',
    })
  let imapd = cfg.imapd
  const have = parseImapdConf(imapd, {lenient: true})
  for (const key of MURDER_CREDENTIAL_KEYS) {
    const v = opts.settings.get(key)
    if (v !== undefined && !have.has(key)) imapd = setImapdOption(imapd, key, v)
  }
  imapd = setImapdOption(imapd, 'mupdate_server', server)
  imapd = setImapdOption(imapd, 'sync_log', '1')
  imapd = setImapdOption(imapd, 'sync_host', opts.syncHost)

  let cyrus = cfg.cyrus
  cyrus = opts.hold?.mupdatePush
    ? disableEntry(cyrus, 'START', mupdatePushEntry)
    : enableEntry(cyrus, 'START', mupdatePushEntry, opts.fallbackEntries?.mupdatePush ?? DEFAULT_PUSH)
  cyrus = opts.hold?.syncClient
    ? disableEntry(cyrus, 'DAEMON', syncClientDaemon)
    : enableEntry(cyrus, 'DAEMON', syncClientDaemon, opts.fallbackEntries?.syncClient ?? DEFAULT_SYNC_CLIENT)
  cyrus = disableEntry(cyrus, 'SERVICES', syncServerService)
  if (opts.unified) {
    const slave = slaveService(parseCyrusConf(cyrus))
    if (!slave) throw new AbortError('a unified member needs a mupdate slave entry in cyrus.conf SERVICES (enabled or commented out)')
    cyrus = enableService(cyrus, 'SERVICES', slave.name)
  }
  return {imapd, cyrus}
}

export interface ToReplicaOptions {
  unified?: boolean
  /** The sync_server line to add when the file has none at all. */
  fallbackSyncServer?: string
}

/**
 * The replica config: out of the murder (mupdate_server commented out, marked, so the master
 * config finds it again), no sync_log, no rolling client, no push at start, sync_server on.
 * Credentials stay: they do nothing without mupdate_server and the member needs them back.
 */
export function toReplicaConfig(cfg: PairConfigs, opts: ToReplicaOptions = {}): PairConfigs {
  let imapd = cfg.imapd
  for (const key of ['mupdate_server', 'sync_log', 'sync_host']) imapd = setImapdOption(imapd, key, null)
  let cyrus = cfg.cyrus
  cyrus = disableEntry(cyrus, 'START', mupdatePushEntry)
  cyrus = disableEntry(cyrus, 'DAEMON', syncClientDaemon)
  if (opts.unified) cyrus = disableEntry(cyrus, 'SERVICES', slaveService)
  cyrus = enableEntry(cyrus, 'SERVICES', syncServerService, opts.fallbackSyncServer ?? DEFAULT_SYNC_SERVER)
  return {imapd, cyrus}
}
