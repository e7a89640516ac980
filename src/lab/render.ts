// The files that make a lab host: imapd.conf, cyrus.conf, sshd_config and its boot script.
// Every listener binds the host's own loopback address so hosts never collide.
import type {LabHost, LabTopology} from './topology.js'

export const LAB_ADMIN = 'cyrus'
export const MUPDATE_PORT = 3905
export const CSYNC_PORT = 2005
/** Slaves retry this often (seconds); Cyrus's default of 20 would make tests sleep. */
export const LAB_RETRY_DELAY = 3

export interface RenderContext {
  dir: string
  topology: LabTopology
  hosts: LabHost[]
  password: string
  /** The master's MUPDATE port (default MUPDATE_PORT): every listener uses it, and mupdate_server names it when not the default. */
  mupdatePort?: number
}

export const mupdatePortOf = (ctx: Pick<RenderContext, 'mupdatePort'>) => ctx.mupdatePort ?? MUPDATE_PORT
/** mupdate_server's value: Cyrus takes `host:port` there (not from mupdate_port, unused in 3.6). */
const mupdateServer = (ctx: RenderContext) => `mupdate${mupdatePortOf(ctx) === MUPDATE_PORT ? '' : `:${mupdatePortOf(ctx)}`}`

const lines = (...xs: (string | false | undefined)[]) => xs.filter((x): x is string => typeof x === 'string').join('\n') + '\n'

/** The third octet of a lab address: tells this machine's labs apart in the shared syslog. */
const labTag = (h: LabHost) => h.address.split('.')[2]

/**
 * Where every host keeps its mailboxes.db while a large lab is seeded: the host's own /run, a
 * tmpfs, so no entry waits for the disk (recover-master's trick). Moved to configdirectory
 * before the lab is handed over (src/lab/seed.ts, listsToDisk).
 */
export const LAB_SEED_DB = '/run/cyrus/lab-seed-mailboxes.db'

/** `memoryDb`: the mailboxes.db in LAB_SEED_DB (a large lab's seeding); the handed-over file has no such key. */
export function renderImapdConf(h: LabHost, ctx: RenderContext, opts: {memoryDb?: boolean} = {}): string {
  const inMurder = h.role === 'frontend' || h.role === 'backend'
  const replica = ctx.hosts.find((r) => r.role === 'replica' && r.replicaOf === h.name)
  // A replica carries what it needs to become its pair's master (murderctl failover), marked
  // out of use: mupdate_server and sync_log commented out as murderctl's editor does it, the
  // credentials in place (they do nothing without mupdate_server).
  const standby = h.role === 'replica'
  const member = inMurder || standby
  const unified = ctx.topology === 'unified'
  return lines(
    `# lab host ${h.name} (${h.role}), written by murderctl lab up`,
    'configdirectory: /var/lib/cyrus',
    opts.memoryDb && `mboxlist_db_path: ${LAB_SEED_DB}`,
    'proc_path: /run/cyrus/proc',
    'mboxname_lockpath: /run/cyrus/lock',
    'defaultpartition: default',
    'partition-default: /var/spool/cyrus/mail',
    'altnamespace: no',
    'unixhierarchysep: no',
    'hashimapspool: true',
    'umask: 077',
    `servername: ${h.servername}`,
    `syslog_prefix: lab${labTag(h)}-${h.name}`,
    `admins: ${LAB_ADMIN}`,
    'allowplaintext: yes',
    'sasl_pwcheck_method: auxprop',
    'sasl_auxprop_plugin: sasldb',
    `sasl_sasldb_path: ${ctx.dir}/sasldb2`,
    'sasl_mech_list: PLAIN',
    'lmtpsocket: /run/cyrus/socket/lmtp',
    'idlesocket: /run/cyrus/socket/idle',
    'notifysocket: /run/cyrus/socket/notify',
    inMurder && `mupdate_server: ${mupdateServer(ctx)}`,
    standby && `#mupdate_server: ${mupdateServer(ctx)}  # murderctl`,
    member && `mupdate_config: ${unified ? 'unified' : 'standard'}`,
    member && `mupdate_authname: ${LAB_ADMIN}`,
    member && `mupdate_password: ${ctx.password}`,
    member && `mupdate_retry_delay: ${LAB_RETRY_DELAY}`,
    member && `proxy_authname: ${LAB_ADMIN}`,
    member && `proxy_password: ${ctx.password}`,
    (h.role === 'backend' || standby) && `proxyservers: ${LAB_ADMIN}`,
    replica && 'sync_log: 1',
    standby && '#sync_log: 1  # murderctl',
    replica && `sync_host: ${replica.name}`,
    (replica || standby) && `sync_authname: ${LAB_ADMIN}`,
    (replica || standby) && `sync_password: ${ctx.password}`,
    (replica || standby) && `sync_realm: ${h.servername}`,
    (replica || standby) && 'sync_try_imap: no',
  )
}

/**
 * `seeding`: unified backends boot without their mupdate slave. Cyrus 3.6's slave rewrites a
 * local mailbox it hears about from the master into an entry without uniqueid, which breaks the
 * mailbox (see the lab notes); seeding with slaves off keeps the lab's mailboxes whole.
 */
export function renderCyrusConf(h: LabHost, ctx: RenderContext, opts: {seeding?: boolean} = {}): string {
  const a = h.address
  const unified = ctx.topology === 'unified'
  const slave = h.role === 'frontend' || (unified && h.role === 'backend' && !opts.seeding)
  const replicated = ctx.hosts.some((r) => r.role === 'replica' && r.replicaOf === h.name)
  const standby = h.role === 'replica'
  // Each member of a pair also carries the other config's entries, disabled the way murderctl's
  // editor disables them, so a failover can switch either way.
  const off = (line: string) => `#${line}  # disabled by murderctl`
  const port = mupdatePortOf(ctx)
  const slaveLine = `\tmupdate\t\tcmd="mupdate" listen="${a}:${port}" prefork=1`
  const syncServerLine = `\tsyncserver\tcmd="sync_server" listen="${a}:${CSYNC_PORT}" prefork=0`
  return lines(
    `# lab host ${h.name} (${h.role}), written by murderctl lab up`,
    'START {',
    '\trecover\t\tcmd="ctl_cyrusdb -r"',
    h.role === 'backend' && '\tmupdatepush\tcmd="ctl_mboxlist -m"',
    standby && off('\tmupdatepush\tcmd="ctl_mboxlist -m"'),
    '}',
    'SERVICES {',
    h.role === 'mupdate-master' && `\tmupdate\t\tcmd="mupdate -m" listen="${a}:${port}" prefork=1`,
    slave && slaveLine,
    standby && unified && off(slaveLine),
    h.role !== 'mupdate-master' && `\timap\t\tcmd="imapd" listen="${a}:143" prefork=0 maxchild=50`,
    standby && syncServerLine,
    replicated && off(syncServerLine),
    '}',
    'EVENTS {',
    '\tcheckpoint\tcmd="ctl_cyrusdb -c" period=30',
    '}',
    'DAEMON {',
    replicated && '\tsyncclient\tcmd="sync_client -r"',
    standby && off('\tsyncclient\tcmd="sync_client -r"'),
    '}',
  )
}

export function renderSshdConfig(h: LabHost, ctx: RenderContext): string {
  return lines(
    `ListenAddress ${h.address}:22`,
    `HostKey ${ctx.dir}/ssh_host_ed25519_key`,
    'PidFile /run/sshd.pid',
    `AuthorizedKeysFile ${ctx.dir}/authorized_keys`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'MaxSessions 10',
    'LogLevel ERROR',
    'Subsystem sftp internal-sftp',
  )
}

/** The stand-in for `systemctl start|stop cyrus-imapd` on a lab host; it runs inside the host. */
export function renderServiceScript(): string {
  return `#!/bin/sh
# Lab stand-in for "systemctl start|stop|status cyrus-imapd". Runs inside one lab host.
pidfile=/run/cyrus-master.pid
# A zombie master (this machine's pid 1 may never reap it) is not running.
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && [ "$(ps -o stat= -p "$(cat "$pidfile")" | cut -c1)" != Z ]; }
case "$1" in
start)
  running && exit 0
  rm -f "$pidfile"
  /usr/lib/cyrus/bin/master -d -p "$pidfile" </dev/null >/dev/null 2>&1
  i=0; while ! running; do i=$((i+1)); [ $i -gt 100 ] && { echo "cyrus-master did not start" >&2; exit 1; }; sleep 0.1; done ;;
stop)
  running || { rm -f "$pidfile"; exit 0; }
  pid=$(cat "$pidfile"); kill -TERM "$pid"
  i=0; while kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" | cut -c1)" != Z ]; do i=$((i+1)); [ $i -gt 300 ] && kill -KILL "$pid"; sleep 0.1; done
  rm -f "$pidfile" ;;
status) running ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
`
}

/**
 * Run by `unshare -m`: gives the host its own /etc (an overlay, so files there can be replaced
 * by rename as on a real machine), Cyrus directories, /run and a fresh /root (so the
 * machine's own shell start-up files do not slow every SSH command), then holds the namespace.
 */
export function renderBootScript(h: LabHost, ctx: RenderContext): string {
  const hd = `${ctx.dir}/hosts/${h.name}`
  return `#!/bin/sh
set -e
mount --make-rprivate /
mount -t overlay lab-etc -o lowerdir=/etc,upperdir=${hd}/etc,workdir=${hd}/etc-work /etc
mount --bind ${hd}/lib /var/lib/cyrus
mount --bind ${hd}/spool /var/spool/cyrus
mount -t tmpfs -o mode=755 lab-run /run
mount -t tmpfs -o mode=700 lab-root /root
mkdir -p /run/sshd /run/cyrus/socket /run/cyrus/proc /run/cyrus/lock
chown -R cyrus:mail /run/cyrus
/usr/sbin/sshd -f ${hd}/sshd_config
echo ready > ${hd}/namespace-ready
exec sleep infinity
`
}

export function renderEtcHosts(ctx: RenderContext): string {
  return lines('127.0.0.1\tlocalhost', ...ctx.hosts.map((h) => `${h.address}\t${h.name}`))
}

export function renderServices(system: string): string {
  const extra: string[] = []
  if (!/^mupdate\s/m.test(system)) extra.push(`mupdate\t\t${MUPDATE_PORT}/tcp\t\t\t# Cyrus MUPDATE (added by murderctl lab)`)
  if (!/^csync\s/m.test(system)) extra.push(`csync\t\t${CSYNC_PORT}/tcp\t\t\t# Cyrus replication (added by murderctl lab)`)
  return system.endsWith('\n') || system === '' ? system + lines(...extra) : `${system}\n${lines(...extra)}`
}

/**
 * The lab's service-address move (the inventory's pairs[].moveAddress): every lab host resolves
 * names through its own /etc/hosts, so moving `servername` means rewriting that line on each,
 * over SSH, from inside (their /etc is an overlay: write beside, replace by rename). The old
 * member may be down (a hard failover): it is skipped then; any other host must take the move.
 * Usage: move-address SERVERNAME NEW_ADDRESS OLD_MEMBER
 */
export function renderMoveAddressScript(ctx: RenderContext): string {
  const hosts = ctx.hosts.map((h) => `${h.name}=${h.address}`).join(' ')
  return `#!/bin/sh
# Lab stand-in for a VIP move / nsupdate: point SERVERNAME at NEW_ADDRESS in every host's /etc/hosts.
set -u
name=$1 addr=$2 old=$3
dir=${ctx.dir}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
move() {
  ssh -o BatchMode=yes -o ConnectTimeout=3 -o UserKnownHostsFile="$dir/known_hosts" -o StrictHostKeyChecking=yes -i "$dir/id_ed25519" "root@$2" sh -s -- "$name" "$addr" >"$tmp/$1.out" 2>&1 <<'EOS'
set -e
awk -v n="$1" -v a="$2" '$2 == n { print a "\\t" n; next } { print }' /etc/hosts > /etc/hosts.murderctl-move
mv /etc/hosts.murderctl-move /etc/hosts
awk -v n="$1" -v a="$2" '$2 == n && $1 == a { ok = 1 } END { exit !ok }' /etc/hosts
EOS
  echo $? > "$tmp/$1.rc"
}
# Every host at once: the move is part of the failover's service gap.
for pair in ${hosts}; do move "\${pair%%=*}" "\${pair#*=}" & done
wait
failed=0
for pair in ${hosts}; do
  host=\${pair%%=*}
  if [ "$(cat "$tmp/$host.rc")" = 0 ]; then echo "$host: $name -> $addr"
  elif [ "$host" = "$old" ]; then echo "skipped $host (unreachable: the old member)" >&2
  else echo "FAILED on $host: $(cat "$tmp/$host.out")" >&2; failed=1
  fi
done
exit $failed
`
}
