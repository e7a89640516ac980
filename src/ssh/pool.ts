// The SSH transport: one pooled connection per host, reused by every step; a bounded number
// of channels per connection (OpenSSH's MaxSessions is 10); keepalives and a per-command
// timeout so a dead host fails fast; host keys checked against known_hosts.
import {randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {StringDecoder} from 'node:string_decoder'
import ssh2 from 'ssh2'
import type {ClientChannel, ConnectConfig} from 'ssh2'
import {HostKeyError, InventoryError, RemoteCommandError, RemoteTimeoutError, UnreachableError} from '../errors.js'
import type {Host} from '../inventory/schema.js'
import {Semaphore} from '../util/limit.js'
import {appendKnownHost, type KnownHostLine, loadKnownHosts, sha256Fingerprint, verifyHostKey} from './known-hosts.js'
import {commandLine, shellQuote} from './quote.js'
import type {ExecOptions, ExecResult, RemoteCommand} from './types.js'

const {Client} = ssh2

export interface SshPoolOptions {
  knownHostsPath: string
  /** Record keys of hosts not yet known (never a changed key). */
  acceptNewHostKeys?: boolean
  maxChannelsPerHost?: number
  agentSocket?: string
}

interface Conn {
  client: InstanceType<typeof Client>
  closed: boolean
}

interface RawResult extends Omit<ExecResult, 'stdout'> {
  stdout: Buffer
}

export class SshPool {
  private conns = new Map<string, Promise<Conn>>()
  private sems = new Map<string, Semaphore>()
  private known?: KnownHostLine[]

  constructor(private readonly opts: SshPoolOptions) {}

  private knownHosts(): KnownHostLine[] {
    this.known ??= loadKnownHosts(this.opts.knownHostsPath)
    return this.known
  }

  private semaphore(host: Host): Semaphore {
    let s = this.sems.get(host.name)
    if (!s) this.sems.set(host.name, (s = new Semaphore(this.opts.maxChannelsPerHost ?? 4)))
    return s
  }

  private connect(host: Host): Promise<Conn> {
    const existing = this.conns.get(host.name)
    if (existing) return existing
    const p = this.open(host)
    this.conns.set(host.name, p)
    p.catch(() => this.conns.delete(host.name))
    return p
  }

  private open(host: Host): Promise<Conn> {
    const {address} = host
    const {port, user, identity, connectTimeout} = host.ssh
    let keyProblem: HostKeyError | undefined
    const cfg: ConnectConfig = {
      host: address,
      port,
      username: user,
      readyTimeout: connectTimeout * 1000,
      keepaliveInterval: 5000,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        const id = {host: host.name, address, port}
        const v = verifyHostKey(this.knownHosts(), id, key)
        const fp = sha256Fingerprint(key)
        if (v.status === 'match') return true
        if (v.status === 'unknown' && this.opts.acceptNewHostKeys) {
          appendKnownHost(this.opts.knownHostsPath, id, key)
          this.known = undefined
          return true
        }
        keyProblem =
          v.status === 'unknown'
            ? new HostKeyError(`unknown host key ${fp} for ${address}:${port}`, {
                host: host.name,
                hint: `check the fingerprint, then add it: ssh-keyscan -p ${port} ${address} >> ${this.opts.knownHostsPath} (or run once with --accept-new-host-keys)`,
              })
            : new HostKeyError(`host key ${v.status === 'revoked' ? 'is revoked' : 'changed'} for ${address}:${port} (now ${fp}): possible man-in-the-middle, refusing`, {
                host: host.name,
                hint: `if the host was really reinstalled, verify the new key out of band and replace its line in ${this.opts.knownHostsPath}`,
              })
        return false
      },
    }
    if (identity) {
      try {
        cfg.privateKey = readFileSync(identity)
      } catch (error) {
        return Promise.reject(new InventoryError(`cannot read SSH key ${identity}: ${(error as Error).message}`, {host: host.name}))
      }
    } else if (this.opts.agentSocket ?? process.env.SSH_AUTH_SOCK) {
      cfg.agent = this.opts.agentSocket ?? process.env.SSH_AUTH_SOCK
    }
    return new Promise((resolve, reject) => {
      const client = new Client()
      const conn: Conn = {client, closed: false}
      let ready = false
      client.on('ready', () => {
        ready = true
        resolve(conn)
      })
      client.on('error', (err: Error & {code?: string; level?: string}) => {
        if (ready) return // a later error closes the connection; the next exec reconnects
        reject(keyProblem ?? classifyConnectError(err, host))
      })
      client.on('close', () => {
        conn.closed = true
        if (this.conns.get(host.name) && ready) this.conns.delete(host.name)
        if (!ready) reject(keyProblem ?? new UnreachableError(`connection to ${address}:${port} closed during the handshake`, {host: host.name}))
      })
      client.connect(cfg)
    })
  }

  private wrap(host: Host, cmd: RemoteCommand, opts: ExecOptions): string {
    const line = commandLine(cmd)
    if (!host.ssh.sudo || opts.noSudo) return line
    return 'shell' in cmd ? `sudo -n -- sh -c ${shellQuote(line)}` : `sudo -n -- ${line}`
  }

  private async raw(host: Host, cmd: RemoteCommand, opts: ExecOptions = {}, attempt = 0): Promise<RawResult> {
    const command = this.wrap(host, cmd, opts)
    const conn = await this.connect(host)
    const release = await this.semaphore(host).acquire()
    const started = Date.now()
    try {
      return await new Promise<RawResult>((resolve, reject) => {
        conn.client.exec(command, (err, stream) => {
          if (err) return reject(err)
          this.collect(host, command, stream, opts, started).then(resolve, reject)
        })
      })
    } catch (error) {
      // A connection that died between commands: reconnect once.
      if (attempt === 0 && !(error instanceof RemoteTimeoutError) && (conn.closed || /not connected|no response|channel open failure/i.test(String(error)))) {
        this.conns.delete(host.name)
        release()
        return this.raw(host, cmd, opts, 1)
      }
      if (error instanceof RemoteTimeoutError || error instanceof RemoteCommandError) throw error
      throw new UnreachableError(`lost the SSH connection to ${host.address}: ${(error as Error).message}`, {host: host.name})
    } finally {
      release()
    }
  }

  private collect(host: Host, command: string, stream: ClientChannel, opts: ExecOptions, started: number): Promise<RawResult> {
    return new Promise((resolve, reject) => {
      const out: Buffer[] = []
      const err: Buffer[] = []
      const decoder = new StringDecoder('utf8')
      let pending = ''
      let exitCode: number | null = null
      let signal: string | undefined
      let finished = false
      const timeoutMs = opts.timeoutMs ?? host.ssh.commandTimeout * 1000
      const finish = (fn: () => void) => {
        if (finished) return
        finished = true
        clearTimeout(timer)
        opts.signal?.removeEventListener('abort', onAbort)
        fn()
      }
      const timer = setTimeout(() => {
        finish(() => {
          stream.signal('KILL')
          stream.close()
          reject(new RemoteTimeoutError(`timed out after ${timeoutMs / 1000}s: ${command.slice(0, 120)}`, {host: host.name}))
        })
      }, timeoutMs)
      const onAbort = () =>
        finish(() => {
          stream.close()
          reject(new RemoteCommandError('cancelled', {command, exitCode: null, stderr: ''}, {host: host.name}))
        })
      opts.signal?.addEventListener('abort', onAbort)
      stream.on('data', (d: Buffer) => {
        if (!opts.onStdoutLine) return void out.push(d)
        pending += decoder.write(d)
        let i: number
        while ((i = pending.indexOf('\n')) >= 0) {
          opts.onStdoutLine(pending.slice(0, i))
          pending = pending.slice(i + 1)
        }
      })
      stream.stderr.on('data', (d: Buffer) => err.push(d))
      stream.on('exit', (code: number | null, sig?: string) => {
        exitCode = typeof code === 'number' ? code : null
        if (sig) signal = sig
      })
      stream.on('close', () => {
        finish(() => {
          try {
            if (opts.onStdoutLine) {
              pending += decoder.end()
              if (pending) opts.onStdoutLine(pending)
            }
          } catch (error) {
            return reject(error)
          }
          resolve({host: host.name, command, exitCode, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), durationMs: Date.now() - started})
        })
      })
      stream.end(opts.stdin ?? undefined)
    })
  }

  /** Run a command; a non-zero exit is a result, not an error. Transport problems throw. */
  async exec(host: Host, cmd: RemoteCommand, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.raw(host, cmd, opts)
    return {...r, stdout: r.stdout.toString('utf8')}
  }

  /** Run a command that must succeed (exit 0). */
  async execOk(host: Host, cmd: RemoteCommand, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.exec(host, cmd, opts)
    if (r.exitCode !== 0)
      throw new RemoteCommandError(`${commandLine(cmd).slice(0, 80)} failed (exit ${r.exitCode ?? 'none'}): ${r.stderr.trim().split('\n')[0] ?? ''}`, {command: r.command, exitCode: r.exitCode, stderr: r.stderr}, {host: host.name})
    return r
  }

  async readFile(host: Host, path: string): Promise<Buffer> {
    const r = await this.raw(host, ['cat', '--', path])
    if (r.exitCode !== 0)
      throw new RemoteCommandError(`cannot read ${path}: ${r.stderr.trim().split('\n')[0] ?? `exit ${r.exitCode}`}`, {command: r.command, exitCode: r.exitCode, stderr: r.stderr}, {host: host.name})
    return r.stdout
  }

  /** Replace a file by rename, keeping the original's owner and mode. */
  async writeFileAtomic(host: Host, path: string, data: Buffer | string, mode?: number): Promise<void> {
    const tmp = `${path}.murderctl-tmp.${randomBytes(4).toString('hex')}`
    const p = shellQuote(path)
    const t = shellQuote(tmp)
    const script = [
      `cat > ${t}`,
      `if [ -e ${p} ]; then chown --reference=${p} ${t} && chmod --reference=${p} ${t}; fi`,
      mode === undefined ? '' : `chmod ${mode.toString(8)} ${t}`,
      `mv -f -- ${t} ${p}`,
    ]
      .filter(Boolean)
      .join(' && ')
    const r = await this.exec(host, {shell: `${script} || { rm -f -- ${t}; exit 1; }`}, {stdin: data})
    if (r.exitCode !== 0)
      throw new RemoteCommandError(`cannot write ${path}: ${r.stderr.trim().split('\n')[0] ?? ''}`, {command: r.command, exitCode: r.exitCode, stderr: r.stderr}, {host: host.name})
  }

  async close(): Promise<void> {
    const conns = [...this.conns.values()]
    this.conns.clear()
    await Promise.all(
      conns.map((p) =>
        p.then(
          (c) => c.client.end(),
          () => {},
        ),
      ),
    )
  }
}

function classifyConnectError(err: Error & {code?: string; level?: string}, host: Host): UnreachableError {
  const where = `${host.address}:${host.ssh.port}`
  if (err.code === 'ECONNREFUSED') return new UnreachableError(`connection refused on ${where}`, {host: host.name, hint: 'is sshd running there, and is the address in the inventory right?'})
  if (err.level === 'client-authentication')
    return new UnreachableError(`authentication failed for user ${host.ssh.user} on ${where}`, {host: host.name, hint: 'check ssh.user and ssh.identity (or your ssh-agent) in the inventory'})
  if (err.level === 'client-timeout' || err.code === 'ETIMEDOUT')
    return new UnreachableError(`no SSH answer from ${where} within ${host.ssh.connectTimeout}s`, {host: host.name, hint: 'the host or the network is down; raise ssh.connectTimeout only if it is just slow'})
  if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') return new UnreachableError(`no route to ${where}`, {host: host.name})
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return new UnreachableError(`cannot resolve ${host.address}`, {host: host.name, hint: 'use an IP address or fix DNS'})
  return new UnreachableError(`cannot connect to ${where}: ${err.message}`, {host: host.name})
}
