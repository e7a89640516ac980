// The count a host makes of its own `ctl_mboxlist -d` (COUNT_AWK, run here with the machine's
// awks) against the reference: the streaming parser through addToCounts, on the same text.
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {describe, expect, it} from 'vitest'
import {COUNT_AWK, COUNT_FIGURES, readCountOutput} from '../../../src/cyrus/mboxlist-count.js'
import {countEntries, newEntryCounts, parseDump} from '../../../src/cyrus/mboxlist-dump.js'
import {AWKS, cyrusLine, dump, fixtures, part, tricky, unusual} from './dump-samples.js'

async function onHost(awk: string, text: string): Promise<string> {
  const [bin, ...pre] = awk.split(' ')
  const r = await execa(bin!, [...pre, COUNT_AWK], {input: text, env: {LC_ALL: 'C'}})
  return r.stdout
}

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
