// A unified backend's list of its own live mailboxes, made where the dump is: an awk program
// reads `ctl_mboxlist -d` on the host and writes the document `ctl_mboxlist -u` loads, so the
// dump never crosses SSH. It keeps exactly what the Node path in engine/actions/push.ts keeps
// (isLiveLocal, a stand-in uniqueid where there is none) and only from lines it reads with
// certainty (ENTRY_AWK): at the first line it cannot, it says FALLBACK and the caller makes the
// whole host's list with the Node path instead (never a line dropped or kept on a guess).
// test/unit/cyrus/mboxlist-local-only.test.ts runs both over the same dumps.
import {UnexpectedOutputError} from '../errors.js'
import {sha256} from '../util/hash.js'
import {excerpt} from './lines.js'
import {ENTRY_AWK} from './mboxlist-count.js'
import {isLiveLocal, type MailboxEntry, undumpLine} from './mboxlist-dump.js'

/**
 * The Node path's line for one entry of the dump: undefined unless it is live and local. A
 * unified backend's slave rewrites some local entries without uniqueid (seen on a
 * delayed-deleted DELETED.* mailbox); -u would skip them, yet a plain -m pushes them. The list
 * made of these lines is only read by that -m, and MUPDATE carries no uniqueid, so a stand-in
 * (sha256 of the name) keeps them in the push; the backend's own db is left as it is (check
 * reports them).
 */
export function localOnlyLine(e: MailboxEntry): {line: string; standin: boolean} | undefined {
  if (!isLiveLocal(e)) return undefined
  if (e.uniqueid) return {line: undumpLine(e), standin: false}
  return {line: undumpLine({...e, uniqueid: `murderctlpush${sha256(e.name).slice(0, 16)}`}), standin: true}
}

// mawk-compatible, under LC_ALL=C. Reads the dump on stdin; writes the undump document to
// ENVIRON["MURDERCTL_DOC"] (the Node path's undumpDocument: "{\n", lines joined by ",\n",
// "\n}\n"); a stand-in's name goes through ENVIRON["MURDERCTL_NAME"] to sha256sum (a file, so
// no name is ever in a command line). Output: LOCAL <live entries> <of them without uniqueid>
// and END, or FALLBACK <line number> <why>; EXIT lines pass through. The lines kept are the
// dump's own (trailing "," removed): the same JSON values the Node path writes again with
// JSON.stringify, key order included; a stand-in uniqueid is added as the last key, as its
// {...e, uniqueid} does.
export const LOCAL_ONLY_AWK =
  ENTRY_AWK +
  String.raw`
function fallback(why) { if (!failed) print "FALLBACK\t" NR "\t" why; failed = 1 }
function blank(s) { return s ~ /^[ \t\r\f\v]*$/ }
function standin(raw,    cmd, h) {
  # A uniqueid key that is there but empty would be replaced in place by the Node path: leave it to it.
  if (index(e_s, "}, \"uniqueid\": \"")) return ""
  # Only a name whose text is its value (printable ASCII, no escape) is hashed here.
  if (e_name !~ /^[ -~]+$/ || index(e_name, "\\")) return ""
  printf "%s", e_name > namefile
  close(namefile)
  cmd = "sha256sum < \"$MURDERCTL_NAME\""
  h = ""
  cmd | getline h
  close(cmd)
  h = substr(h, 1, 16)
  if (length(h) != 16 || h !~ /^[0-9a-f]+$/) return ""
  return substr(raw, 1, length(raw) - 1) ", \"uniqueid\": \"murderctlpush" h "\"}"
}
BEGIN {
  doc = ENVIRON["MURDERCTL_DOC"]; namefile = ENVIRON["MURDERCTL_NAME"]
  if (doc == "" || namefile == "") fallback("no output file")
  else printf "{\n" > doc
}
{
  if ($0 ~ /^EXIT [0-9]+$/) { print; next }
  if (failed) next
  if (index($0, "\r")) sub(/\r$/, "")
  if (state == "body" && substr($0, 1, 1) == "\"") {
    if (need) { fallback("entry without \",\" after the previous one"); next }
    need = substr($0, length($0)) != ","
    raw = need ? $0 : substr($0, 1, length($0) - 1)
    # A raw control character: the parser would refuse the line. The line's key and its "name"
    # must be the same text (samekey): the Node path writes the name as the key.
    if (raw ~ /[\001-\037\177]/ || !entry(raw) || !samekey(e_s, raw)) { fallback("an entry line not in Cyrus 3.6's layout"); next }
    if (e_remote || e_del) next
    if (!e_uid) { raw = standin(raw); if (raw == "") { fallback("a local entry without uniqueid"); next }; u++ }
    printf "%s%s", (live++ ? ",\n" : ""), raw > doc
    next
  }
  if (state == "") {
    if (blank($0)) next
    if ($0 == "{") { state = "body"; next }
    fallback("not a JSON dump"); next
  }
  if (state == "closed") { if (!blank($0)) fallback("text after the closing \"}\""); next }
  if ($0 == "") next
  if ($0 == "}") { state = "closed"; next }
  fallback("not a JSON mailbox entry")
}
END {
  if (!failed && state != "closed") fallback("no closing \"}\"")
  if (failed) exit
  printf "\n}\n" > doc
  close(doc)
  print "LOCAL\t" live + 0 "\t" u + 0
  print "END"
}
`

export type LocalOnlyResult = {fallback: false; live: number; withoutUniqueid: number} | {fallback: true; line: number; why: string}

/** What LOCAL_ONLY_AWK printed (EXIT lines are the caller's); throws when it stopped before its end. */
export function readLocalOnlyOutput(out: string, host?: string): LocalOnlyResult {
  let result: LocalOnlyResult | undefined
  let ended = false
  for (const line of out.split('\n')) {
    if (line === '' || /^EXIT [0-9]+$/.test(line)) continue
    const [tag, a = '', b = '', more] = line.split('\t')
    if (tag === 'FALLBACK' && /^[0-9]+$/.test(a)) return {fallback: true, line: Number(a), why: b}
    if (tag === 'LOCAL' && /^[0-9]+$/.test(a) && /^[0-9]+$/.test(b) && more === undefined)
      result = {fallback: false, live: Number(a), withoutUniqueid: Number(b)}
    else if (tag === 'END' && result) ended = true
    else
      throw new UnexpectedOutputError(`the local-only list on the host printed a line it should not: ${excerpt(line)}`, {
        host,
        hint: 'the host needs awk (Debian mawk or gawk) and sha256sum; run ctl_mboxlist -d there by hand and check it completes',
      })
  }
  if (!result || !ended)
    throw new UnexpectedOutputError('the local-only list on the host ended early (no figures)', {
      host,
      hint: 'run ctl_mboxlist -d on the host by hand and check it completes',
    })
  return result
}
