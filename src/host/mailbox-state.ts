// What each mailbox on one host holds, computed ON the host so only compact lines cross SSH:
// the cheap per-mailbox state (one `mbexamine -u` pass + one perl read of the index headers)
// and, for chosen mailboxes, one line per message (one full `mbexamine` pass through awk).
// Shared by replication audit/repair, the consistency check, failover and reconcile.
//
// Cyrus facts this rests on (3.6, checked on the lab):
// - `mbexamine PATTERN...` takes IMAP patterns (`user.alice`, `user.alice.*`, `*`) and examines
//   every match in one process; `-u UID` with a UID no mailbox has prints only the headers.
// - The index header (cyrus.index, minor version >= 13) holds SYNC_CRC: Cyrus's own XOR of a
//   CRC32 per unexpunged record over uid, modseq, last_updated, flags, internaldate and GUID.
//   Replication copies all of those, so equal CRCs are what sync_client itself checks; it is
//   the per-mailbox digest here (offset 100; annotations' CRC at 120).
// - perl-base is Essential on Debian (present on every host); python/node are not.
import {z} from 'zod'
import type {Host} from '../inventory/schema.js'
import {RemoteCommandError, UnexpectedOutputError} from '../errors.js'
import {shellQuote} from '../ssh/quote.js'
import type {MurderContext} from './context.js'
import {EXIT, producerExit, readImapdConf, tool, withExit} from './remote.js'

export const MailboxState = z.object({
  /** The name as Cyrus tools print and accept it (internal, `user.alice.Sent`). */
  name: z.string(),
  uniqueid: z.string(),
  uidvalidity: z.number().int(),
  /** Last UID given out; UIDNEXT is lastUid + 1. */
  lastUid: z.number().int(),
  highestModseq: z.number().int(),
  /** Messages not expunged (EXISTS). */
  exists: z.number().int(),
  bytes: z.number().int(),
  /** Cyrus's SYNC_CRC (basic) over (uid, modseq, last_updated, flags, internaldate, guid); null when unreadable. */
  syncCrc: z.number().int().nullable(),
  /** SYNC_CRC of the annotations; null when unreadable. */
  annotCrc: z.number().int().nullable(),
})
export type MailboxState = z.infer<typeof MailboxState>

export const MessageRecord = z.object({
  uid: z.number().int(),
  /** SHA1 of the message text, hex: what replication compares. */
  guid: z.string(),
  /** System flags (`\Answered`...) and user flags as named in the mailbox, sorted. */
  flags: z.array(z.string()),
  /** Unix seconds. */
  internalDate: z.number().int(),
  size: z.number().int(),
  modseq: z.number().int(),
})
export type MessageRecord = z.infer<typeof MessageRecord>

export const MailboxMessages = z.object({
  name: z.string(),
  uniqueid: z.string(),
  messages: z.array(MessageRecord),
})
export type MailboxMessages = z.infer<typeof MailboxMessages>

/** Which mailboxes: every one (both empty), a user's whole tree, or IMAP patterns (`*`, `%`). */
export const MailboxSelection = z.object({
  users: z.array(z.string().min(1)).default([]),
  mailboxes: z.array(z.string().min(1)).default([]),
})
export type MailboxSelection = z.input<typeof MailboxSelection>

/** mbexamine patterns for a selection; `sep` is the hierarchy separator the host uses. */
export function selectionPatterns(sel: MailboxSelection, sep = '.'): string[] {
  const s = MailboxSelection.parse(sel)
  const pats = [...s.users.flatMap((u) => [`user${sep}${u}`, `user${sep}${u}${sep}*`]), ...s.mailboxes]
  return pats.length > 0 ? pats : ['*']
}

// A UID no mailbox reaches: mbexamine then prints the headers and no message.
const NO_UID = '4294967295'
const END = 'END'

// mawk-compatible (Debian's default awk): no gawk extensions.
// A mailbox mbexamine cannot open (no index or header on disk) prints only "Examining NAME..."
// with no newline, so the next mailbox's line follows on the same line: each such name is
// printed as U (unopened), and so is a last one whose " Mailbox Header Info:" never came. A
// header that came but lacks a field stays an S line, refused by the parser as incomplete.
export const STATE_AWK = String.raw`
function flush() {
  if (name != "" && !hdr) print "U\t" name
  else if (name != "") print "S\t" name "\t" uid "\t" uv "\t" last "\t" ex "\t" hms "\t" sz "\t" path
  name = ""
}
/^${EXIT} [0-9]+$/ { print; next }
/^Examining / {
  flush(); s = $0
  while ((p = index(s, "...Examining ")) > 0) { print "U\t" substr(s, 11, p - 11); s = substr(s, p + 3) }
  hdr = s ~ /\.\.\. Mailbox Header Info:$/
  name = substr(s, 11); sub(/\.\.\.( Mailbox Header Info:)?$/, "", name); uid = "-"; uv = "-"; last = "-"; ex = "-"; hms = "-"; sz = "-"; path = "-"; next
}
/^  Path to mailbox: / { path = substr($0, 20); next }
/^  Unique ID: / { uid = $3; next }
/^  Number of Messages: / { ex = $4; sz = $7; next }
/^  UIDValidity: / { uv = $2; last = $5; next }
/^  Highest Mod Sequence: / { hms = $4; next }
END { flush(); print "${END}" }
`

// Appends the index header's minor version and sync CRCs after checking the header agrees with
// what mbexamine printed (same UIDVALIDITY and last UID): a wrong layout or a race shows as "-".
export const CRC_PERL = String.raw`
$| = 1;
while (<STDIN>) {
  chomp; my @f = split /\t/, $_, -1;
  if ($f[0] ne "S") { print "$_\n"; next }
  my ($v, $b, $a) = ("-", "-", "-");
  if (open(my $fh, "<", "$f[8]/cyrus.index")) {
    binmode $fh; my $h = "";
    if (read($fh, $h, 128) == 128) {
      my @w = unpack("N32", $h);
      if ($w[2] >= 13 && $w[11] == $f[3] && $w[7] == $f[4]) { ($v, $b, $a) = ($w[2], $w[25], $w[30]) }
    }
    close $fh;
  }
  print join("\t", @f[0..7], $v, $b, $a), "\n";
}
`

/**
 * mbexamine looks an existing mailbox's exact name up directly, but reads the whole mailbox list
 * for a wildcard or for a name that is not there (a 20,000-mailbox backend: 0.01 s against
 * 0.08 s, measured on the lab). So exact names travel on stdin to xargs, any number of them in
 * as many mbexamine runs as it takes, and only a selection with a wildcard is passed as patterns.
 */
const GLOB = /[*%?]/
export const literalNames = (patterns: readonly string[]) => patterns.length > 0 && !patterns.some((p) => GLOB.test(p))

/** The remote script for mailboxStates (exported for tests and the bench); literal: the names come on stdin, one a line. */
export function mailboxStateScript(host: Host, patterns: string[], literal = false): string {
  const mbx = shellQuote(tool(host, 'mbexamine'))
  const pats = patterns.map(shellQuote).join(' ')
  return withExit(
    literal ? `xargs -r -d '\\n' ${mbx} -u ${NO_UID}` : `${mbx} -u ${NO_UID} ${pats}`,
    `awk ${shellQuote(STATE_AWK)} | if command -v perl >/dev/null; then perl -e ${shellQuote(CRC_PERL)}; else cat; fi`,
  )
}

const num = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : null)

/**
 * Parse mailboxStateScript's output. Throws when it did not run to its end marker, and names the
 * mailboxes mbexamine could not open (their state is unknown, so no comparison may pass them).
 */
export function parseMailboxStates(out: string): MailboxState[] {
  const states: MailboxState[] = []
  const unopened: string[] = []
  let ended = false
  for (const line of out.split('\n')) {
    if (line === END) ended = true
    if (line.startsWith('U\t')) unopened.push(line.slice(2))
    if (!line.startsWith('S\t')) continue
    const f = line.split('\t')
    const [uidvalidity, lastUid, exists, highestModseq, bytes] = [f[3], f[4], f[5], f[6], f[7]].map(num)
    if (uidvalidity === null || lastUid === null || exists === null || highestModseq === null)
      throw new UnexpectedOutputError(`mbexamine printed an incomplete header for ${f[1]}`, {})
    states.push({name: f[1], uniqueid: f[2], uidvalidity, lastUid, highestModseq, exists, bytes: bytes ?? 0, syncCrc: num(f[9]), annotCrc: num(f[10])})
  }
  if (!ended) throw new UnexpectedOutputError('the mailbox state pass ended early (no end marker)', {})
  if (unopened.length)
    throw new UnexpectedOutputError(
      `mbexamine could not open ${unopened.length} mailbox${unopened.length > 1 ? 'es' : ''} (no index or header on disk?): ${unopened.slice(0, 3).join(', ')}${unopened.length > 3 ? ', ...' : ''}`,
      {hint: `run mbexamine ${unopened[0]} on the host to see why; reconstruct rebuilds a mailbox whose index is lost`},
    )
  return states
}

// One line per mailbox (M) and per message (R); flag bits are decoded in TypeScript. A mailbox
// mbexamine cannot open prints no header (see STATE_AWK): only the last name on its line counts.
export const RECORD_AWK = String.raw`
/^${EXIT} [0-9]+$/ { print; next }
/^Examining / { s = $0; while ((p = index(s, "...Examining ")) > 0) s = substr(s, p + 3); n = substr(s, 11); sub(/\.\.\.( Mailbox Header Info:)?$/, "", n); inmsg = 0; next }
/^  Unique ID: / { u = $3; next }
/^  User Flags: / { fl = substr($0, 15); if (fl == "[none]") fl = ""; print "M\t" n "\t" u "\t" fl; next }
/^[0-9]+> UID:/ { sub(/^.*UID:/, ""); uid = $1 + 0; d = $2; sub(/^INT_DATE:/, "", d); for (i = 1; i <= NF; i++) if ($i ~ /^SIZE:/) { s = $i; sub(/^SIZE:/, "", s) }; next }
/^      > HDRSIZE:/ { g = "-"; ms = "-"; sf = "-"; for (i = 1; i <= NF; i++) { if ($i ~ /^GUID:/) g = substr($i, 6); if ($i ~ /^MODSEQ:/) ms = substr($i, 8); if ($i ~ /^SYSFLAGS:/) sf = substr($i, 10) }; next }
/^      > INTERNALFLAGS:/ { ifl = $0; sub(/^      > INTERNALFLAGS:/, "", ifl); sub(/> SYSTEMFLAGS:.*$/, "", ifl); gsub(/ /, "", ifl); next }
/^      > USERFLAGS:/ { print "R\t" uid "\t" g "\t" d "\t" s "\t" sf "\t" $3 " " $4 " " $5 " " $6 "\t" ms "\t" ifl; next }
END { print "${END}" }
`

/** The remote script for messageRecords: mailbox names on stdin, one a line. */
export function messageRecordScript(host: Host): string {
  const mbx = shellQuote(tool(host, 'mbexamine'))
  return withExit(`xargs -r -d '\\n' ${mbx}`, `awk ${shellQuote(RECORD_AWK)}`)
}

// mailbox.h: FLAG_ANSWERED 1<<0, FLAGGED 1<<1, DELETED 1<<2, DRAFT 1<<3, SEEN 1<<4.
const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Draft', '\\Seen']

/** Flag names from SYSFLAGS (hex) and USERFLAGS (four hex words, highest first, as mbexamine prints them). */
export function decodeFlags(sysHex: string, userHex: string, userFlagNames: string[]): string[] {
  const flags: string[] = []
  const sys = Number.parseInt(sysHex, 16) || 0
  SYSTEM_FLAGS.forEach((f, i) => {
    if (sys & (1 << i)) flags.push(f)
  })
  const words = userHex.trim().split(/\s+/).reverse()
  userFlagNames.forEach((f, i) => {
    const w = Number.parseInt(words[Math.floor(i / 32)] ?? '0', 16) || 0
    if ((w >>> (i % 32)) & 1) flags.push(f)
  })
  return flags.sort()
}

/** Parse messageRecordScript's output (expunged records, if mbexamine shows them, are left out). */
export function parseMessageRecords(out: string): MailboxMessages[] {
  const boxes: MailboxMessages[] = []
  let cur: MailboxMessages | undefined
  let names: string[] = []
  let ended = false
  for (const line of out.split('\n')) {
    if (line === END) ended = true
    const f = line.split('\t')
    if (f[0] === 'M') {
      names = f[3].trim() ? f[3].trim().split(/\s+/) : []
      cur = {name: f[1], uniqueid: f[2], messages: []}
      boxes.push(cur)
    } else if (f[0] === 'R') {
      if (!cur) throw new UnexpectedOutputError('mbexamine printed a message before its mailbox', {})
      if (/EXPUNGED/i.test(f[8] ?? '')) continue
      const [uid, internalDate, size, modseq] = [f[1], f[3], f[4], f[7]].map(num)
      if (uid === null || internalDate === null || !/^[0-9a-f]{40}$/.test(f[2]))
        throw new UnexpectedOutputError(`mbexamine printed an unreadable record in ${cur.name}: ${line.slice(0, 120)}`, {})
      cur.messages.push({uid, guid: f[2], flags: decodeFlags(f[5], f[6], names), internalDate, size: size ?? 0, modseq: modseq ?? 0})
    }
  }
  if (!ended) throw new UnexpectedOutputError('the message record pass ended early (no end marker)', {})
  return boxes
}

async function hierarchySep(ctx: MurderContext, host: Host): Promise<string> {
  const conf = await readImapdConf(ctx, host).catch(() => new Map<string, string>())
  return /^(1|yes|on|true|t)$/i.test(conf.get('unixhierarchysep') ?? '') ? '/' : '.'
}

function failed(host: Host, what: string, r: {command: string; exitCode: number | null; stdout: string; stderr: string}, step: string): RemoteCommandError {
  const why = r.stderr.trim().split('\n')[0] || `mbexamine exit ${producerExit(r.stdout) ?? 'missing'}, shell exit ${r.exitCode}`
  return new RemoteCommandError(`could not read ${what}: ${why}`, {command: r.command, exitCode: r.exitCode, stderr: r.stderr}, {host: host.name, step})
}

/** Cheap state of every selected mailbox on one host, in one remote command. */
export async function mailboxStates(ctx: MurderContext, host: Host, sel: MailboxSelection = {}): Promise<MailboxState[]> {
  const patterns = selectionPatterns(sel, await hierarchySep(ctx, host))
  const literal = literalNames(patterns)
  const r = await ctx.pool.exec(host, {shell: mailboxStateScript(host, patterns, literal)}, literal ? {stdin: `${patterns.join('\n')}\n`} : {})
  // mbexamine exits 0 on most failures and 78 on a config error: judge by stderr and the marker.
  if (r.exitCode !== 0 || producerExit(r.stdout) !== 0 || /fatal|DBERROR|IOERROR/i.test(r.stderr)) throw failed(host, 'mailbox states', r, 'mailbox-state')
  try {
    return parseMailboxStates(r.stdout)
  } catch (e) {
    throw (e as UnexpectedOutputError).at({host: host.name, step: 'mailbox-state'})
  }
}

/** Per-message records of every selected mailbox on one host: one mbexamine over the patterns. */
export async function messageRecordsMatching(ctx: MurderContext, host: Host, sel: MailboxSelection = {}): Promise<MailboxMessages[]> {
  const patterns = selectionPatterns(sel, await hierarchySep(ctx, host))
  const r = await ctx.pool.exec(host, {
    shell: withExit(`${shellQuote(tool(host, 'mbexamine'))} ${patterns.map(shellQuote).join(' ')}`, `awk ${shellQuote(RECORD_AWK)}`),
  })
  if (r.exitCode !== 0 || producerExit(r.stdout) !== 0 || /fatal|DBERROR|IOERROR/i.test(r.stderr)) throw failed(host, 'message records', r, 'message-records')
  try {
    return parseMessageRecords(r.stdout)
  } catch (e) {
    throw (e as UnexpectedOutputError).at({host: host.name, step: 'message-records'})
  }
}

/** Per-message records of the named mailboxes on one host, in one remote command. */
export async function messageRecords(ctx: MurderContext, host: Host, mailboxes: string[]): Promise<MailboxMessages[]> {
  if (mailboxes.length === 0) return []
  const r = await ctx.pool.exec(host, {shell: messageRecordScript(host)}, {stdin: `${mailboxes.join('\n')}\n`})
  if (r.exitCode !== 0 || producerExit(r.stdout) !== 0 || /fatal|DBERROR|IOERROR/i.test(r.stderr)) throw failed(host, 'message records', r, 'message-records')
  try {
    return parseMessageRecords(r.stdout)
  } catch (e) {
    throw (e as UnexpectedOutputError).at({host: host.name, step: 'message-records'})
  }
}

// ---- comparing two members ------------------------------------------------------------------

export const StateDifference = z.enum(['only-a', 'only-b', 'uniqueid', 'uidvalidity', 'last-uid', 'highest-modseq', 'exists', 'sync-crc', 'annot-crc'])
export type StateDifference = z.infer<typeof StateDifference>

export const StateComparison = z.object({
  name: z.string(),
  /** Empty when the two states match in every compared field. */
  differences: z.array(StateDifference),
  /** A digest was missing on a side, so equal counters are all that could be proved. */
  unproven: z.boolean(),
  a: MailboxState.nullable(),
  b: MailboxState.nullable(),
})
export type StateComparison = z.infer<typeof StateComparison>

/** Pair two hosts' states by mailbox name and say what differs (names sorted). */
export function compareStates(a: MailboxState[], b: MailboxState[]): StateComparison[] {
  const am = new Map(a.map((s) => [s.name, s]))
  const bm = new Map(b.map((s) => [s.name, s]))
  const names = [...new Set([...am.keys(), ...bm.keys()])].sort()
  return names.map((name) => {
    const x = am.get(name) ?? null
    const y = bm.get(name) ?? null
    const differences: StateDifference[] = []
    if (!x) differences.push('only-b')
    else if (!y) differences.push('only-a')
    else {
      if (x.uniqueid !== y.uniqueid) differences.push('uniqueid')
      if (x.uidvalidity !== y.uidvalidity) differences.push('uidvalidity')
      if (x.lastUid !== y.lastUid) differences.push('last-uid')
      if (x.highestModseq !== y.highestModseq) differences.push('highest-modseq')
      if (x.exists !== y.exists) differences.push('exists')
      if (x.syncCrc !== null && y.syncCrc !== null && x.syncCrc !== y.syncCrc) differences.push('sync-crc')
      if (x.annotCrc !== null && y.annotCrc !== null && x.annotCrc !== y.annotCrc) differences.push('annot-crc')
    }
    const unproven = !!x && !!y && (x.syncCrc === null || y.syncCrc === null)
    return {name, differences, unproven, a: x, b: y}
  })
}

export const MessageDifferenceKind = z.enum([
  /** Same UID, different GUID: two different messages under one UID. */
  'conflict',
  'only-a',
  'only-b',
  'flags',
  'internaldate',
])
export const MessageDifference = z.object({
  kind: MessageDifferenceKind,
  uid: z.number().int(),
  a: MessageRecord.nullable(),
  b: MessageRecord.nullable(),
})
export type MessageDifference = z.infer<typeof MessageDifference>

export const MessageComparison = z.object({
  differences: z.array(MessageDifference),
  compared: z.number().int(),
  /** GUIDs held on both sides under different UIDs (a renumbering or a copy in flight). */
  movedGuids: z.array(z.string()),
})
export type MessageComparison = z.infer<typeof MessageComparison>

const lower = (flags: string[]) =>
  flags
    .map((f) => f.toLowerCase())
    .sort()
    .join(' ')

/** Compare one mailbox's messages on two members, UID by UID. */
export function compareMessages(a: MessageRecord[], b: MessageRecord[]): MessageComparison {
  const am = new Map(a.map((m) => [m.uid, m]))
  const bm = new Map(b.map((m) => [m.uid, m]))
  const uids = [...new Set([...am.keys(), ...bm.keys()])].sort((x, y) => x - y)
  const differences: MessageDifference[] = []
  for (const uid of uids) {
    const x = am.get(uid) ?? null
    const y = bm.get(uid) ?? null
    if (!x) differences.push({kind: 'only-b', uid, a: null, b: y})
    else if (!y) differences.push({kind: 'only-a', uid, a: x, b: null})
    else if (x.guid !== y.guid) differences.push({kind: 'conflict', uid, a: x, b: y})
    else {
      // Cyrus compares user flags without case (crc_basic lowercases them).
      if (lower(x.flags) !== lower(y.flags)) differences.push({kind: 'flags', uid, a: x, b: y})
      if (x.internalDate !== y.internalDate) differences.push({kind: 'internaldate', uid, a: x, b: y})
    }
  }
  const guidUids = (ms: MessageRecord[]) => new Map(ms.map((m) => [m.guid, m.uid]))
  const ag = guidUids(a)
  const bg = guidUids(b)
  const movedGuids = [...ag].filter(([g, u]) => bg.has(g) && bg.get(g) !== u).map(([g]) => g)
  return {differences, compared: uids.length, movedGuids}
}
