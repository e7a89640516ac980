import {readFileSync} from 'node:fs'
import v8 from 'node:v8'
import vm from 'node:vm'
import {describe, expect, it} from 'vitest'
import {UnexpectedOutputError} from '../../../src/errors.js'
import {
  countEntries,
  createDumpCounter,
  createDumpParser,
  isDeleted,
  isLiveLocal,
  isIntermediate,
  isRemote,
  legacyMbtypeToLetters,
  location,
  parseDump,
  parseDumpLines,
  type MailboxEntry,
} from '../../../src/cyrus/mboxlist-dump.js'

// Real `ctl_mboxlist -d` output of Debian's Cyrus 3.6.1 (see test/fixtures/cyrus/README.md).
const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/cyrus/${name}`, import.meta.url), 'utf8')

describe('JSON dump (3.6)', () => {
  it('parses a backend dump: local entries with uniqueid, a remote one, a deleted one', () => {
    const entries = parseDump(fixture('dump-backend-b1.json.txt'))
    expect(entries.map((e) => e.name)).toEqual([
      'DELETED.user.erin.5F000000',
      'shared.news',
      'user.alice',
      'user.alice.Sent',
      'user.bob',
      'user.bob.Caf&AOk-',
      'user.bob.Say "hi"',
      'user.bob.back\\slash\ttab',
      'user.bob.Ünïcødé 日本',
      'user.dave',
    ])
    const alice = entries.find((e) => e.name === 'user.alice')!
    expect(alice).toEqual({
      name: 'user.alice',
      mtime: alice.mtime,
      uidvalidity: '1700000001',
      createdmodseq: '1',
      foldermodseq: '1',
      mbtype: 'e',
      partition: 'default',
      acl: {alice: 'lrswipkxtecdan', cyrus: 'lrswipkxtecdan'},
      uniqueid: '0a1b2c3d-0000-4000-8000-000000000001',
      name_history: [],
    })
    expect(isRemote(alice)).toBe(false)
    expect(location(alice, 'b1')).toBe('b1!default')
    const dave = entries.find((e) => e.name === 'user.dave')!
    expect(isRemote(dave)).toBe(true)
    expect(location(dave, 'b1')).toBe('b2!default')
    expect(isDeleted(entries[0]!)).toBe(true)
    expect(countEntries(entries)).toEqual({total: 10, local: 9, remote: 1, deleted: 1, intermediate: 0, withoutUniqueid: 0, liveLocal: 8})
  })

  it('parses intermediate entries (-y)', () => {
    const entries = parseDump(fixture('dump-backend-b1-with-intermediates.json.txt'))
    const frank = entries.find((e) => e.name === 'user.frank.a')!
    expect(isIntermediate(frank)).toBe(true)
    expect(countEntries(entries)).toMatchObject({total: 11, intermediate: 1})
  })

  it('parses master and frontend dumps: remote entries without uniqueid', () => {
    for (const f of ['dump-master.json.txt', 'dump-frontend.json.txt']) {
      const entries = parseDump(fixture(f))
      expect(entries).toHaveLength(9)
      expect(entries.every((e) => e.server === 'b1' && e.mbtype === 'er' && e.uniqueid === undefined)).toBe(true)
      expect(countEntries(entries)).toEqual({total: 9, local: 0, remote: 9, deleted: 0, intermediate: 0, withoutUniqueid: 0, liveLocal: 0})
    }
  })

  it('reads the tombstone 3.6 leaves after DELETE (mbtype ed, no partition) as deleted, not an error', () => {
    const text =
      '{\n"user.alice.Old": {"name": "user.alice.Old", "mbtype": "ed", "uidvalidity": "1764000000", "acl": {}},\n"user.alice": {"name": "user.alice", "mbtype": "e", "partition": "default", "acl": {"alice": "lrswipkxtecdan"}, "uniqueid": "u1"}\n}\n'
    const [tomb, live] = parseDump(text)
    expect(tomb).toMatchObject({name: 'user.alice.Old', mbtype: 'ed', partition: ''})
    expect(isDeleted(tomb!)).toBe(true)
    expect(isLiveLocal(tomb!)).toBe(false)
    expect(isLiveLocal(live!)).toBe(true)
  })

  it('parses an empty mailbox list', () => {
    expect(fixture('dump-empty.json.txt')).toBe('{\n\n}\n')
    const p = createDumpParser()
    for (const l of ['{', '', '}']) expect(p.push(l)).toBeUndefined()
    p.end()
    expect(p.format).toBe('json')
    expect(parseDump('')).toEqual([])
  })

  it('counts local entries that lost their uniqueid', () => {
    const text =
      '{\n"user.a": {"name": "user.a", "mbtype": "e", "partition": "default", "acl": {}},\n"user.b": {"name": "user.b", "mbtype": "e", "partition": "default", "acl": {}, "uniqueid": "u"}\n}\n'
    expect(countEntries(parseDump(text))).toMatchObject({local: 2, withoutUniqueid: 1})
  })

  it('handles escapes, unicode and CRLF, and keeps unknown keys', () => {
    const line = String.raw`"user.x.\"q\" \\ \u00e9 \ud83d\ude00": {"name": "user.x.\"q\" \\ \u00e9 \ud83d\ude00", "mbtype": "e", "partition": "p1", "acl": {"a\tb": "lrs"}, "uniqueid": "u1", "jmapid": "J1", "uidvalidity": 5}`
    const [e] = parseDump(`{\r\n${line}\r\n}\r\n`)
    expect(e!.name).toBe('user.x."q" \\ é 😀')
    expect(e!.acl).toEqual({'a\tb': 'lrs'})
    expect(e!['jmapid']).toBe('J1')
    expect(e!.uidvalidity).toBe('5')
  })

  it('throws UnexpectedOutputError with the line number and the first 80 characters', () => {
    const long = `garbage ${'x'.repeat(200)}`
    const bad = `{\n"user.a": {"name": "user.a", "mbtype": "e", "partition": "d", "acl": {}},\n${long}\n}\n`
    try {
      parseDump(bad)
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(UnexpectedOutputError)
      const msg = (err as Error).message
      expect(msg).toContain('line 3')
      expect(msg).toContain(`"garbage ${'x'.repeat(72)}…"`)
      expect(msg).not.toContain('x'.repeat(73))
      expect((err as UnexpectedOutputError).exitCode).toBe(8)
    }
    expect(() => parseDump('Usage: ctl_mboxlist ...\n')).toThrow(/unrecognised first line at line 1/)
    expect(() => parseDump('{\n"a": {"name": "a", "mbtype": "E!", "partition": "d", "acl": {}}\n}\n')).toThrow(/mbtype/)
    expect(() => parseDump('{\n"a": {"name": "a", "mbtype": "e", "acl": {}}\n}\n')).toThrow(/partition/)
    expect(() =>
      parseDump('{\n"a": {"name": "a", "mbtype": "e", "partition": "d", "acl": {}}\n"b": {"name": "b", "mbtype": "e", "partition": "d", "acl": {}}\n}\n'),
    ).toThrow(/without ","/)
    expect(() => parseDump('{\n}\nextra\n')).toThrow(/after the closing/)
  })

  it('refuses a truncated dump', () => {
    const full = fixture('dump-master.json.txt').split('\n')
    expect(() => parseDump(full.slice(0, 5).join('\n'))).toThrow(/without the closing "}"/)
  })
})

describe('legacy text dump (≤3.4)', () => {
  const legacy = [
    'user.qyb\t0 default qyb\tlrswipkxtecdan',
    'user.bob.My Folder\t0 default bob\tlrswipkxtecdan\tanyone\tlrs\t',
    'user.carol\t1 b2!default carol\tlrswipkxtecdan\t',
    'DELETED.user.erin.5F0\t16 default ',
    'user.cal.Calendar\t32 default cal\tlrs',
    '',
  ].join('\n')

  it('detects the format and converts numeric mbtypes to letters', () => {
    const p = createDumpParser()
    const got: MailboxEntry[] = []
    for (const l of legacy.split('\n')) {
      const e = p.push(l)
      if (e) got.push(e)
    }
    p.end()
    expect(p.format).toBe('legacy')
    expect(got).toEqual([
      {name: 'user.qyb', mbtype: 'e', partition: 'default', acl: {qyb: 'lrswipkxtecdan'}},
      {name: 'user.bob.My Folder', mbtype: 'e', partition: 'default', acl: {bob: 'lrswipkxtecdan', anyone: 'lrs'}},
      {name: 'user.carol', mbtype: 'er', partition: 'default', server: 'b2', acl: {carol: 'lrswipkxtecdan'}},
      {name: 'DELETED.user.erin.5F0', mbtype: 'ed', partition: 'default', acl: {}},
      {name: 'user.cal.Calendar', mbtype: 'c', partition: 'default', acl: {cal: 'lrs'}},
    ])
    expect(countEntries(got)).toEqual({total: 5, local: 4, remote: 1, deleted: 1, intermediate: 0, withoutUniqueid: 4, liveLocal: 3})
  })

  it('maps every 3.4 flag bit', () => {
    expect(legacyMbtypeToLetters(0)).toBe('e')
    expect(legacyMbtypeToLetters(1 | 2 | 8 | 16 | 256)).toBe('edmrzi')
    expect(legacyMbtypeToLetters(64)).toBe('a')
  })

  it('rejects a line that is neither format', () => {
    expect(() => parseDump(`${legacy}oops\n`)).toThrow(/not a mailbox line at line 6/)
    expect(() => parseDump('user.x\t0 default odd\n')).toThrow(UnexpectedOutputError)
  })
})

// ---- streaming and memory ----------------------------------------------------------------------

function* generatedDump(n: number): Generator<string> {
  yield '{'
  for (let i = 0; i < n; i++) {
    const name = `user.u${i}.Folder ${i % 7 === 0 ? '\\"q\\" é' : 'x'}`
    const remote = i % 3 === 0
    const obj =
      `{"name": "${name}", "mtime": "1700000000", "uidvalidity": "${i}", "createdmodseq": "1", "foldermodseq": "1", ` +
      `"mbtype": "${remote ? 'er' : i % 11 === 0 ? 'ed' : 'e'}", "partition": "default"${remote ? ', "server": "b2"' : ''}, ` +
      `"acl": {"u${i}": "lrswipkxtecdan", "cyrus": "lrswipkxtecdan"}${remote || i % 13 === 0 ? '' : `, "uniqueid": "${i.toString(16).padStart(32, '0')}"`}, "name_history": []}`
    yield `"${name}": ${obj}${i === n - 1 ? '' : ','}`
  }
  yield '}'
}

function expected(n: number) {
  const c = {total: n, local: 0, remote: 0, deleted: 0, intermediate: 0, withoutUniqueid: 0, liveLocal: 0}
  for (let i = 0; i < n; i++) {
    if (i % 3 === 0) c.remote++
    else {
      c.local++
      if (i % 13 === 0) c.withoutUniqueid++
      if (i % 11 === 0) c.deleted++
      else c.liveLocal++
    }
  }
  return c
}

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void
const heap = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

describe('streaming a 200,000-entry dump', () => {
  const N = 200_000

  it('counts without keeping entries: heap stays flat from 50k to 200k entries', () => {
    const counter = createDumpCounter()
    const samples: number[] = []
    let i = 0
    const before = heap()
    for (const line of generatedDump(N)) {
      counter.push(line)
      if (++i % 50_000 === 0) samples.push(heap())
    }
    const counts = counter.end()
    expect(counts).toEqual(expected(N))
    // Entries are about 500 bytes each once parsed: keeping 150k more would add ~75 MB.
    const growth = Math.max(...samples) - samples[0]!
    expect(growth).toBeLessThan(8 * 1024 * 1024)
    expect(Math.max(...samples) - before).toBeLessThan(16 * 1024 * 1024)
  })

  it('the same measurement does see entries that are kept', () => {
    const kept: MailboxEntry[] = []
    const parser = createDumpParser({onEntry: (e) => kept.push(e)})
    let i = 0
    let first = 0
    let last = 0
    for (const line of generatedDump(N)) {
      parser.push(line)
      if (++i === 50_000) first = heap()
    }
    parser.end()
    last = heap()
    expect(kept).toHaveLength(N)
    expect(last - first).toBeGreaterThan(30 * 1024 * 1024)
  })

  it('parseDumpLines yields entries from an async line source', async () => {
    async function* lines() {
      yield* generatedDump(20_000)
    }
    expect(await countEntries(parseDumpLines(lines()))).toEqual(expected(20_000))
  })
})
