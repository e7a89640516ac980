// The contract between the SSH transport and everything that runs commands on hosts.

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
