// One message's spool file on a host: where it is, its bytes, and proof that it is the message
// the index names (its SHA1 is the GUID Cyrus keeps for it).
import type {Host} from '../inventory/schema.js'
import {RemoteCommandError, UnexpectedOutputError} from '../errors.js'
import {shellQuote} from '../ssh/quote.js'
import type {MurderContext} from './context.js'
import {tool} from './remote.js'

export interface MessageFile {
  host: string
  mailbox: string
  uid: number
  path: string
  bytes: number
  sha1: string
  sha256: string
  /** The header block (up to the first empty line, at most 8 KB). */
  headers: string
}

/** The folder holding a mailbox's message files (`mbpath`, data partition). */
export async function mailboxPath(ctx: MurderContext, host: Host, mailbox: string): Promise<string> {
  const r = await ctx.pool.exec(host, [tool(host, 'mbpath'), '-l', mailbox])
  const path = r.stdout.trim().split('\n')[0] ?? ''
  if (r.exitCode !== 0 || !path.startsWith('/'))
    throw new RemoteCommandError(
      `cannot find ${mailbox}'s folder: ${r.stderr.trim() || r.stdout.trim() || `exit ${r.exitCode}`}`,
      {command: r.command, exitCode: r.exitCode, stderr: r.stderr},
      {host: host.name, step: 'mbpath'},
    )
  return path
}

/** Size, checksums and headers of message `uid` of a mailbox; null when its file is not there. */
export async function inspectMessageFile(ctx: MurderContext, host: Host, mailbox: string, uid: number): Promise<MessageFile | null> {
  const path = `${await mailboxPath(ctx, host, mailbox)}/${uid}.`
  const f = shellQuote(path)
  const r = await ctx.pool.exec(host, {
    shell: `[ -f ${f} ] || { echo ABSENT; exit 0; }; stat -c %s -- ${f}; sha1sum -- ${f}; sha256sum -- ${f}; echo HEADERS; head -c 8192 -- ${f} | sed -e '/^\\r\\{0,1\\}$/q'`,
  })
  if (r.stdout.startsWith('ABSENT')) return null
  const [size, sha1, sha256, marker, ...rest] = r.stdout.split('\n')
  if (r.exitCode !== 0 || marker !== 'HEADERS' || !/^\d+$/.test(size))
    throw new UnexpectedOutputError(`cannot read message file ${path}: ${r.stderr.trim() || r.stdout.slice(0, 200)}`, {host: host.name, step: 'inspect'})
  return {
    host: host.name,
    mailbox,
    uid,
    path,
    bytes: Number(size),
    sha1: sha1.split(/\s+/)[0],
    sha256: sha256.split(/\s+/)[0],
    headers: rest.join('\n').replace(/\r/g, '').trim(),
  }
}

/** A few header fields, for people. */
export function headerSummary(headers: string): Record<string, string> {
  const out: Record<string, string> = {}
  const unfolded = headers.replace(/\n[ \t]+/g, ' ')
  for (const line of unfolded.split('\n')) {
    const m = /^(From|To|Subject|Date|Message-ID):\s*(.*)$/i.exec(line)
    if (m) out[m[1].toLowerCase()] = m[2].slice(0, 200)
  }
  return out
}
