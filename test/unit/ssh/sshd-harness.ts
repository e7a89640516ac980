// A throwaway OpenSSH sshd for tests: own host keys, own authorized_keys, loopback only, and a
// HOME and PATH of its own so the machine's root dotfiles neither slow nor change a session.
import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {existsSync, mkdirSync, writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {join} from 'node:path'

export const SSHD = '/usr/sbin/sshd'

/** Why the real-sshd tests cannot run here, or undefined when they can. */
export function sshdUnavailable(): string | undefined {
  if (!existsSync(SSHD)) return `${SSHD} is not installed`
  if (process.getuid?.() !== 0) return 'the sshd tests log in as root and need to run as root'
  return undefined
}

export function keygen(path: string, type: 'ed25519' | 'ecdsa' | 'rsa' = 'ed25519'): void {
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', '', '-f', path], {stdio: 'ignore'})
}

export interface Sshd {
  address: string
  port: number
  child: ChildProcess
  /** What sshd wrote to stderr (shown when a test fails). */
  log: () => string
  stop: () => Promise<void>
}

export async function startSshd(opts: {
  dir: string
  address: string
  port: number
  hostKeys: string[]
  authorizedKeys: string
  maxSessions?: number
  extra?: string[]
}): Promise<Sshd> {
  const {dir, address, port} = opts
  const home = join(dir, 'home')
  mkdirSync(home, {recursive: true})
  mkdirSync('/run/sshd', {recursive: true, mode: 0o755})
  const cfg = join(dir, `sshd_config.${port}`)
  writeFileSync(
    cfg,
    [
      `ListenAddress ${address}:${port}`,
      ...opts.hostKeys.map((k) => `HostKey ${k}`),
      `AuthorizedKeysFile ${opts.authorizedKeys}`,
      `PidFile ${join(dir, `sshd.${port}.pid`)}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      `MaxSessions ${opts.maxSessions ?? 10}`,
      'PrintMotd no',
      'PrintLastLog no',
      'LogLevel ERROR',
      `SetEnv HOME=${home} PATH=${join(dir, 'bin')}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
      ...(opts.extra ?? []),
      '',
    ].join('\n'),
  )
  execFileSync(SSHD, ['-t', '-f', cfg])
  const child = spawn(SSHD, ['-D', '-e', '-f', cfg], {stdio: ['ignore', 'ignore', 'pipe']})
  let log = ''
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited (${child.exitCode}): ${log}`)
    if (await canConnect(address, port)) break
    if (i > 100) {
      child.kill('SIGKILL')
      throw new Error(`sshd did not listen on ${address}:${port}: ${log}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    address,
    port,
    child,
    log: () => log,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}

export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({host, port})
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}
