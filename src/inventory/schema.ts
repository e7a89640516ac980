// The inventory: what the murder looks like and how to reach every host.
// Types are inferred from these schemas; nothing here is written twice.
import {z} from 'zod'
import {refineUnique} from '../util/zod.js'
import {Preset, PRESETS} from './presets.js'

export const roles = ['mupdate-master', 'frontend', 'backend', 'replica'] as const
export const Role = z.enum(roles)
export type Role = z.infer<typeof Role>

// A host name doubles as a Cyrus servername and as a file-name component on the operator's
// machine, so keep it to what both accept.
const hostName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/, 'a host name: letters, digits, dots and dashes, at most 63 characters')

// Each setting's validator once; the full settings add defaults, overrides make all optional
// (an override must not fill in defaults over the inventory's own defaults).
const sshFields = {
  user: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  /** Private key file; relative paths are relative to the inventory file. Unset: ssh-agent. */
  identity: z.string().min(1),
  /** Prefix remote commands with `sudo -n` (never prompts; needs a NOPASSWD rule). */
  sudo: z.boolean(),
  connectTimeout: z.number().positive().describe('seconds to connect and authenticate'),
  commandTimeout: z.number().positive().describe('seconds one remote command may run'),
  /** A bastion to go through, as OpenSSH's ProxyJump: [user@]host[:port]; its key is checked like any host's. */
  proxyJump: z.string().regex(/^(?:[A-Za-z0-9._-]+@)?(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/, '[user@]host[:port], as ssh -J takes it'),
  /** OpenSSH client config read for this host, as ssh -F (relative to the inventory; "none": none). Unset: ~/.ssh/config, then /etc/ssh/ssh_config. */
  configFile: z.string().min(1).describe('OpenSSH client config file, as ssh -F; "none" reads none; unset: ~/.ssh/config then /etc/ssh/ssh_config'),
}

export const SshSettings = z
  .object({
    user: sshFields.user.default('root'),
    port: sshFields.port.default(22),
    identity: sshFields.identity.optional(),
    sudo: sshFields.sudo.default(false),
    connectTimeout: sshFields.connectTimeout.default(10),
    commandTimeout: sshFields.commandTimeout.default(300),
    proxyJump: sshFields.proxyJump.optional(),
    configFile: sshFields.configFile.optional(),
  })
  .strict()
export type SshSettings = z.infer<typeof SshSettings>

const cyrusFields = {
  binDir: z.string(),
  imapdConf: z.string(),
  cyrusConf: z.string(),
  pidFile: z.string(),
  /** Shell command that stops cyrus-master and returns once it is gone. */
  stop: z.string(),
  /** Shell command that starts cyrus-master. */
  start: z.string(),
  /** The Cyrus user and group owning configdirectory (a file murderctl installs takes them). */
  user: z.string().regex(/^[a-z_][a-z0-9_.-]*$/i, 'a user name'),
  group: z.string().regex(/^[a-z_][a-z0-9_.-]*$/i, 'a group name'),
  /** The syslog file Cyrus logs to on this host (pair status and replication audit read SYNCERROR events there). */
  syslogFile: z.string(),
  /** Whose cyrus-imapd package the host runs: its paths, service and syslog file are the defaults (presets.ts). */
  preset: Preset.describe("the distribution's cyrus-imapd package layout: debian (default), rhel or fedora; the other cyrus settings override it"),
}

/** Where Debian's rsyslog puts Cyrus's default facility (local6). */
export const DEFAULT_SYSLOG_FILE = PRESETS.debian.syslogFile

export const CyrusSettings = z
  .object({
    // Debian's unless a preset says otherwise (load.ts merges the preset's values first).
    binDir: cyrusFields.binDir.default(PRESETS.debian.binDir),
    imapdConf: cyrusFields.imapdConf.default(PRESETS.debian.imapdConf),
    cyrusConf: cyrusFields.cyrusConf.default(PRESETS.debian.cyrusConf),
    pidFile: cyrusFields.pidFile.default(PRESETS.debian.pidFile),
    stop: cyrusFields.stop.default(PRESETS.debian.stop),
    start: cyrusFields.start.default(PRESETS.debian.start),
    user: cyrusFields.user.default(PRESETS.debian.user),
    group: cyrusFields.group.default(PRESETS.debian.group),
    /** Unset: DEFAULT_SYSLOG_FILE (optional, so hosts built in code need not name it). */
    syslogFile: cyrusFields.syslogFile.optional(),
    preset: cyrusFields.preset.optional(),
  })
  .strict()
export type CyrusSettings = z.infer<typeof CyrusSettings>

const partialSsh = z.object(sshFields).partial().strict()
const partialCyrus = z.object(cyrusFields).partial().strict()

// Addresses and servernames end up in SSH connections and remote command lines: one token,
// no whitespace or newline, never starting with a dash (it would read as an option).
const address = z.string().regex(/^[A-Za-z0-9_:.[\]%][A-Za-z0-9_:.[\]%-]*$/, 'an address: a host name or IP address (no spaces, no leading dash)')
const servername = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'a servername: letters, digits, dots, dashes and underscores, not starting with a dash')

export const HostEntry = z
  .object({
    name: hostName,
    role: Role,
    address,
    /** The backend this replica copies. */
    replicaOf: hostName.optional(),
    /** Cyrus servername, when it differs from name (both members of a pair share one). */
    servername: servername.optional(),
    ssh: partialSsh.optional(),
    cyrus: partialCyrus.optional(),
  })
  .strict()
export type HostEntry = z.infer<typeof HostEntry>

export const Thresholds = z
  .object({
    /** Alarm when the master's count falls by more than this share since the last check. */
    masterDropWarnPercent: z.number().min(0).max(100).default(5),
    masterDropCritPercent: z.number().min(0).max(100).default(20),
    /** A master with at most this many entries counts as empty. */
    masterEmptyBelow: z.number().int().min(0).default(1),
    syncLogWarnBytes: z.number().int().min(0).default(1_000_000),
    syncLogCritBytes: z.number().int().min(0).default(50_000_000),
    syncLogWarnAgeSeconds: z.number().min(0).default(300),
    syncLogCritAgeSeconds: z.number().min(0).default(1800),
    /** A run lock held longer than this is CRITICAL in check (a dead run's, most likely). */
    lockCritAgeSeconds: z
      .number()
      .min(0)
      .default(4 * 3600),
    /** replication-consistency: a mailbox differing between a pair's members longer than this is a WARNING. */
    replicationDriftWarnSeconds: z.number().min(0).default(600),
    /** replication-consistency: how many users' mailboxes it compares per pair on each run (rotating). */
    replicationSampleUsers: z.number().int().min(1).default(50),
    /**
     * replication-consistency: how much of the end of each member's syslog it reads for guid
     * mismatches, in MiB (a cron check must not read a busy server's whole mail log each run;
     * `replication audit` reads it all).
     */
    syslogScanMiB: z.number().int().min(1).default(64),
  })
  .strict()
export type Thresholds = z.infer<typeof Thresholds>

/**
 * A replication pair's operator settings. The pair itself is a backend plus the replica naming
 * it in replicaOf; which member is active is read from the hosts, never written here.
 * Commands may use the placeholders {pair} {servername} {old} {old.address} {new} {new.address};
 * each is shell-quoted when substituted. They run on the operator's machine (`sh -c`).
 */
export const PairSettings = z
  .object({
    /** The pair's backend, as named in hosts. */
    backend: hostName,
    /** Moves the service address (the servername the frontends reach) to the new member. */
    moveAddress: z.string().min(1).optional(),
    /** Run before a failover changes anything; a non-zero exit stops it. */
    preFailover: z.string().min(1).optional(),
    /** Run after a failover verified (its failure is reported, the failover stands). */
    postFailover: z.string().min(1).optional(),
    /** A second failover of this pair within this many seconds needs --force. */
    minIntervalSeconds: z.number().int().min(0).default(3600),
    /** A controlled failover refuses (without --force) a sync log backlog beyond these. */
    maxLagBytes: z.number().int().min(0).default(50_000_000),
    maxLagSeconds: z.number().min(0).default(1800),
    /** How long verify waits for a message appended on the new master to reach the other member. */
    replicationTimeoutSeconds: z.number().positive().default(60),
    /**
     * An IMAP login the failover's verify uses through a frontend: it selects `mailbox` (one on
     * this pair) and appends a small message there. Without it, verify skips the IMAP checks.
     */
    probe: z
      .object({
        user: z.string().min(1),
        /** File holding the password (relative to the inventory); never in the inventory itself. */
        passwordFile: z.string().min(1),
        mailbox: z.string().min(1),
      })
      .strict()
      .optional(),
  })
  .strict()
export type PairSettings = z.infer<typeof PairSettings>

/** IMAP access to the backends, for repairs that re-append messages (replication repair). */
export const ImapSettings = z
  .object({
    port: z.number().int().min(1).max(65535).default(143),
    /** An admin in the backends' `admins`, also in `proxyservers` so it may act as a mailbox's owner. */
    user: z.string().min(1),
    /** File holding the password (first line); relative to the inventory file. Never the password itself. */
    passwordFile: z.string().min(1),
  })
  .strict()
export type ImapSettings = z.infer<typeof ImapSettings>

export const InventoryFile = z
  .object({
    /** The murder's name; destructive commands ask for it with --confirm. */
    name: hostName,
    mode: z.enum(['standard', 'unified']),
    /** known_hosts file used to verify host keys; relative to the inventory file. */
    knownHosts: z.string().default('~/.ssh/known_hosts'),
    /** Where runs keep journals, backups and diffs on the operator's machine. */
    stateDir: z.string().default('~/.local/state/murderctl'),
    defaults: z.object({ssh: partialSsh.optional(), cyrus: partialCyrus.optional()}).strict().optional(),
    thresholds: Thresholds.default(Thresholds.parse({})),
    imap: ImapSettings.optional(),
    hosts: z.array(HostEntry).min(1),
    /** Per replication pair: address move, hooks, anti-flapping, lag limit. */
    pairs: z.array(PairSettings).default([]),
  })
  .strict()
  .superRefine((inv, ctx) => {
    // Names double as file names (case-insensitive on some systems) and in --skip-host.
    refineUnique(
      ctx,
      inv.hosts,
      (h) => h.name.toLowerCase(),
      (i) => ['hosts', i, 'name'],
      'host name',
    )
    refineUnique(
      ctx,
      inv.hosts,
      (h) => h.address.toLowerCase(),
      (i) => ['hosts', i, 'address'],
      'address',
    )
    const masters = inv.hosts.filter((h) => h.role === 'mupdate-master')
    if (masters.length !== 1)
      ctx.addIssue({code: 'custom', path: ['hosts'], message: `exactly one host must have role mupdate-master (found ${masters.length})`})
    if (!inv.hosts.some((h) => h.role === 'backend')) ctx.addIssue({code: 'custom', path: ['hosts'], message: 'at least one host must have role backend'})
    refineUnique(
      ctx,
      inv.pairs,
      (p) => p.backend,
      (i) => ['pairs', i, 'backend'],
      'pair',
    )
    inv.pairs.forEach((p, i) => {
      if (!inv.hosts.some((h) => h.role === 'replica' && h.replicaOf === p.backend))
        ctx.addIssue({code: 'custom', path: ['pairs', i, 'backend'], message: `"${p.backend}" is not a backend that a replica names in replicaOf`})
    })
    inv.hosts.forEach((h, i) => {
      if (h.role === 'replica') {
        const target = inv.hosts.find((o) => o.name === h.replicaOf)
        if (!h.replicaOf) ctx.addIssue({code: 'custom', path: ['hosts', i, 'replicaOf'], message: 'a replica must name the backend it replicates (replicaOf)'})
        else if (!target || target.role !== 'backend')
          ctx.addIssue({code: 'custom', path: ['hosts', i, 'replicaOf'], message: `"${h.replicaOf}" is not a backend in this inventory`})
      } else if (h.replicaOf) {
        ctx.addIssue({code: 'custom', path: ['hosts', i, 'replicaOf'], message: 'only a replica has replicaOf'})
      }
    })
  })
export type InventoryFile = z.infer<typeof InventoryFile>

/** A host with every setting resolved (defaults merged, paths absolute). */
export type Host = Omit<HostEntry, 'ssh' | 'cyrus' | 'servername'> & {
  servername: string
  ssh: SshSettings
  cyrus: CyrusSettings
  /**
   * The ssh settings the inventory left to murderctl's built-in defaults: the SSH client config
   * may set those (as ssh_config sits below ssh's command line). Unset: the inventory gave all.
   */
  sshDefaulted?: readonly ('user' | 'port')[]
}

/** The inventory as commands use it: hosts resolved, paths absolute. */
export type Inventory = Omit<InventoryFile, 'hosts' | 'defaults'> & {
  /** Absolute path of the file it was read from. */
  path: string
  hosts: Host[]
}
