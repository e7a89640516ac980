import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {UnexpectedOutputError} from '../../../src/errors.js'
import {
  CRC_PERL,
  RECORD_AWK,
  STATE_AWK,
  compareMessages,
  compareStates,
  decodeFlags,
  literalNames,
  mailboxStateScript,
  parseMailboxStates,
  parseMessageRecords,
  selectionPatterns,
  type MailboxState,
  type MessageRecord,
} from '../../../src/host/mailbox-state.js'
import {producerExit, withExit} from '../../../src/host/remote.js'
import {shellQuote} from '../../../src/ssh/quote.js'

// Real `mbexamine` output of Debian's Cyrus 3.6.1 on the lab (see test/fixtures/cyrus/README.md).
const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/cyrus/${name}`, import.meta.url), 'utf8')
// The host-side scripts run here exactly as on a host (awk and perl are on every Debian system).
const run = (cmd: string, args: string[], input: string) => execFileSync(cmd, args, {input, encoding: 'utf8'})

describe('the mailbox state pass (mbexamine -u | awk | perl)', () => {
  it('reads every header field, and no CRC when the index is not there', () => {
    const awkOut = run('awk', [STATE_AWK], `${fixture('mbexamine-u-headers.stdout')}EXIT 0\n`)
    const out = run('perl', ['-e', CRC_PERL], awkOut)
    const states = parseMailboxStates(out)
    expect(states.map((s) => s.name)).toEqual(['user.alice', 'user.alice.Sent', 'user.alice.Trash', 'user.carol'])
    expect(states[0]).toEqual({
      name: 'user.alice',
      uniqueid: 'le95z95mgku6kfuteye5wfn5',
      uidvalidity: 1795882831,
      lastUid: 3,
      highestModseq: 9,
      exists: 2,
      bytes: 468,
      syncCrc: null,
      annotCrc: null,
    })
    expect(out).toMatch(/^EXIT 0$/m)
  })

  it('fails when the pass did not reach its end marker (a cut connection is not an empty host)', () => {
    expect(() => parseMailboxStates('S\tuser.a\tu\t1\t1\t1\t1\t1\t-\t-\t-\n')).toThrow(UnexpectedOutputError)
    expect(parseMailboxStates('EXIT 0\nEND\n')).toEqual([])
  })

  it('names the mailboxes mbexamine could not open (their line runs into the next mailbox), and refuses to pass them', () => {
    // As the lab's generated mailboxes (in mailboxes.db, no index on disk) print: seen on b1.
    const text = fixture('mbexamine-u-headers.stdout').replace('Examining user.alice...', 'Examining user.u1...Examining user.u2...Examining user.alice...')
    const out = run('perl', ['-e', CRC_PERL], run('awk', [STATE_AWK], `${text}Examining user.last...\nEXIT 0\n`))
    expect(out.split('\n').filter((l) => l.startsWith('U\t'))).toEqual(['U\tuser.u1', 'U\tuser.u2', 'U\tuser.last'])
    // The mailbox after them is read as itself.
    expect(out).toMatch(/^S\tuser\.alice\tle95z95mgku6kfuteye5wfn5\t1795882831\t3\t/m)
    expect(() => parseMailboxStates(out)).toThrow(/mbexamine could not open 3 mailboxes \(no index or header on disk\?\): user\.u1, user\.u2, user\.last/)
  })

  it('a header that came without its fields is incomplete, not unopened', () => {
    const out = run('awk', [STATE_AWK], 'Examining user.x... Mailbox Header Info:\n  Unique ID: u1\nEXIT 0\n')
    expect(out.split('\n')).toContain('S\tuser.x\tu1\t-\t-\t-\t-\t-\t-')
    expect(() => parseMailboxStates(out)).toThrow(/incomplete header for user\.x/)
  })

  it('takes the CRCs perl appended', () => {
    const [s] = parseMailboxStates('S\tuser.a\tuid1\t7\t3\t2\t9\t468\t17\t962607830\t2404318400\nEND\n')
    expect(s.syncCrc).toBe(962607830)
    expect(s.annotCrc).toBe(2404318400)
  })
})

describe('the message record pass (mbexamine | awk)', () => {
  it('gives uid, guid, flags, internaldate, size and modseq per message', () => {
    const out = run('awk', [RECORD_AWK], `${fixture('mbexamine-alice-carol.stdout')}EXIT 0\n`)
    const boxes = parseMessageRecords(out)
    expect(boxes.map((b) => [b.name, b.messages.map((m) => m.uid)])).toEqual([
      ['user.alice', [1, 3]],
      ['user.carol', [1]],
    ])
    expect(boxes[0].messages[0]).toEqual({
      uid: 1,
      guid: '51c60f48463ce1724ec4855ce4821d75c8ae4eec',
      flags: ['$Label1', 'Junk'],
      internalDate: 1795882837,
      size: 234,
      modseq: 6,
    })
    expect(boxes[0].messages[1].flags).toEqual(['\\Answered', '\\Draft', '\\Flagged'])
  })

  it('gives a mailbox after one mbexamine could not open its own name', () => {
    const text = fixture('mbexamine-alice-carol.stdout').replace('Examining user.alice...', 'Examining user.u1...Examining user.alice...')
    const boxes = parseMessageRecords(run('awk', [RECORD_AWK], `${text}EXIT 0\n`))
    expect(boxes.map((b) => b.name)).toEqual(['user.alice', 'user.carol'])
  })

  it('decodes user flags past the first word and every system flag', () => {
    const names = Array.from({length: 40}, (_, i) => `f${i}`)
    expect(decodeFlags('0000001F', '00000000 00000000 00000080 00000001', names)).toEqual(
      ['\\Answered', '\\Deleted', '\\Draft', '\\Flagged', '\\Seen', 'f0', 'f39'].sort(),
    )
  })

  it('refuses a record without a GUID', () => {
    expect(() => parseMessageRecords('M\tuser.a\tu\t\nR\t1\t-\t5\t1\t0\t0 0 0 0\t1\t\nEND\n')).toThrow(UnexpectedOutputError)
  })
})

describe('selectionPatterns', () => {
  it('a user is the whole tree; nothing selected is every mailbox', () => {
    expect(selectionPatterns({users: ['alice']})).toEqual(['user.alice', 'user.alice.*'])
    expect(selectionPatterns({users: ['alice']}, '/')).toEqual(['user/alice', 'user/alice/*'])
    expect(selectionPatterns({mailboxes: ['shared.*']})).toEqual(['shared.*'])
    expect(selectionPatterns({})).toEqual(['*'])
  })
})

const state = (name: string, o: Partial<MailboxState> = {}): MailboxState => ({
  name,
  uniqueid: `id-${name}`,
  uidvalidity: 1,
  lastUid: 3,
  highestModseq: 9,
  exists: 3,
  bytes: 10,
  syncCrc: 5,
  annotCrc: 6,
  ...o,
})
const msg = (uid: number, guid: string, o: Partial<MessageRecord> = {}): MessageRecord => ({
  uid,
  guid: guid.padEnd(40, '0'),
  flags: [],
  internalDate: 100,
  size: 1,
  modseq: 1,
  ...o,
})

describe('compareStates', () => {
  it('names the mailboxes on one side only and each field that differs', () => {
    const r = compareStates([state('a'), state('b'), state('c', {syncCrc: 7})], [state('b'), state('c'), state('d')])
    expect(r.map((c) => [c.name, c.differences])).toEqual([
      ['a', ['only-a']],
      ['b', []],
      ['c', ['sync-crc']],
      ['d', ['only-b']],
    ])
  })

  it('equal counters without a digest on one side are unproven, not a match', () => {
    const [c] = compareStates([state('a', {syncCrc: null})], [state('a')])
    expect(c.differences).toEqual([])
    expect(c.unproven).toBe(true)
  })

  it('a recreated mailbox shows as a different uniqueid and uidvalidity', () => {
    const [c] = compareStates([state('a')], [state('a', {uniqueid: 'x', uidvalidity: 2})])
    expect(c.differences).toEqual(['uniqueid', 'uidvalidity'])
  })
})

describe('compareMessages', () => {
  it('same UID with another GUID is a conflict; flags compare without case', () => {
    const r = compareMessages(
      [msg(1, 'a'), msg(2, 'b'), msg(3, 'c', {flags: ['$Label1']}), msg(4, 'd', {flags: ['\\Seen']}), msg(5, 'e')],
      [msg(1, 'a'), msg(2, 'x'), msg(3, 'c', {flags: ['$label1']}), msg(4, 'd'), msg(6, 'f', {internalDate: 5})],
    )
    expect(r.differences.map((d) => [d.kind, d.uid])).toEqual([
      ['conflict', 2],
      ['flags', 4],
      ['only-a', 5],
      ['only-b', 6],
    ])
    expect(r.compared).toBe(6)
  })

  it('reports a GUID held under different UIDs on the two sides (renumbered)', () => {
    const r = compareMessages([msg(3, 'a'), msg(4, 'b')], [msg(3, 'b'), msg(4, 'a')])
    expect(r.movedGuids.sort()).toEqual(['a'.padEnd(40, '0'), 'b'.padEnd(40, '0')])
    expect(r.differences.map((d) => d.kind)).toEqual(['conflict', 'conflict'])
  })

  it('differing internaldate is reported', () => {
    expect(compareMessages([msg(1, 'a')], [msg(1, 'a', {internalDate: 7})]).differences.map((d) => d.kind)).toEqual(['internaldate'])
  })
})

describe('the mailbox state pass: exact names or patterns', () => {
  it('sends exact names on stdin to xargs (mbexamine looks each up directly) and anything with a wildcard as patterns', () => {
    expect(literalNames(['user.alice', 'user.alice.Sent', 'example.com!user.bob'])).toBe(true)
    expect(literalNames(['user.alice', 'user.alice.*'])).toBe(false)
    expect(literalNames(['*'])).toBe(false)
    expect(literalNames([])).toBe(false)
    const host = {cyrus: {binDir: '/usr/lib/cyrus/bin'}} as Parameters<typeof mailboxStateScript>[0]
    expect(mailboxStateScript(host, ['user.alice'], true)).toContain("{ xargs -r -d '\\n' /usr/lib/cyrus/bin/mbexamine -u 4294967295; printf")
    expect(mailboxStateScript(host, ['user.a*'])).toContain("/usr/lib/cyrus/bin/mbexamine -u 4294967295 'user.a*'")
  })

  it('reads what mbexamine prints for names given on stdin as for patterns', () => {
    // The script's consumer half, fed the captured output (the producer differs only in how it is started).
    const states = parseMailboxStates(run('perl', ['-e', CRC_PERL], run('awk', [STATE_AWK], `${fixture('mbexamine-u-headers.stdout')}EXIT 0\n`)))
    expect(states.map((s) => s.name)).toContain('user.alice.Sent')
  })
})

describe('withExit', () => {
  it("keeps the producer's last line whole when it ends without a newline, and passes its exit status on", () => {
    // mbexamine prints "Examining x..." without a newline for a mailbox that has no index.
    const script = withExit(`printf 'Examining user.x...'; sh -c 'echo oops >&2; exit 3'`, `awk ${shellQuote(STATE_AWK)}`)
    const r = execFileSync('sh', ['-c', script], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']})
    expect(producerExit(r)).toBe(3)
    expect(r.split('\n')).toContain('U\tuser.x')
  })
})
