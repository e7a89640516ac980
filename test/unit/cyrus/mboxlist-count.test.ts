// The count a host makes of its own `ctl_mboxlist -d` (COUNT_AWK, run here with the machine's
// awks) against the reference: the streaming parser through addToCounts, on the same text.
import {execFileSync} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {describe, expect, it} from 'vitest'
import {COUNT_AWK, COUNT_FIGURES, readCountOutput} from '../../../src/cyrus/mboxlist-count.js'
import {countEntries, newEntryCounts, parseDump} from '../../../src/cyrus/mboxlist-dump.js'

// Debian's default is mawk; gawk is what many hosts have instead. Test every one installed.
const AWKS = ['mawk', 'gawk', 'busybox awk', 'awk'].filter((a) => {
  try {
    execFileSync('sh', ['-c', `command -v ${a.split(' ')[0]}`], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
})

async function onHost(awk: string, text: string): Promise<string> {
  const [bin, ...pre] = awk.split(' ')
  const r = await execa(bin!, [...pre, COUNT_AWK], {input: text, env: {LC_ALL: 'C'}})
  return r.stdout
}

/** jansson's layout (", " and ": "), as ctl_mboxlist prints it. */
const j = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(j).join(', ')}]`
    : v && typeof v === 'object'
      ? `{${Object.entries(v)
          .map(([k, x]) => `${JSON.stringify(k)}: ${j(x)}`)
          .join(', ')}}`
      : JSON.stringify(v)

/** An entry in dump_cb's key order; `extra` keys go where dump_cb puts them. */
function cyrusLine(e: {
  name: string
  mbtype: string
  partition?: string
  server?: string
  acl?: Record<string, string>
  uniqueid?: string
  special?: string
  history?: object[]
}) {
  const o: Record<string, unknown> = {name: e.name, mtime: '1795345473', uidvalidity: '1700000001', createdmodseq: '1', foldermodseq: '2', mbtype: e.mbtype}
  if (e.partition !== undefined) o.partition = e.partition
  if (e.server !== undefined) o.server = e.server
  o.acl = e.acl ?? {}
  if (e.uniqueid !== undefined) o.uniqueid = e.uniqueid
  if (e.special !== undefined) o.legacy_specialuse = e.special
  o.name_history = e.history ?? []
  return `${JSON.stringify(e.name)}: ${j(o)}`
}
const dump = (lines: string[]) => `{\n${lines.join(',\n')}\n}\n`

const part = 'default'
const tricky = [
  cyrusLine({name: 'user.alice', mbtype: 'e', partition: part, acl: {alice: 'lrswipkxtecdan'}, uniqueid: 'u1'}),
  cyrusLine({name: 'user.bob.Say "hi"', mbtype: 'e', partition: part, acl: {bob: 'lrs'}, uniqueid: 'u2'}),
  cyrusLine({name: 'user.bob.back\\slash\ttab\\', mbtype: 'e', partition: part, uniqueid: 'u3'}),
  cyrusLine({name: 'user.bob.Ünïcødé 日本 😀', mbtype: 'e', partition: part, uniqueid: 'u4'}),
  // Key-like text inside names and ACLs must not be read as the entry's own keys.
  cyrusLine({name: 'user.x", "mbtype": "er", "server": "b9', mbtype: 'e', partition: part}),
  cyrusLine({name: 'user.y}, "uniqueid": "z', mbtype: 'e', partition: part, acl: {'a}': 'lrs'}}),
  cyrusLine({
    name: 'user.acl',
    mbtype: 'e',
    partition: part,
    acl: {server: 'lrs', uniqueid: 'lrs', mbtype: 'er', partition: 'x', name_history: 'l', 'q"}, "uniqueid": "': 'l', '{': 'l'},
  }),
  cyrusLine({name: 'user.acl2', mbtype: 'e', partition: part, acl: {server: 'lrs'}, uniqueid: ''}),
  // Remote by flag, by server, both; an empty server is not remote.
  cyrusLine({name: 'user.r1', mbtype: 'er', partition: part, server: 'b2', acl: {r1: 'lrs'}}),
  cyrusLine({name: 'user.r2', mbtype: 'er', partition: part}),
  cyrusLine({name: 'user.r3', mbtype: 'e', partition: part, server: 'b2', uniqueid: 'u5'}),
  cyrusLine({name: 'user.r4', mbtype: 'e', partition: part, server: '', uniqueid: 'u6'}),
  cyrusLine({name: 'user.r5', mbtype: 'e', partition: part, server: '"', uniqueid: 'u6'}),
  // Tombstones (3.6 leaves "ed" without a partition), intermediates, other types and flags.
  cyrusLine({name: 'user.alice.Old', mbtype: 'ed'}),
  cyrusLine({name: 'DELETED.user.erin.5F0', mbtype: 'ed', partition: part, uniqueid: 'u7'}),
  cyrusLine({name: 'user.frank.a', mbtype: 'ei', partition: part}),
  cyrusLine({name: 'user.frank.b', mbtype: 'eri', partition: part, server: 'b1'}),
  cyrusLine({name: 'user.cal.#calendars', mbtype: 'c', partition: part, uniqueid: 'u8'}),
  cyrusLine({name: 'user.cal.#addressbooks', mbtype: 'am', partition: part, uniqueid: 'u9'}),
  cyrusLine({name: 'user.res', mbtype: 'ez', partition: part}),
  cyrusLine({name: 'user.dr', mbtype: 'erd', partition: part, server: 'b2'}),
  cyrusLine({name: 'user.sp', mbtype: 'e', partition: part, uniqueid: 'u10', special: '\\Sent'}),
  // name_history items carry their own mbtype and partition.
  cyrusLine({
    name: 'user.moved',
    mbtype: 'e',
    partition: 'p2',
    acl: {m: 'lrs'},
    history: [
      {name: 'user.old', mtime: '1', uidvalidity: '2', createdmodseq: '1', foldermodseq: '1', mbtype: 'er', partition: 'p1'},
      {name: 'user.older}, "uniqueid": "x', mbtype: 'ed', partition: 'p0'},
    ],
  }),
  // Written with \u escapes, as another JSON library might.
  String.raw`"user.\u00e9\ud83d\ude00": {"name": "user.\u00e9\ud83d\ude00", "mtime": "1", "uidvalidity": "1", "createdmodseq": "1", "foldermodseq": "1", "mbtype": "e", "partition": "default", "acl": {"\u0041": "lrs"}, "uniqueid": "\u0075", "name_history": []}`,
  String.raw`"user.srv": {"name": "user.srv", "mtime": "1", "uidvalidity": "1", "createdmodseq": "1", "foldermodseq": "1", "mbtype": "e", "partition": "default", "server": "\"", "acl": {}, "name_history": []}`,
]
// Not dump_cb's layout: the awk hands these back to the parser.
const unusual = [
  '"user.order": {"mbtype": "er", "name": "user.order", "partition": "default", "server": "b2", "acl": {}}',
  '"user.nested": {"name": "user.nested", "mbtype": "e", "partition": "default", "extra": {"server": "b3", "uniqueid": "x"}, "acl": {}}',
  '"user.nums": {"name": "user.nums", "uidvalidity": 5, "mtime": 7, "mbtype": "e", "partition": "default", "acl": {"a": "l"}, "uniqueid": "u"}',
  '"user.noname": {"mbtype": "e", "partition": "default", "acl": {}, "uniqueid": "u"}',
  '"user.key": {"name": "user.other", "mbtype": "er", "partition": "default", "acl": {}}',
  '"user.esc": {"name": "user.esc", "mtime": "1", "uidvalidity": "1", "createdmodseq": "1", "foldermodseq": "1", "mbtype": "\\u0065", "partition": "default", "acl": {}, "uniqueid": "u", "name_history": []}',
  '"user.spaced" :  {"name": "user.spaced", "mbtype": "e", "partition": "default", "acl": {}}',
]

const fixtures = [
  ...readdirSync(join(import.meta.dirname, '../../fixtures/cyrus'))
    .filter((f) => f.startsWith('dump-'))
    .map((f) => join(import.meta.dirname, '../../fixtures/cyrus', f)),
  ...readdirSync(join(import.meta.dirname, '../../fixtures/lab'))
    .filter((f) => f.startsWith('dump-'))
    .map((f) => join(import.meta.dirname, '../../fixtures/lab', f)),
]

const legacy = [
  'user.qyb\t0 default qyb\tlrswipkxtecdan',
  'user.bob.My Folder\t0 default bob\tlrswipkxtecdan\tanyone\tlrs\t',
  'user.carol\t1 b2!default carol\tlrswipkxtecdan\t',
  'user.dan\t0 b2!default',
  'user.eve\t0 !default eve\tlrs',
  'DELETED.user.erin.5F0\t16 default ',
  'user.cal.Calendar\t32 default cal\tlrs',
  'user.i\t256 default',
  'user.ri\t273 b1!default',
  'user.letters\ter b3!default x\tlrs',
  'user.letters2\tedi default',
  'user.utf8\t0 d\u00e9x',
  '',
].join('\n')

function reference(text: string) {
  return countEntries(parseDump(text))
}

describe.each(AWKS)('COUNT_AWK under %s', (awk) => {
  it('gives the parser’s figures for every captured dump, all read on the host', async () => {
    for (const f of fixtures) {
      const text = readFileSync(f, 'utf8')
      const out = await onHost(awk, text)
      expect(readCountOutput(out), f).toEqual(reference(text))
      expect(out, `${f} left entries to the parser`).not.toMatch(/^L\t/m)
    }
  })

  it('gives the same figures for awkward names, ACLs, flags and tombstones, in LF and CRLF', async () => {
    const text = dump(tricky)
    const want = reference(text)
    expect(want).toMatchObject({total: tricky.length})
    const out = await onHost(awk, text)
    expect(readCountOutput(out)).toEqual(want)
    // dump_cb's own layout is read on the host, whatever the names hold.
    expect(out).not.toMatch(/^L\t/m)
    const crlf = text.replaceAll('\n', '\r\n')
    expect(readCountOutput(await onHost(awk, crlf))).toEqual(reference(crlf))
  })

  it('hands entries in another layout back to the parser, and the sum is still the same', async () => {
    const text = dump([...tricky.slice(0, 3), ...unusual, ...tricky.slice(3)])
    const out = await onHost(awk, text)
    expect(out.match(/^L\t/gm)).toHaveLength(unusual.length)
    expect(readCountOutput(out)).toEqual(reference(text))
  })

  it('counts ≤3.4 text dumps the same way', async () => {
    const out = await onHost(awk, legacy)
    expect(readCountOutput(out)).toEqual(reference(legacy))
    // Only the line whose partition is not ASCII goes to the parser.
    expect(out.match(/^L\t/gm)).toHaveLength(1)
  })

  it('an empty list, and a producer status line passed through', async () => {
    const empty = readFileSync(join(import.meta.dirname, '../../fixtures/cyrus/dump-empty.json.txt'), 'utf8')
    const out = await onHost(awk, `${empty}EXIT 0\n`)
    expect(out.split('\n')).toContain('EXIT 0')
    expect(readCountOutput(out)).toEqual(newEntryCounts())
    expect(readCountOutput(await onHost(awk, ''))).toEqual(newEntryCounts())
  })

  it('refuses what the parser refuses, with the parser’s own message', async () => {
    const master = readFileSync(join(import.meta.dirname, '../../fixtures/cyrus/dump-master.json.txt'), 'utf8')
    const entry = (name: string, rest = '"mbtype": "e", "partition": "d", "acl": {}') => `"${name}": {"name": "${name}", ${rest}}`
    const bad = [
      master.split('\n').slice(0, 5).join('\n'),
      'Usage: ctl_mboxlist ...\n',
      `{\n${entry('a')}\n${entry('b')}\n}\n`,
      `{\n${entry('a')}\n}\nextra\n`,
      `{\n${entry('a')},\n${entry('b', '"mbtype": "E!", "partition": "d", "acl": {}')}\n}\n`,
      `{\n${entry('a', '"mbtype": "e", "acl": {}')}\n}\n`,
      `{\n${entry('a')},\ngarbage\n}\n`,
      `${legacy}oops\n`,
      `${legacy}user.nbsp\t0 d\u00a0x\n`,
    ]
    for (const text of bad) {
      let want = ''
      try {
        parseDump(text)
      } catch (error) {
        want = (error as Error).message
      }
      expect(want, text).not.toBe('')
      const out = await onHost(awk, text)
      expect(() => readCountOutput(out, 'b1'), text).toThrow(want)
    }
  })
})

describe('readCountOutput', () => {
  it('prints every figure EntryCounts has, in a fixed order', () => {
    expect([...COUNT_FIGURES].sort()).toEqual(Object.keys(newEntryCounts()).sort())
  })

  it('an output cut short or not from the awk is an error naming the host', () => {
    expect(() => readCountOutput('FORMAT\tjson\t1\n', 'b1')).toThrow(/ended early/)
    expect(() => readCountOutput('FORMAT\tjson\t1\nCOUNTS\t1\t2\nEND\n', 'b1')).toThrow(/bad mailbox figures/)
    expect(() => readCountOutput('ctl_mboxlist: error\n', 'b1')).toThrow(/should not/)
    expect(() => readCountOutput('')).toThrow(/ended early/)
  })

  it.runIf(AWKS.length > 0)('reads 5,000 generated entries on the host alone', async () => {
    const lines = Array.from({length: 5_000}, (_, i) =>
      cyrusLine({name: `user.u${i}`, mbtype: i % 3 ? 'e' : 'er', partition: part, ...(i % 3 ? {uniqueid: `u${i}`} : {server: 'b2'}), acl: {[`u${i}`]: 'lrs'}}),
    )
    const text = dump(lines)
    const out = await onHost(AWKS[0]!, text)
    expect(out).not.toMatch(/^L\t/m)
    expect(readCountOutput(out)).toEqual(reference(text))
  })
})
