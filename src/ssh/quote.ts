// Quoting for remote shell command lines: every interpolated value passes through here.
// The remote side is a POSIX sh (sshd runs the command with the user's login shell, `-c`).
import {BugError} from '../errors.js'
import type {RemoteCommand} from './types.js'

// Characters no POSIX shell treats specially anywhere in a word. Left out on purpose:
// `~` (tilde expansion), `{}` (brace expansion in bash), `#` (comment at a word start),
// `!` (bash history), `[]*?` (globs), all whitespace, quotes, `$`, backslash and operators.
// `=` is allowed, but not at the start of the word (zsh `=cmd` expansion) nor as NAME=...
// (an assignment when it is the first word).
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/
const ASSIGNMENT = /^(?:[A-Za-z_][A-Za-z0-9_]*)?=/

/** POSIX shell quoting: safe words stay bare, anything else is single-quoted (`'` as `'\''`). */
export function shellQuote(arg: string): string {
  if (arg !== '' && SAFE.test(arg) && !ASSIGNMENT.test(arg)) return arg
  return `'${arg.replace(/'/g, `'\\''`)}'`
}

/** The command line for a RemoteCommand: argv quoted word by word, or a trusted shell string. */
export function commandLine(cmd: RemoteCommand): string {
  if (isShell(cmd)) {
    if (!cmd.shell.trim()) throw new BugError('empty remote shell command')
    return cmd.shell
  }
  if (cmd.length === 0) throw new BugError('empty remote argv')
  return cmd.map(shellQuote).join(' ')
}

function isShell(cmd: RemoteCommand): cmd is {readonly shell: string} {
  return !Array.isArray(cmd)
}
