// The SSH transport: one pooled ssh2 connection per host, opened on first use and reused by
// every step; at most a few channels at once per connection (OpenSSH's MaxSessions is 10);
// keepalives and a per-command timeout so a dead or hung host fails fast; host keys checked
// against our own known_hosts file (ssh2 would accept any key); the operator's OpenSSH client
// config applied below the inventory's settings (ssh-config.ts). Transport problems throw typed
// errors; a command's non-zero exit is a result.
import {randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {StringDecoder} from 'node:string_decoder'
import ssh2 from 'ssh2'
import type {AgentAuthMethod, ClientChannel, ConnectConfig, PublicKeyAuthMethod, ServerHostKeyAlgorithm} from 'ssh2'
import {BugError, HostKeyError, InventoryError, RemoteCommandError, RemoteTimeoutError, UnreachableError} from '../errors.js'
import type {Host} from '../inventory/schema.js'
import {Semaphore} from '../util/limit.js'
import {
  type HostId,
  type KnownHosts,
  appendKnownHost,
  keyTypeOf,
  knownKeyTypes,
  loadKnownHosts,
  mergeKnownHosts,
  sha256Fingerprint,
  verifyHostKey,
} from './known-hosts.js'
import {commandLine, shellQuote} from './quote.js'
import {applySshConfig, defaultSshConfigFiles, readSshConfig, type ResolvedHost, sshConfigValues} from './ssh-config.js'
import type {ExecOptions, ExecResult, RemoteCommand, RemoteShell} from './types.js'

// Named ESM imports of ssh2 fail under plain Node (CJS export detection): use the default.
const {Client, utils} = ssh2
type SshClient = InstanceType<typeof Client>

export interface SshPoolOptions {
  /** known_hosts file to verify host keys against (missing file: every host is unknown). */
  knownHostsPath: string
  /** Record keys of hosts not yet known (a changed key is refused all the same). */
  acceptNewHostKeys?: boolean
  /** Channels open at once per host (default 4; OpenSSH's MaxSessions defaults to 10). */
  maxChannelsPerHost?: number
  /** ssh-agent socket, tried besides ssh.identity (default: $SSH_AUTH_SOCK). */
  agentSocket?: string
  /** The system-wide known_hosts, read as OpenSSH reads it (default /etc/ssh/ssh_known_hosts). */
  globalKnownHostsPath?: string
  /** Hash the names of accepted keys (default: as HashKnownHosts says in ~/.ssh/config or /etc/ssh/ssh_config). */
  hashKnownHosts?: boolean
  /** Keys tried when a host has no ssh.identity, as OpenSSH does (default ~/.ssh/id_ed25519, id_ecdsa, id_rsa). */
  defaultIdentities?: string[]
  /** OpenSSH client configs read for a host without ssh.configFile (default ~/.ssh/config, /etc/ssh/ssh_config; missing ones skipped). */
  sshConfigFiles?: string[]
  /** Told about every host key recorded because of acceptNewHostKeys. */
  onHostKeyAccepted?: (info: HostId & {keyType: string; fingerprint: string; file: string}) => void
}

const KEEPALIVE_INTERVAL_MS = 5000
const KEEPALIVE_COUNT_MAX = 3
/** stderr kept per command; the rest is dropped (a runaway loop must not eat the operator's RAM). */
const MAX_STDERR = 4 * 1024 * 1024
/** sshd refusing a session (MaxSessions) is retried this often, backing off from OPEN_RETRY_MS. */
const OPEN_RETRIES = 5
const OPEN_RETRY_MS = 50
/** How long a timed-out or cancelled channel may keep its slot while it closes. */
const CLOSE_GRACE_MS = 5000

/** known_hosts key types → the host-key algorithms that ask a server for that key. */
const HOST_KEY_ALGOS: Record<string, ServerHostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
}

interface Conn {
  client: SshClient
  key: string
  ready: boolean
  closed: boolean
  promise?: Promise<Conn>
}

interface RawResult extends Omit<ExecResult, 'stdout'> {
  stdout: Buffer
}

/** The connection went away before the command was sent: safe to send it again. */
class DeadConnection extends Error {}

/**
 * The command line as sent: the host's `sudo -n --` prefix unless opts.noSudo, and with
 * deadlineS a coreutils `timeout` inside sudo, so the host itself ends a command murderctl has
 * given up on (sshd does not pass a channel's signal on to a root session's command).
 */
export function remoteCommandLine(host: Host, cmd: RemoteCommand, opts: Pick<ExecOptions, 'noSudo'> & {deadlineS?: number} = {}): string {
  const line = commandLine(cmd)
  const sudo = host.ssh.sudo && !opts.noSudo
  if (opts.deadlineS !== undefined) {
    // A shell line (pipes, &&, redirections) needs its own sh under sudo or timeout: both run one program.
    const program = Array.isArray(cmd) ? line : `sh -c ${shellQuote(line)}`
    return `${sudo ? 'sudo -n -- ' : ''}timeout -k ${REMOTE_KILL_AFTER_S} ${opts.deadlineS} ${program}`
  }
  if (!sudo) return line
  return Array.isArray(cmd) ? `sudo -n -- ${line}` : `sudo -n -- sh -c ${shellQuote(line)}`
}

/** The host's own deadline comes this long after murderctl's, so murderctl reports the timeout. */
const REMOTE_DEADLINE_SLACK_S = 2
/** After the deadline's TERM, a command that does not end gets KILL this much later. */
const REMOTE_KILL_AFTER_S = 5

/** Splits a byte stream into lines: UTF-8 split across chunks, a last line without newline. */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8')
  private pieces: string[] = []

  constructor(private readonly onLine: (line: string) => void) {}

  write(chunk: Buffer): void {
    const text = this.decoder.write(chunk)
    let start = 0
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', start)) {
      this.pieces.push(text.slice(start, i))
      const line = this.pieces.length === 1 ? this.pieces[0]! : this.pieces.join('')
      this.pieces = []
      start = i + 1
      this.onLine(line)
    }
    if (start < text.length) this.pieces.push(text.slice(start))
  }

  end(): void {
    const rest = this.pieces.join('') + this.decoder.end()
    this.pieces = []
    if (rest) this.onLine(rest)
  }
}

function short(command: string, max = 160): string {
  const one = command.replace(/\s*\n\s*/g, ' ')
  return one.length > max ? `${one.slice(0, max - 1)}…` : one
}

function firstLine(s: string): string {
  return (
    s
      .split('\n')
      .map((l) => l.trim())
      .find(Boolean) ?? ''
  )
}

function where(host: Host): string {
  return host.address.includes(':') ? `[${host.address}]:${host.ssh.port}` : `${host.address}:${host.ssh.port}`
}

/** Ask sshd to signal the remote process. ssh2's public signal() refuses once stdin is at EOF
 * (which it always is here), so this goes to the protocol layer; best effort. */
function signalRemote(stream: ClientChannel, name: string): void {
  const ch = stream as unknown as {outgoing?: {id: number; state: string}; _client?: {_protocol?: {signal?: (id: number, sig: string) => void}}}
  try {
    if (ch.outgoing && (ch.outgoing.state === 'open' || ch.outgoing.state === 'eof')) ch._client?._protocol?.signal?.(ch.outgoing.id, name)
  } catch {
    // the channel or connection is already going away
  }
}

export class SshPool implements RemoteShell {
  private readonly conns = new Map<string, Promise<Conn>>()
  private readonly sems = new Map<string, Semaphore>()
  private readonly live = new Set<Conn>()
  private known?: KnownHosts
  private closed = false
  private readonly sshConfigs = new Map<string, ReturnType<typeof readSshConfig>>()
  private readonly targets = new WeakMap<Host, ResolvedHost>()

  constructor(private readonly opts: SshPoolOptions) {
    if (opts.maxChannelsPerHost !== undefined && (!Number.isInteger(opts.maxChannelsPerHost) || opts.maxChannelsPerHost < 1))
      throw new BugError(`maxChannelsPerHost must be a positive integer (got ${opts.maxChannelsPerHost})`)
  }

  /** Run a command; a non-zero exit is a result, not an error. Transport problems throw. */
  async exec(host: Host, cmd: RemoteCommand, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.raw(host, cmd, opts)
    return {...r, stdout: r.stdout.toString('utf8')}
  }

  /** Run a command that must exit 0; otherwise RemoteCommandError (exit code, first stderr line). */
  async execOk(host: Host, cmd: RemoteCommand, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.exec(host, cmd, opts)
    if (r.exitCode !== 0) throw failed(host, r, `command failed: ${short(r.command)}`)
    return r
  }

  /** A remote file's bytes (through `cat`, so the host's sudo setting applies). */
  async readFile(host: Host, path: string): Promise<Buffer> {
    const r = await this.raw(host, ['cat', '--', path])
    if (r.exitCode !== 0) throw failed(host, r, `cannot read ${path}`)
    return r.stdout
  }

  /**
   * Replace a remote file by rename: the data goes on stdin into `path.murderctl-tmp.<rand>`
   * (created under umask 077, so never readable by others while half written), takes the
   * original's owner and mode (or the remote umask's default for a new file), then `mode` when
   * given, and is renamed over the file. A symlink is followed: its target is replaced.
   */
  async writeFileAtomic(host: Host, path: string, data: Buffer | string, mode?: number): Promise<void> {
    if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) throw new BugError(`bad file mode ${mode}`)
    const rand = randomBytes(6).toString('hex')
    const script = [
      `p=${shellQuote(path)}`,
      `if [ -L "$p" ]; then p=$(readlink -f -- "$p") || exit 1; fi`,
      `t="$p.murderctl-tmp.${rand}"`,
      `u=$(umask)`,
      `umask 077`,
      `trap 'rm -f -- "$t"' EXIT`,
      `cat > "$t" || exit 1`,
      `if [ -e "$p" ]; then chown --reference="$p" -- "$t" && chmod --reference="$p" -- "$t" || exit 1`,
      `else chmod "$(printf %o $(( 0666 & ~0$u )))" -- "$t" || exit 1; fi`,
      mode === undefined ? '' : `chmod ${mode.toString(8).padStart(4, '0')} -- "$t" || exit 1`,
      `sync -- "$t" 2>/dev/null`,
      `mv -f -- "$t" "$p" || exit 1`,
    ]
      .filter(Boolean)
      .join('\n')
    const r = await this.raw(host, {shell: script}, {stdin: data})
    if (r.exitCode !== 0) throw failed(host, r, `cannot write ${path}`)
  }

  /**
   * Open the connections to these hosts now, in the background, for a command that is about to
   * reach every one of them: the handshakes (a key exchange each) overlap instead of each
   * waiting for the host's first command. A failure is left for that first command to meet
   * (it shares a connection still being opened, or opens one anew).
   */
  warm(hosts: readonly Host[]): void {
    if (this.closed) return
    for (const h of hosts) {
      try {
        const host = this.target(h)
        this.connect(host, connKey(host)).catch(() => {})
      } catch {
        // An unreadable client config: the first command says so.
      }
    }
  }

  /** End every connection (in-flight commands fail with UnreachableError). */
  async close(): Promise<void> {
    this.closed = true
    const pending = [...this.conns.values()]
    this.conns.clear()
    await Promise.allSettled(pending)
    await Promise.all([...this.live].map((c) => endClient(c)))
  }

  // ---------------------------------------------------------------------------------------

  private semaphore(key: string): Semaphore {
    let s = this.sems.get(key)
    if (!s) this.sems.set(key, (s = new Semaphore(this.opts.maxChannelsPerHost ?? 4)))
    return s
  }

  private async raw(inventoryHost: Host, cmd: RemoteCommand, opts: ExecOptions = {}): Promise<RawResult> {
    if (this.closed) throw new BugError('SshPool used after close()')
    const host = this.target(inventoryHost)
    const command = remoteCommandLine(host, cmd, opts)
    if (opts.signal?.aborted) throw cancelled(host, command)
    const key = connKey(host)
    for (let attempt = 0; ; attempt++) {
      // The slot is held until the channel has closed (run() releases it), not just until the
      // promise settles, so a timed-out channel still counts against MaxSessions while it closes.
      const release = await this.semaphore(key).acquire()
      let conn: Conn
      try {
        conn = await this.connect(host, key)
      } catch (error) {
        release()
        throw error
      }
      try {
        return await this.run(host, conn, cmd, command, opts, release)
      } catch (error) {
        if (!(error instanceof DeadConnection)) throw error
        this.drop(conn)
        // Reconnect once: the command was never sent, so sending it again is safe.
        if (attempt >= 1)
          throw new UnreachableError(`lost the SSH connection to ${where(host)} and could not get it back: ${error.message}`, {host: host.name, cause: error})
      }
    }
  }

  /** Open a channel, send the command and collect what it does. Owns `release` once called. */
  private run(host: Host, conn: Conn, cmd: RemoteCommand, command: string, opts: ExecOptions, release: () => void): Promise<RawResult> {
    const started = Date.now()
    const timeoutMs = opts.timeoutMs ?? host.ssh.commandTimeout * 1000
    return new Promise<RawResult>((resolve, reject) => {
      let stream: ClientChannel | undefined
      let settled = false
      let graceTimer: NodeJS.Timeout | undefined
      let retryTimer: NodeJS.Timeout | undefined
      let requesting = false
      let refusals = 0
      const out: Buffer[] = []
      const err: Buffer[] = []
      let errBytes = 0
      let exitCode: number | null = null
      let exitSignal: string | undefined
      let sawExit = false
      const lines = opts.onStdoutLine ? new LineSplitter(opts.onStdoutLine) : undefined

      const onAbort = () => stop(cancelled(host, command))
      const timer = setTimeout(
        () =>
          stop(new RemoteTimeoutError(`command on ${host.name} (${host.address}) timed out after ${timeoutMs / 1000}s: ${short(command)}`, {host: host.name})),
        timeoutMs,
      )
      opts.signal?.addEventListener('abort', onAbort, {once: true})

      const settle = (fn: () => void) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        clearTimeout(retryTimer)
        opts.signal?.removeEventListener('abort', onAbort)
        fn()
      }
      // Give up on the command: tell the remote process, close the channel, keep draining it.
      // Its slot comes back when the channel has closed, or after a grace period at the latest.
      function stop(e: Error) {
        settle(() => {
          if (stream) {
            signalRemote(stream, 'TERM')
            try {
              stream.close()
            } catch {
              // already closing
            }
          }
          if (stream || requesting) {
            graceTimer = setTimeout(release, CLOSE_GRACE_MS)
            graceTimer.unref()
          } else {
            release()
          }
          reject(e)
        })
      }

      const onChannel = (e: Error | undefined, ch: ClientChannel) => {
        requesting = false
        if (e) {
          if (settled) return release()
          if (conn.closed || /no response from server|not connected/i.test(e.message)) {
            release()
            return settle(() => reject(new DeadConnection(e.message)))
          }
          // sshd refused the session: MaxSessions reached, often only because it has not yet
          // freed the session of a channel that just closed. Nothing ran; try again shortly.
          if (refusals < OPEN_RETRIES) {
            retryTimer = setTimeout(request, OPEN_RETRY_MS * 2 ** refusals++)
            return
          }
          release()
          return settle(() =>
            reject(
              new UnreachableError(`sshd on ${where(host)} refused a new session ${refusals + 1} times: ${e.message}`, {
                host: host.name,
                hint: 'the server limits sessions per connection (MaxSessions); lower maxChannelsPerHost',
                cause: e,
              }),
            ),
          )
        }
        stream = ch
        ch.on('close', () => {
          clearTimeout(graceTimer)
          release()
          settle(() => {
            try {
              lines?.end()
            } catch (error) {
              return reject(error)
            }
            if (!sawExit && conn.closed)
              return reject(
                new UnreachableError(`lost the SSH connection to ${where(host)} while running: ${short(command)}`, {
                  host: host.name,
                  hint: 'the command may or may not have completed; look at the host before running it again',
                }),
              )
            resolve({
              host: host.name,
              command,
              exitCode,
              ...(exitSignal ? {signal: exitSignal} : {}),
              stdout: Buffer.concat(out),
              stderr:
                withoutSudoNoise(Buffer.concat(err).toString('utf8'), host) +
                (errBytes > MAX_STDERR ? `\n[murderctl: stderr truncated after ${MAX_STDERR} bytes]\n` : ''),
              durationMs: Date.now() - started,
            })
          })
        })
        // Both streams are always read to the end, or the channel never closes.
        ch.on('data', (d: Buffer) => {
          if (settled) return
          if (!lines) return void out.push(d)
          try {
            lines.write(d)
          } catch (error) {
            stop(error as Error)
          }
        })
        ch.stderr.on('data', (d: Buffer) => {
          if (settled) return
          if (errBytes < MAX_STDERR) err.push(errBytes + d.length > MAX_STDERR ? d.subarray(0, MAX_STDERR - errBytes) : d)
          errBytes += d.length
        })
        ch.on('exit', (code: number | null, sig?: string) => {
          sawExit = true
          exitCode = typeof code === 'number' ? code : null
          if (sig) exitSignal = sig
        })
        ch.on('error', (e: Error) => stop(new UnreachableError(`SSH channel error on ${where(host)}: ${e.message}`, {host: host.name, cause: e})))
        ch.stderr.on('error', () => {})
        if (settled) {
          // Timed out or cancelled while the channel was being opened.
          try {
            ch.close()
          } catch {
            // ignore
          }
          return
        }
        ch.end(opts.stdin ?? undefined)
      }

      function request() {
        if (settled) return
        // Aborted while it waited for a slot or for the connection.
        if (opts.signal?.aborted) return stop(cancelled(host, command))
        try {
          requesting = true
          conn.client.exec(remoteCommandLine(host, cmd, {...opts, deadlineS: Math.ceil(timeoutMs / 1000) + REMOTE_DEADLINE_SLACK_S}), onChannel)
        } catch (error) {
          // ssh2 throws "Not connected" synchronously when the socket is gone.
          requesting = false
          release()
          settle(() => reject(new DeadConnection((error as Error).message)))
        }
      }
      request()
    })
  }

  /** A TCP stream to `port` on the host, opened by its own sshd (direct-tcpip), over the pooled connection. */
  async forward(inventoryHost: Host, port: number): Promise<ClientChannel> {
    const host = this.target(inventoryHost)
    const conn = await this.connect(host, connKey(host))
    return new Promise((resolve, reject) => {
      try {
        conn.client.forwardOut('127.0.0.1', 0, host.address, port, (err, stream) => (err ? reject(err) : resolve(stream)))
      } catch (error) {
        reject(error)
      }
    })
  }

  /** The client config a host reads: its ssh.configFile (as ssh -F), else the default files. Parsed once per pool. */
  private sshConfig(host: Host): ReturnType<typeof readSshConfig> {
    const f = host.ssh.configFile
    const files = f === 'none' ? [] : f ? [f] : (this.opts.sshConfigFiles ?? defaultSshConfigFiles())
    const key = files.join('\0')
    let c = this.sshConfigs.get(key)
    if (!c) this.sshConfigs.set(key, (c = readSshConfig(files, {required: Boolean(f)})))
    return c
  }

  /** The host as SSH reaches it: the inventory's settings over the client config's (HostName, User, Port, IdentityFile, ProxyJump). */
  private target(host: Host): ResolvedHost {
    let t = this.targets.get(host)
    if (!t) this.targets.set(host, (t = applySshConfig(host, this.sshConfig(host))))
    return t
  }

  private knownHosts(): KnownHosts {
    this.known ??= mergeKnownHosts(loadKnownHosts(this.opts.knownHostsPath), loadKnownHosts(this.opts.globalKnownHostsPath ?? '/etc/ssh/ssh_known_hosts'))
    return this.known
  }

  private connect(host: Host, key: string): Promise<Conn> {
    const existing = this.conns.get(key)
    if (existing) return existing
    const p = this.open(host, key)
    this.conns.set(key, p)
    p.then(
      (c) => (c.promise = p),
      () => this.conns.get(key) === p && this.conns.delete(key),
    )
    return p
  }

  /** Forget a connection (and end it, if it is somehow still up). */
  private drop(conn: Conn): void {
    if (conn.promise && this.conns.get(conn.key) === conn.promise) this.conns.delete(conn.key)
    if (!conn.closed) void endClient(conn)
  }

  /**
   * A TCP stream to the host's SSH port opened by the bastion its ssh.proxyJump names (as
   * `ssh -J`): the bastion is an SSH host of its own, pooled, its key checked like any other.
   */
  private async throughJump(host: Host): Promise<ClientChannel> {
    // The bastion reads the client config too (an alias there works), but not for a jump of its own: one hop.
    const t = this.target(jumpHost(host))
    const jump: ResolvedHost = {...t, ssh: {...t.ssh, proxyJump: undefined}}
    const conn = await this.connect(jump, connKey(jump))
    return new Promise((resolve, reject) => {
      conn.client.forwardOut('127.0.0.1', 0, host.address, host.ssh.port, (err, stream) =>
        err
          ? reject(
              new UnreachableError(`the bastion ${where(jump)} could not reach ${where(host)}: ${err.message}`, {
                host: host.name,
                hint: 'check the address and port as the bastion sees them, and AllowTcpForwarding on the bastion',
              }),
            )
          : resolve(stream),
      )
    })
  }

  private async open(host: Host, key: string): Promise<Conn> {
    const sock = host.ssh.proxyJump ? await this.throughJump(host) : undefined
    return this.openOn(host, key, sock)
  }

  private openOn(host: ResolvedHost, key: string, sock?: ClientChannel): Promise<Conn> {
    const {address} = host
    const {port, user, identity, connectTimeout} = host.ssh
    const id: HostId = {host: host.name, address, port}
    let keyProblem: HostKeyError | undefined

    const cfg: ConnectConfig = {
      host: address,
      port,
      username: user,
      readyTimeout: connectTimeout * 1000,
      keepaliveInterval: KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      ...(sock ? {sock} : {}),
      hostVerifier: (keyBlob: Buffer): boolean => {
        try {
          keyProblem = this.checkHostKey(host, id, keyBlob)
        } catch (error) {
          keyProblem = new HostKeyError(`cannot check the host key of ${host.name} (${where(host)}): ${(error as Error).message}`, {
            host: host.name,
            cause: error,
          })
        }
        return keyProblem === undefined
      },
    }
    // Ask for a key type we have on file first, as OpenSSH does; otherwise a host known by its
    // RSA key that also has an Ed25519 key would look like a changed key.
    let prefer: ServerHostKeyAlgorithm[]
    try {
      prefer = knownKeyTypes(this.knownHosts(), id).flatMap((t) => HOST_KEY_ALGOS[t] ?? [])
    } catch (error) {
      return Promise.reject(
        new HostKeyError(`cannot read the known_hosts file ${this.opts.knownHostsPath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
          host: host.name,
          cause: error,
        }),
      )
    }
    if (prefer.length) cfg.algorithms = {serverHostKey: {remove: prefer, prepend: prefer, append: []}}

    try {
      // As OpenSSH: the named key, else the client config's IdentityFiles that load, else the
      // default ones that are there; the agent's keys too.
      const keys = identity ? [readIdentity(host, identity)] : usableKeys(host.identityFiles ?? this.opts.defaultIdentities)
      const agent = this.opts.agentSocket ?? process.env.SSH_AUTH_SOCK
      if (!keys.length && !agent)
        throw new UnreachableError(
          `no SSH credentials for ${host.name}: no ssh.identity, ${host.identityFiles ? `no usable key among the SSH client config's IdentityFile (${host.identityFiles.join(', ')})` : 'no default key in ~/.ssh'}, and no ssh-agent (SSH_AUTH_SOCK)`,
          {
            host: host.name,
            hint: 'set ssh.identity in the inventory, or start ssh-agent and ssh-add the key',
          },
        )
      const methods: (PublicKeyAuthMethod | AgentAuthMethod)[] = keys.map((key) => ({type: 'publickey', username: user, key}))
      if (agent) methods.push({type: 'agent', username: user, agent})
      cfg.authHandler = methods
    } catch (error) {
      return Promise.reject(error)
    }

    return new Promise<Conn>((resolve, reject) => {
      const client = new Client()
      const conn: Conn = {client, key, ready: false, closed: false}
      this.live.add(conn)
      const fail = (e: Error) => {
        if (!conn.ready) reject(keyProblem ?? e)
      }
      client.on('ready', () => {
        conn.ready = true
        // Each command is a few small packets (channel open, exec, EOF): with Nagle on, each
        // one waited for the server's delayed ACK, about 40 ms a command (6 ms without).
        client.setNoDelay(true)
        if (this.closed) {
          void endClient(conn)
          return reject(new BugError('SshPool closed while connecting'))
        }
        resolve(conn)
      })
      client.on('error', (e: Error & {code?: string; level?: string}) => {
        // After 'ready' an error means the connection is going away; 'close' follows and the
        // commands on it fail or are re-sent, so there is nothing more to do here.
        fail(classifyConnectError(e, host))
      })
      client.on('end', () => {
        conn.closed = true
      })
      client.on('close', () => {
        conn.closed = true
        this.live.delete(conn)
        if (conn.promise && this.conns.get(key) === conn.promise) this.conns.delete(key)
        fail(new UnreachableError(`connection to ${where(host)} closed during the SSH handshake`, {host: host.name}))
      })
      try {
        client.connect(cfg)
      } catch (error) {
        this.live.delete(conn)
        reject(new UnreachableError(`cannot connect to ${where(host)}: ${(error as Error).message}`, {host: host.name, cause: error}))
      }
    })
  }

  /** undefined when the key may be used; otherwise the error to report. */
  private checkHostKey(host: ResolvedHost, id: HostId, keyBlob: Buffer): HostKeyError | undefined {
    const file = this.opts.knownHostsPath
    const known = this.knownHosts()
    const v = verifyHostKey(known, id, keyBlob)
    const fp = sha256Fingerprint(keyBlob)
    const type = keyTypeOf(keyBlob) ?? 'unknown-type'
    const who = `${host.name} (${where(host)})`
    if (v.status === 'match') return undefined
    if (v.status === 'unknown' && this.opts.acceptNewHostKeys) {
      appendKnownHost(file, id, keyBlob, {hash: this.opts.hashKnownHosts ?? host.hashKnownHosts ?? false})
      this.known = undefined
      this.opts.onHostKeyAccepted?.({...id, keyType: type, fingerprint: fp, file})
      return undefined
    }
    const ignored = known.invalid.length
      ? ` (${known.invalid.length} malformed line(s) in ${file} were ignored, first: line ${known.invalid[0]!.line}: ${known.invalid[0]!.reason})`
      : ''
    if (v.status === 'unknown')
      return new HostKeyError(`unknown host key for ${who}: ${type} ${fp}`, {
        host: host.name,
        hint: `check that fingerprint with the host's own ssh-keygen -lf output, then add the key with: ssh-keyscan -p ${host.ssh.port} ${shellQuote(host.address)} >> ${shellQuote(file)} -- or re-run with --accept-new-host-keys${ignored}`,
      })
    if (v.status === 'revoked')
      return new HostKeyError(`host key ${type} ${fp} of ${who} is marked @revoked in ${file}: refusing to connect`, {
        host: host.name,
        hint: 'the key was revoked on purpose; give the host a new key and record it',
      })
    return new HostKeyError(
      `host key for ${who} has CHANGED: it is now ${type} ${fp}, ${file} has ${v.expectedTypes.join(', ')}: possible man-in-the-middle, refusing to connect`,
      {
        host: host.name,
        hint: `--accept-new-host-keys never replaces a changed key; if the host was really reinstalled, check the new fingerprint out of band, then remove the old line(s) (ssh-keygen -R ${shellQuote(host.ssh.port === 22 ? host.address : `[${host.address}]:${host.ssh.port}`)} -f ${shellQuote(file)}, and the same for ${host.name}) and add the new key`,
      },
    )
  }
}

/**
 * sudo warns on stderr when the host cannot resolve its own name, then runs the command all
 * the same; callers judge a Cyrus tool by its stderr, so that warning is not theirs to read.
 */
export function withoutSudoNoise(stderr: string, host: Host): string {
  return host.ssh.sudo ? stderr.replace(/^sudo: unable to resolve host [^\n]*\n?/gm, '') : stderr
}

function connKey(host: Host): string {
  return `${host.name}\0${host.ssh.user}@${host.address}:${host.ssh.port}${host.ssh.proxyJump ? `\0via ${host.ssh.proxyJump}` : ''}`
}

/** The bastion of ssh.proxyJump as a host of its own: its user and port, else the host's user and 22; the host's keys. */
export function jumpHost(host: Host): Host {
  const m = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host.ssh.proxyJump ?? '')
  if (!m)
    throw new InventoryError(`the ProxyJump of ${host.name} (ssh.proxyJump, or the SSH client config's) is not [user@]host[:port]: ${host.ssh.proxyJump}`, {
      host: host.name,
    })
  const address = m[2].replace(/^\[|\]$/g, '')
  return {
    ...host,
    name: `${address} (bastion of ${host.name})`,
    address,
    ssh: {...host.ssh, user: m[1] ?? host.ssh.user, port: m[3] ? Number(m[3]) : 22, proxyJump: undefined, sudo: false},
    // What the jump spec leaves out, the client config may give (ssh -J runs ssh to the bastion, which reads it).
    sshDefaulted: [...(m[1] ? [] : (['user'] as const)), ...(m[3] ? [] : (['port'] as const))],
  }
}

/** Those of the keys (default: OpenSSH's default identities) that exist and load without a passphrase. */
function usableKeys(paths = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(homedir(), '.ssh', f))): Buffer[] {
  return paths.flatMap((p) => {
    try {
      const buf = readFileSync(p)
      return utils.parseKey(buf) instanceof Error ? [] : [buf]
    } catch {
      return []
    }
  })
}

/** Whether the client config says HashKnownHosts yes for `host` (Debian's /etc/ssh/ssh_config does, under Host *). */
export function hashKnownHostsConfigured(files = defaultSshConfigFiles(), host = '*'): boolean {
  return sshConfigValues(readSshConfig(files), host).hashKnownHosts ?? false
}

function readIdentity(host: Host, identity: string): Buffer {
  let buf: Buffer
  try {
    buf = readFileSync(identity)
  } catch (error) {
    throw new InventoryError(`cannot read the SSH key ${identity} of host ${host.name}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      host: host.name,
    })
  }
  const parsed = utils.parseKey(buf)
  if (parsed instanceof Error) {
    const encrypted = /encrypted|passphrase/i.test(parsed.message)
    throw new InventoryError(`${encrypted ? 'the SSH key is passphrase-protected' : `not a usable private key (${parsed.message})`}: ${identity}`, {
      host: host.name,
      hint: encrypted
        ? 'load it into ssh-agent and drop ssh.identity for this host, or use a key without a passphrase'
        : 'point ssh.identity at an OpenSSH private key',
    })
  }
  return buf
}

function endClient(conn: Conn): Promise<void> {
  if (conn.closed) return Promise.resolve()
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      conn.client.destroy()
      resolve()
    }, 3000)
    t.unref()
    conn.client.once('close', () => {
      clearTimeout(t)
      resolve()
    })
    conn.client.end()
  })
}

function cancelled(host: Host, command: string): RemoteCommandError {
  return new RemoteCommandError(`cancelled: ${short(command)}`, {command, exitCode: null, stderr: ''}, {host: host.name})
}

/** RemoteCommandError for a result: what failed, how it ended, the first line of stderr. */
function failed(host: Host, r: {command: string; exitCode: number | null; signal?: string; stderr: string}, what: string): RemoteCommandError {
  const status = r.exitCode !== null ? `exit ${r.exitCode}` : r.signal ? `killed by signal ${r.signal}` : 'no exit status'
  const err = firstLine(r.stderr)
  return new RemoteCommandError(`${what} (${status})${err ? `: ${err}` : ''}`, {command: r.command, exitCode: r.exitCode, stderr: r.stderr}, {host: host.name})
}

function classifyConnectError(err: Error & {code?: string; level?: string}, host: Host): UnreachableError {
  const at = where(host)
  const ctx = {host: host.name, cause: err}
  if (err.code === 'ECONNREFUSED')
    return new UnreachableError(`connection refused on ${at}`, {
      ...ctx,
      hint: 'is sshd running there, and are the address and ssh.port in the inventory right?',
    })
  if (err.level === 'client-authentication')
    return new UnreachableError(`authentication failed for user ${host.ssh.user} on ${at}`, {
      ...ctx,
      hint: 'check ssh.user and ssh.identity (or the keys in your ssh-agent) in the inventory',
    })
  if (err.level === 'client-timeout' || err.code === 'ETIMEDOUT')
    return new UnreachableError(`no SSH answer from ${at} within ${host.ssh.connectTimeout}s`, {
      ...ctx,
      hint: 'the host or the network is down; raise ssh.connectTimeout only if it is just slow',
    })
  if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') return new UnreachableError(`no route to ${at}`, ctx)
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN')
    return new UnreachableError(`cannot resolve ${host.address}`, {...ctx, hint: 'use an IP address or fix DNS'})
  if (err.code === 'ECONNRESET') return new UnreachableError(`connection reset by ${at}`, ctx)
  return new UnreachableError(`cannot connect to ${at}: ${firstLine(err.message)}`, ctx)
}
