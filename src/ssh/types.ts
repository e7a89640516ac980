// The contract between the SSH transport and everything that runs commands on hosts.
import type {Duplex} from 'node:stream'
import type {Host} from '../inventory/schema.js'

/** argv is quoted word by word; `shell` is a trusted, already-quoted command line. */
export type RemoteCommand = readonly string[] | {readonly shell: string}

export interface ExecOptions {
  /** Overrides the host's ssh.commandTimeout (milliseconds). */
  timeoutMs?: number
  /** Bytes written to the command's stdin, then EOF. Secrets go here, never in argv. */
  stdin?: string | Buffer
  /** Stream stdout line by line instead of buffering it (large dumps). stdout is then ''. */
  onStdoutLine?: (line: string) => void
  /** Cancels the command (the channel is closed) when aborted. */
  signal?: AbortSignal
  /** Run without the host's `sudo -n` prefix. */
  noSudo?: boolean
}

export interface ExecResult {
  host: string
  /** The command line as sent (without secrets: they only travel on stdin). */
  command: string
  /** null when the remote end gave no exit status (killed by a signal, or none sent). */
  exitCode: number | null
  signal?: string
  stdout: string
  stderr: string
  durationMs: number
}

/**
 * What the rest of murderctl needs of the SSH transport: the pool implements it over ssh2, and
 * unit tests give a fake that records the commands.
 */
export interface RemoteShell {
  exec(host: Host, cmd: RemoteCommand, opts?: ExecOptions): Promise<ExecResult>
  /** exec, but a non-zero exit is a RemoteCommandError. */
  execOk(host: Host, cmd: RemoteCommand, opts?: ExecOptions): Promise<ExecResult>
  readFile(host: Host, path: string): Promise<Buffer>
  /** Write beside the target, then rename over it. */
  writeFileAtomic(host: Host, path: string, data: Buffer | string, mode?: number): Promise<void>
  close(): Promise<void>
  /** Open connections to these hosts in the background (a command about to reach all of them); failures are left to their first command. */
  warm?(hosts: readonly Host[]): void
  /** A TCP stream to `port` on the host, opened by the host's own sshd (as ssh -L): reaches ports a firewall or a bastion hides. */
  forward?(host: Host, port: number): Promise<Duplex>
}
