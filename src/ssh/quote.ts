// Quoting for remote shell command lines: every argument passes through here.
import type {RemoteCommand} from './types.js'

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/

/** POSIX shell quoting: safe words stay bare, anything else is single-quoted. */
export function shellQuote(arg: string): string {
  if (arg !== '' && SAFE.test(arg)) return arg
  return `'${arg.replace(/'/g, `'\\''`)}'`
}

export function commandLine(cmd: RemoteCommand): string {
  return 'shell' in cmd ? cmd.shell : (cmd as readonly string[]).map(shellQuote).join(' ')
}
