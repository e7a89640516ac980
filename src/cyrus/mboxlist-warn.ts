// `ctl_mboxlist -m -w` (what a backend's push to the MUPDATE master would change) and the
// failure texts `ctl_mboxlist` prints on stderr.
//
// stdout has exactly four kinds of line (imap/ctl_mboxlist.c do_pop_mupdate(), 3.6.1):
//   Remove from MUPDATE: <name>     the master lists it on this server, the server lacks it
//   Remove remote flag on: <name>   local entry flagged MOVING
//   Remove Local Mailbox: <name>    the master says it lives elsewhere (standard murder only)
//   Force Activate: <name>          the master lacks it or has it wrong
import {z} from 'zod'
import {UnexpectedOutputError} from '../errors.js'
import {excerpt} from './lines.js'

export const MupdateWarnPlan = z.object({
  activate: z.array(z.string()),
  removeFromMupdate: z.array(z.string()),
  removeRemoteFlag: z.array(z.string()),
  removeLocal: z.array(z.string()),
})
export type MupdateWarnPlan = z.infer<typeof MupdateWarnPlan>

const PREFIXES: [string, keyof MupdateWarnPlan][] = [
  ['Remove from MUPDATE: ', 'removeFromMupdate'],
  ['Remove remote flag on: ', 'removeRemoteFlag'],
  ['Remove Local Mailbox: ', 'removeLocal'],
  ['Force Activate: ', 'activate'],
]

/**
 * One line of `-m -w`: its kind and the name, kept byte for byte (names may hold spaces, quotes,
 * tabs); null for a blank line. A line of no known kind is an error: the Cyrus version differs.
 */
export function readWarnLine(raw: string, lineNo: number, ctx: {host?: string} = {}): [keyof MupdateWarnPlan, string] | null {
  const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
  if (line.trim() === '') return null
  const hit = PREFIXES.find(([prefix]) => line.startsWith(prefix))
  if (!hit || line.length === hit[0].length) {
    throw new UnexpectedOutputError(`ctl_mboxlist -m -w: unexpected line ${lineNo}: ${excerpt(line)}`, {
      host: ctx.host,
      hint: 'murderctl only knows the four -w line types; check the Cyrus version and keep the raw output',
    })
  }
  return [hit[1], line.slice(hit[0].length)]
}

export function parseMupdateWarn(stdout: string, ctx: {host?: string} = {}): MupdateWarnPlan {
  const plan: MupdateWarnPlan = {activate: [], removeFromMupdate: [], removeRemoteFlag: [], removeLocal: []}
  stdout.split('\n').forEach((raw, i) => {
    const hit = readWarnLine(raw, i + 1, ctx)
    if (hit) plan[hit[0]].push(hit[1])
  })
  return plan
}

export interface WarnCounts {
  /** Lines of each kind. */
  counts: Record<keyof MupdateWarnPlan, number>
  /** The first few names of each kind, for a message. */
  examples: MupdateWarnPlan
  /** Lines, all kinds together. */
  changes: number
}

/**
 * `-m -w` lines counted as they stream, keeping only the first `keep` names of each kind: for a
 * health check, which needs the figures, not 500,000 names in memory.
 */
export function createWarnCounter(keep = 5, ctx: {host?: string; skipActivate?: (name: string) => boolean} = {}) {
  const out: WarnCounts = {
    counts: {activate: 0, removeFromMupdate: 0, removeRemoteFlag: 0, removeLocal: 0},
    examples: {activate: [], removeFromMupdate: [], removeRemoteFlag: [], removeLocal: []},
    changes: 0,
  }
  let lineNo = 0
  return {
    push(raw: string): void {
      const hit = readWarnLine(raw, ++lineNo, ctx)
      if (!hit) return
      if (hit[0] === 'activate' && ctx.skipActivate?.(hit[1])) return
      out.counts[hit[0]]++
      out.changes++
      if (out.examples[hit[0]].length < keep) out.examples[hit[0]].push(hit[1])
    },
    result: (): WarnCounts => out,
  }
}

export function isEmptyPlan(plan: MupdateWarnPlan): boolean {
  return !plan.activate.length && !plan.removeFromMupdate.length && !plan.removeRemoteFlag.length && !plan.removeLocal.length
}

export const MupdateFailureKind = z.enum(['duplicate-option', 'no-mupdate-server', 'connect', 'list', 'sort-order', 'store', 'missing-uniqueid'])
export type MupdateFailureKind = z.infer<typeof MupdateFailureKind>

export const MupdateStderrDiagnosis = z.object({
  kind: MupdateFailureKind,
  /** Short reason, for a one-line report. */
  reason: z.string(),
  /** What the operator should do. */
  hint: z.string(),
  /** The first stderr line of this kind. */
  line: z.string(),
  /** How many stderr lines are of this kind. */
  count: z.number().int().positive(),
  /** Mailbox or option names taken from those lines, when the text carries one. */
  names: z.array(z.string()),
})
export type MupdateStderrDiagnosis = z.infer<typeof MupdateStderrDiagnosis>

interface Rule {
  kind: MupdateFailureKind
  re: RegExp
  reason: (m: RegExpExecArray, count: number) => string
  hint: string
}

// Most fundamental first: a broken config explains everything after it.
const RULES: Rule[] = [
  {
    kind: 'duplicate-option',
    re: /option '([^']*)' was specified twice/,
    reason: (m) => `imapd.conf names '${m[1]}' twice, so every Cyrus program exits 78`,
    hint: 'remove or comment out one of the two lines in imapd.conf (murderctl edits replace a key, never append a second one)',
  },
  {
    kind: 'no-mupdate-server',
    re: /couldn't get mupdate server name/,
    reason: () => 'mupdate_server is not set in imapd.conf on this host',
    hint: 'set mupdate_server (and mupdate_authname/mupdate_password) in imapd.conf before pushing to the master',
  },
  {
    kind: 'connect',
    re: /couldn't connect to mupdate server/,
    reason: () => 'could not connect (or log in) to the MUPDATE master',
    hint: 'check that mupdate -m runs on the master and listens on 3905 (or the port in mupdate_server), that "mupdate" is in /etc/services, and that mupdate_authname is in the master\'s admins with the right password',
  },
  {
    kind: 'list',
    re: /couldn't do LIST command on mupdate server/,
    reason: () => 'the MUPDATE master refused or broke the LIST command',
    hint: "look at the master's syslog; mixed Cyrus patch levels can break the LITERAL+ parser (cyrus-imapd issue 4932): run the same version on backend and master",
  },
  {
    kind: 'sort-order',
    re: /mupdate said not us before it said us/,
    reason: () => 'backend and master sort mailbox names differently (mixed Cyrus versions)',
    hint: 'run the same Cyrus version on backend and master (improved_mboxlist_sort differs before 3.6; issues 4946/5524); the push did not complete',
  },
  {
    kind: 'store',
    re: /permanent failure storing '([^']*)'/,
    reason: (m, n) => `the connection to the master broke while storing '${m[1]}'${n > 1 ? ` (and ${n - 1} more)` : ''}`,
    hint: 'check the master is up and reachable, then run ctl_mboxlist -m again (it is safe to repeat)',
  },
  {
    kind: 'missing-uniqueid',
    re: /missing uniqueid for (.*)$/,
    reason: (_m, n) => `ctl_mboxlist -u skipped ${n} entr${n === 1 ? 'y' : 'ies'} without a uniqueid (exit status is still 0)`,
    hint: "a master or frontend dump cannot be undumped in 3.6; restore the master by copying a frontend's mailboxes.db, or rebuild it with ctl_mboxlist -m on every backend",
  },
]

/** The most important known failure in a `ctl_mboxlist` stderr, or undefined if none is known. */
export function classifyMupdateStderr(stderr: string): MupdateStderrDiagnosis | undefined {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '')
  for (const rule of RULES) {
    const hits = lines.map((l) => rule.re.exec(l)).filter((m): m is RegExpExecArray => m !== null)
    if (hits.length === 0) continue
    const first = hits[0]!
    return {
      kind: rule.kind,
      reason: rule.reason(first, hits.length),
      hint: rule.hint,
      line: first.input,
      count: hits.length,
      names: hits.flatMap((m) => (m[1] === undefined ? [] : [m[1]])),
    }
  }
  return undefined
}
