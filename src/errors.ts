// Typed errors. Every error an operator can act on is an AbortError subclass: it carries the
// host and step it happened at and a hint saying what to do. Anything else is a BugError.
// Exit codes are stable and documented in the README.

export const ExitCode = {
  ok: 0,
  failed: 1, // a step or a verification failed
  usage: 2, // bad flags (oclif's own code for parse errors)
  inventory: 3, // inventory missing or invalid
  unreachable: 4, // a host could not be reached or logged in to
  hostKey: 5, // a host key is unknown or changed
  needsConfirmation: 6, // a prompt was needed but there is no TTY / --json, and no --yes
  refused: 7, // a precondition said no (e.g. the master does not look lost)
  unexpectedOutput: 8, // a Cyrus tool printed something we do not understand
  timeout: 9, // a remote command outlived its timeout
  interrupted: 130,
  bug: 70,
} as const
export type ExitCodeName = keyof typeof ExitCode

export interface ErrorContext {
  host?: string
  step?: string
  hint?: string
  cause?: unknown
}

export class MurderctlError extends Error {
  readonly exitCode: number
  readonly host?: string
  readonly step?: string
  readonly hint?: string
  readonly code: ExitCodeName

  constructor(code: ExitCodeName, message: string, ctx: ErrorContext = {}) {
    super(message, ctx.cause === undefined ? undefined : {cause: ctx.cause})
    this.name = new.target.name
    this.code = code
    this.exitCode = ExitCode[code]
    this.host = ctx.host
    this.step = ctx.step
    this.hint = ctx.hint
  }

  /** One line for a terminal: "host b1: step x: reason (hint)". */
  oneLine(): string {
    const where = [this.host && `host ${this.host}`, this.step && `step ${this.step}`].filter(Boolean).join(', ')
    return `${where ? `${where}: ` : ''}${this.message}${this.hint ? ` -- ${this.hint}` : ''}`
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      exitCode: this.exitCode,
      message: this.message,
      host: this.host,
      step: this.step,
      hint: this.hint,
    }
  }

  /** Same error, with the step (or host) filled in where the thrower did not know it. */
  at(ctx: {host?: string; step?: string}): this {
    const self = this as {host?: string; step?: string}
    self.host ??= ctx.host
    self.step ??= ctx.step
    return this
  }
}

/** Expected failures the operator can act on. */
export class AbortError extends MurderctlError {
  constructor(message: string, ctx: ErrorContext = {}, code: ExitCodeName = 'failed') {
    super(code, message, ctx)
  }
}

export class InventoryError extends MurderctlError {
  constructor(message: string, ctx: ErrorContext = {}) {
    super('inventory', message, {hint: 'fix the inventory file and run `murderctl inventory validate`', ...ctx})
  }
}

/** Bad flags or arguments on the command line (exit 2), apart from a bad inventory file (exit 3). */
export class UsageError extends MurderctlError {
  constructor(message: string, ctx: ErrorContext = {}) {
    super('usage', message, {hint: 'see murderctl <command> --help', ...ctx})
  }
}

export class UnreachableError extends MurderctlError {
  constructor(message: string, ctx: ErrorContext = {}) {
    super('unreachable', message, {hint: 'check the address, sshd and the SSH key in the inventory', ...ctx})
  }
}

export class HostKeyError extends MurderctlError {
  constructor(message: string, ctx: ErrorContext = {}) {
    super('hostKey', message, ctx)
  }
}

export class RemoteCommandError extends MurderctlError {
  readonly command: string
  readonly remoteExit: number | null
  readonly stderr: string

  constructor(message: string, details: {command: string; exitCode: number | null; stderr: string}, ctx: ErrorContext = {}) {
    super('failed', message, ctx)
    this.command = details.command
    this.remoteExit = details.exitCode
    this.stderr = details.stderr
  }

  override toJSON(): Record<string, unknown> {
    return {...super.toJSON(), command: this.command, remoteExit: this.remoteExit, stderr: this.stderr}
  }
}

export class RemoteTimeoutError extends MurderctlError {
  constructor(message: string, ctx: ErrorContext = {}) {
    super('timeout', message, {hint: 'the host may be hung; raise ssh.commandTimeout in the inventory if it is only slow', ...ctx})
  }
}

export class UnexpectedOutputError extends MurderctlError {
  constructor(message: string, ctx: ErrorContext = {}) {
    super('unexpectedOutput', message, ctx)
  }
}

export class NeedsConfirmationError extends MurderctlError {
  constructor(message: string, ctx: ErrorContext = {}) {
    super('needsConfirmation', message, ctx)
  }
}

export class RefusedError extends MurderctlError {
  constructor(message: string, ctx: ErrorContext = {}) {
    super('refused', message, ctx)
  }
}

/** A defect in murderctl itself: reported with its stack. */
export class BugError extends MurderctlError {
  constructor(message: string, ctx: ErrorContext = {}) {
    super('bug', message, {hint: 'this is a murderctl bug; please report it with the run journal', ...ctx})
  }
}

/**
 * One exit code for several hosts' failures, the same in every command: a host key problem
 * first (5: a possible attack), then unreachable (4), then the first failure's own code.
 */
export function exitCodeOf(errors: readonly {code: ExitCodeName}[]): number {
  if (!errors.length) return ExitCode.ok
  if (errors.some((e) => e.code === 'hostKey')) return ExitCode.hostKey
  if (errors.some((e) => e.code === 'unreachable')) return ExitCode.unreachable
  return ExitCode[errors[0].code]
}

export function asMurderctlError(err: unknown): MurderctlError {
  if (err instanceof MurderctlError) return err
  const message = err instanceof Error ? err.message : String(err)
  // oclif's own flag and argument errors (exit 2) are the user's to fix, not a murderctl bug.
  if ((err as {oclif?: {exit?: number}} | null)?.oclif?.exit === 2)
    return new UsageError(message.replace(/\s*\n\s*/g, ' ').replace(/\s*See more help with --help$/, ''), {cause: err})
  return new BugError(message, {cause: err})
}
