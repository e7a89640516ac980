// The names a host picks out of its own `ctl_mboxlist -d` (COUNT_AWK with names=1, run here
// with the machine's awks, read by createCountReader with onName) against the reference: the streaming
// parser's entries, live local and remote, on the same text.
import {readFileSync} from 'node:fs'
import {execa} from 'execa'
import {describe, expect, it} from 'vitest'
import {COUNT_AWK, createCountReader} from '../../../src/cyrus/mboxlist-count.js'
import {countEntries, isLiveLocal, isRemote, parseDump} from '../../../src/cyrus/mboxlist-dump.js'
import {AWKS, dump, fixtures, tricky, unusual} from './dump-samples.js'

async function onHost(awk: string, text: string): Promise<string> {
  const [bin, ...pre] = awk.split(' ')
  const r = await execa(bin!, [...pre, '-v', 'names=1', COUNT_AWK], {input: text, env: {LC_ALL: 'C'}})
  return r.stdout
}

function read(out: string) {
  const local: string[] = []
  const remote: string[] = []
  const reader = createCountReader({onName: (n, r) => (r ? remote : local).push(n)})
  for (const l of out.split('\n')) reader.push(l)
  return {counts: reader.end(), local, remote, exitLine: reader.exitLine}
}

function reference(text: string) {
  const entries = parseDump(text)
  return {
    counts: countEntries(entries),
    local: entries.filter(isLiveLocal).map((e) => e.name),
    remote: entries.filter(isRemote).map((e) => e.name),
  }
}

const sorted = (x: {counts: unknown; local: string[]; remote: string[]}) => ({counts: x.counts, local: [...x.local].sort(), remote: [...x.remote].sort()})

const legacy = ['user.qyb\t0 default qyb\tlrswipkxtecdan', 'user.carol\t1 b2!default carol\tlrswipkxtecdan\t', 'DELETED.user.erin.5F0\t16 default ', ''].join(
  '\n',
)

describe.each(AWKS)('names from COUNT_AWK under %s', (awk) => {
  it('gives the parser’s names and figures for every captured dump, the plain names read on the host', async () => {
    for (const f of fixtures) {
      const text = readFileSync(f, 'utf8')
      const out = await onHost(awk, text)
      expect(sorted(read(out)), f).toEqual(sorted(reference(text)))
      // Only entries whose name is not plain text are left to the parser.
      for (const l of out.split('\n').filter((x) => x.startsWith('L\t'))) expect(l, f).toMatch(/\\|[\u0080-\uffff]/)
    }
  })

  it('hands back every name that is not plain text (escapes, non-ASCII, key ≠ name), and the names are still the parser’s', async () => {
    for (const text of [dump(tricky), dump([...tricky.slice(0, 3), ...unusual, ...tricky.slice(3)]), dump(tricky).replaceAll('\n', '\r\n')]) {
      const out = await onHost(awk, text)
      expect(sorted(read(out))).toEqual(sorted(reference(text)))
      // Names are printed only as their own text: nothing escaped, nothing outside printable ASCII.
      for (const l of out.split('\n').filter((x) => /^[NR]\t/.test(x))) expect(l.slice(2)).toMatch(/^[ -~]+$/)
    }
    expect((await onHost(awk, dump(tricky))).match(/^L\t/gm)?.length).toBeGreaterThanOrEqual(4)
  })

  it('leaves ≤3.4 text dumps to the parser, line by line', async () => {
    const out = await onHost(awk, legacy)
    expect(out.match(/^L\t/gm)).toHaveLength(3)
    expect(sorted(read(out))).toEqual(sorted(reference(legacy)))
  })

  it('passes the producer’s status line, and reads an empty list', async () => {
    const out = await onHost(awk, '{\n\n}\nEXIT 0\n')
    expect(read(out)).toMatchObject({local: [], remote: [], exitLine: 'EXIT 0'})
  })
})

describe('createCountReader with names', () => {
  const text = dump(tricky.slice(0, 1).concat(tricky.slice(8, 10)))
  const out = () => execa('mawk', ['-v', 'names=1', COUNT_AWK], {input: text, env: {LC_ALL: 'C'}}).then((r) => r.stdout)

  it('refuses output that lost a name on the way (the figures do not add up)', async () => {
    const lines = (await out()).split('\n')
    const dropped = lines.filter((l, i) => i !== lines.findIndex((x) => x.startsWith('N\t')))
    expect(() => read(dropped.join('\n'))).toThrow(/does not add up: 0 local and 2 remote names for 1 and 2 entries/)
  })

  it('refuses output that stopped before its figures, or a line it does not know', async () => {
    const lines = (await out()).split('\n')
    expect(() => read(lines.filter((l) => !l.startsWith('COUNTS') && l !== 'END').join('\n'))).toThrow(/ended early/)
    expect(() => read(['FORMAT\tjson\t1', 'X\ty', ...lines].join('\n'))).toThrow(/printed a line it should not/)
  })

  it('raises the parser’s own error for a line the dump should not have', async () => {
    const r = await execa('mawk', ['-v', 'names=1', COUNT_AWK], {input: '{\n"a": {"name": "a"\n}\n', env: {LC_ALL: 'C'}, reject: false})
    expect(() => read(r.stdout)).toThrow(/ctl_mboxlist -d:/)
  })
})
