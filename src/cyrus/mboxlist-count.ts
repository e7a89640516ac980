// Counting a `ctl_mboxlist -d` dump where it is made: an awk program the host runs on the dump,
// so only a few figures cross SSH instead of every entry (a million entries are ~270 MB of JSON).
// The streaming parser in mboxlist-dump.ts stays the reference: the awk counts only the lines
// it can read with certainty (Cyrus 3.6's own layout of an entry, and ≤3.4's plain lines) and
// hands every other entry line back whole, for the parser to read and count; the figures are
// the same either way (test/unit/cyrus/mboxlist-count.test.ts runs both over the same dumps).
import {UnexpectedOutputError} from '../errors.js'
import {excerpt} from './lines.js'
import {
  addToCounts,
  type DumpFormat,
  dumpLineError,
  type EntryCounts,
  isLiveLocal,
  isRemote,
  newEntryCounts,
  parseDumpLine,
  truncatedDumpError,
} from './mboxlist-dump.js'

/** The figures the awk prints on its COUNTS line, in this order (every key of EntryCounts). */
export const COUNT_FIGURES = [
  'total',
  'local',
  'remote',
  'deleted',
  'intermediate',
  'withoutUniqueid',
  'liveLocal',
] as const satisfies readonly (keyof EntryCounts)[]

/** The line a producer's exit status travels as through the pipe (see withExit in host/remote.ts). */
const EXIT_RE = /^EXIT [0-9]+$/

// One JSON entry line (its trailing "," removed) read with certainty: Cyrus 3.6's exact layout
// of an entry (dump_cb in ctl_mboxlist.c: name, the four numbers, mbtype, partition?, server?,
// acl of strings, uniqueid?, legacy_specialuse?, name_history last). entry() returns 1 and sets
// e_remote, e_del, e_inter (its flags), e_uid (a non-empty uniqueid) and e_s (the line with each
// escape's two characters replaced by "__": every '"' left is a real string delimiter, and
// positions are the line's own); 0 when the line is not in that layout. In that layout the first
// ', "mbtype": "' is the entry's own, and server/uniqueid are told from ACL entries of users named
// so by position. Shared by COUNT_AWK and LOCAL_ONLY_AWK (mboxlist-local-only.ts).
export const ENTRY_AWK = String.raw`
function entry(s,    p, m, a, w, x) {
  if (index(s, "\\")) gsub(/\\./, "__", s)
  e_s = s
  if (s !~ /^"[^"]*": \{"name": "[^"]+", "mtime": "[0-9]*", "uidvalidity": "[0-9]*", "createdmodseq": "[0-9]*", "foldermodseq": "[0-9]*", "mbtype": "[a-z]*"(, "partition": "[^"]*")?(, "server": "[^"]*")?, "acl": \{("[^"]*": "[^"]*"(, "[^"]*": "[^"]*")*)?\}(, "uniqueid": "[^"]*")?(, "legacy_specialuse": "[^"]*")?, "name_history": \[.*\]\}$/) return 0
  p = index(s, ", \"mbtype\": \"")
  m = substr(s, p + 13); m = substr(m, 1, index(m, "\"") - 1)
  a = index(s, ", \"acl\": {")
  x = index(s, ", \"partition\": \"")
  if (!(x && x < a) && !index(m, "d")) return 0
  w = index(s, ", \"server\": \"")
  x = index(s, "}, \"uniqueid\": \"")
  e_remote = index(m, "r") || (w && w < a && substr(s, w + 13, 1) != "\"")
  e_del = index(m, "d")
  e_inter = index(m, "i")
  e_uid = x && x < index(s, ", \"name_history\": [") && substr(s, x + 16, 1) != "\""
  return 1
}
# After entry(s): the line's key and its "name" the same text (sets e_name, as the line holds it).
function samekey(s, raw,    q, n0, n) {
  q = index(substr(s, 2), "\"")
  n0 = q + 14
  n = index(substr(s, n0), "\"") - 1
  e_name = substr(raw, n0, n)
  return substr(raw, 2, q - 1) == e_name
}
`

// mawk-compatible (Debian's default awk: no gawk extension, no regex interval, no match() array),
// run under LC_ALL=C (bytes, not characters: gawk is ten times slower in a UTF-8 locale).
// Output: FORMAT once the first line is read; L for an entry left to the parser; BAD at the
// first line the parser would refuse for its place in the dump (then nothing more is read);
// TRUNCATED when a JSON dump has no closing "}"; then COUNTS and END. EXIT lines pass through.
// The JSON fast path is ENTRY_AWK's entry().
// With -v names=1 it also prints each entry's name: N (live local) or R (remote), nothing for a
// local tombstone; only a name that is its line's key and plain text (printable ASCII, no
// escape) is printed here, any other line (and every ≤3.4 line) is left to the parser (L), so a
// name is never unescaped on a guess. createCountReader reads both.
export const COUNT_AWK =
  ENTRY_AWK +
  String.raw`
function add(remote, del, inter, uid) {
  t++
  if (remote) r++
  else { l++; if (!uid) u++; if (!del) v++ }
  if (del) d++
  if (inter) i++
}
function bad(why) { print "BAD\t" NR "\t" why "\t" $0; failed = 1 }
function blank(s) { return s ~ /^[ \t\r\f\v]*$/ }
function json(s) {
  if (!need) s = substr(s, 1, length(s) - 1)
  if (!entry(s)) return 0
  if (names) {
    if (!samekey(e_s, s) || e_name !~ /^[ -~]+$/ || index(e_name, "\\")) return 0
    if (e_remote) print "R\t" e_name
    else if (!e_del) print "N\t" e_name
  }
  add(e_remote, e_del, e_inter, e_uid)
  return 1
}
function legacy(s,    p, rest, sp, type, where, acl, n, parts, code) {
  if (names) return 0
  p = index(s, "\t")
  rest = substr(s, p + 1)
  sp = index(rest, " ")
  type = substr(rest, 1, sp - 1)
  where = substr(rest, sp + 1)
  acl = ""
  if (index(where, " ")) { acl = substr(where, index(where, " ") + 1); where = substr(where, 1, index(where, " ") - 1) }
  if (p < 2 || sp < 2 || type !~ /^([0-9]+|[a-z]+)$/ || length(type) > 9 || where !~ /^[!-~]+$/ || acl !~ /^[\t -~]*$/) return 0
  n = split(acl, parts, "\t")
  if (n && parts[n] == "") n--
  if (n % 2) return 0
  if (type ~ /^[0-9]/) { code = type + 0; add(code % 2 || index(where, "!") > 1, int(code / 16) % 2, int(code / 256) % 2, 0) }
  else add(index(type, "r") || index(where, "!") > 1, index(type, "d"), index(type, "i"), 0)
  return 1
}
{
  if (index($0, "\r")) sub(/\r$/, "")
  # The common line first, with as little work as can be: an entry in the body of a JSON dump.
  if (state == "body" && substr($0, 1, 1) == "\"" && format == "json" && !failed) {
    if (need) { bad("entry without \",\" after the previous one"); next }
    need = substr($0, length($0)) != ","
    if (!json($0)) print "L\t" NR "\t" $0
    next
  }
  if ($0 ~ /^EXIT [0-9]+$/) { print; next }
  if (failed) next
  if (state == "") {
    if (blank($0)) next
    if ($0 == "{") { state = "body"; format = "json"; print "FORMAT\tjson\t" NR; next }
    if ($0 !~ /^[^\t]+\t([0-9]+|[a-z]+) /) { bad("unrecognised first line"); next }
    state = "body"; format = "legacy"; print "FORMAT\tlegacy\t" NR
  }
  if (format == "legacy") { if ($0 != "" && !legacy($0)) print "L\t" NR "\t" $0; next }
  if (state == "closed") { if (!blank($0)) bad("text after the closing \"}\""); next }
  if ($0 == "") next
  if ($0 == "}") { state = "closed"; next }
  bad("not a JSON mailbox entry")
}
END {
  if (failed) exit
  if (format == "json" && state != "closed") print "TRUNCATED\t" NR
  print "COUNTS\t" t + 0 "\t" l + 0 "\t" r + 0 "\t" d + 0 "\t" i + 0 "\t" u + 0 "\t" v + 0
  print "END"
}
`

export interface CountReader {
  /** One line of the host's output. */
  push(line: string): void
  /** The output ended: the dump's figures (checked against the names seen, with onName); throws if it stopped early. */
  end(): EntryCounts
  /** The producer's `EXIT n` line, when one passed (for the caller's check of ctl_mboxlist's status). */
  readonly exitLine: string
}

/**
 * Reads COUNT_AWK's output line by line; entries it handed back are read by the reference parser.
 * Throws the parser's own UnexpectedOutputError for a dump it would refuse, and one of its own
 * when the output stopped before its end (the awk or the connection died). With onName (the
 * awk run with names=1) every live local or remote entry's name goes to it, and the names must
 * add up to the awk's own figures (a line lost on the way would else go unnoticed).
 */
export function createCountReader(opts: {host?: string; onName?: (name: string, remote: boolean) => void} = {}): CountReader {
  const {host, onName} = opts
  const what = onName ? 'the mailbox list' : 'the mailbox count'
  const hint = `run ctl_mboxlist -d on the host by hand and check it completes; ${onName ? 'the list' : 'the count'} needs awk (Debian's mawk or gawk)`
  let format: DumpFormat | undefined
  let counts: EntryCounts | undefined
  let ended = false
  let exitLine = ''
  // Names the awk printed, and the figures of the lines it handed back.
  let local = 0
  let remote = 0
  const handedBack = newEntryCounts()
  const fail = (line: string): never => {
    throw new UnexpectedOutputError(`${what} on the host printed a line it should not: ${excerpt(line)}`, {host, hint})
  }
  return {
    push(line: string) {
      if (line === '') return
      if (ended) fail(line)
      if (EXIT_RE.test(line)) return void (exitLine = line)
      const [tag, a = '', b = ''] = line.split('\t', 3)
      const rest = () => line.slice(tag!.length + a.length + 2)
      if (onName && (tag === 'N' || tag === 'R') && line.length > 2) {
        if (tag === 'R') remote++
        else local++
        onName(line.slice(2), tag === 'R')
      } else if (tag === 'FORMAT' && (a === 'json' || a === 'legacy')) format = a
      else if (tag === 'L' && format) {
        const e = parseDumpLine(format, rest(), Number(a), host)
        addToCounts(handedBack, e)
        if (onName && (isRemote(e) || isLiveLocal(e))) onName(e.name, isRemote(e))
      } else if (tag === 'BAD') throw dumpLineError(b, Number(a), rest().slice(b.length + 1), host)
      else if (tag === 'TRUNCATED') throw truncatedDumpError(Number(a), host)
      else if (tag === 'COUNTS') {
        const n = line.split('\t').slice(1).map(Number)
        if (n.length !== COUNT_FIGURES.length || !n.every(Number.isInteger))
          throw new UnexpectedOutputError(`bad mailbox figures from the host: ${excerpt(line)}`, {host, hint})
        counts = Object.fromEntries(COUNT_FIGURES.map((k, i) => [k, n[i]!])) as EntryCounts
      } else if (tag === 'END') ended = true
      else fail(line)
    },
    end(): EntryCounts {
      if (!counts || !ended) throw new UnexpectedOutputError(`${what} on the host ended early (no figures)`, {host, hint})
      // The awk counts only the lines it read itself: those it printed a name for (or a tombstone).
      if (onName && (counts.liveLocal !== local || counts.remote !== remote))
        throw new UnexpectedOutputError(
          `${what} on the host does not add up: ${local} local and ${remote} remote names for ${counts.liveLocal} and ${counts.remote} entries`,
          {host, hint},
        )
      const awk = counts
      return Object.fromEntries(COUNT_FIGURES.map((k) => [k, awk[k] + handedBack[k]])) as EntryCounts
    },
    get exitLine() {
      return exitLine
    },
  }
}

/** The figures from COUNT_AWK's whole output (see createCountReader). */
export function readCountOutput(out: string, host?: string): EntryCounts {
  const reader = createCountReader({host})
  for (const line of out.split('\n')) reader.push(line)
  return reader.end()
}
