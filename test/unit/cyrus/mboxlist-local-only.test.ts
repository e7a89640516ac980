// The local-only list a unified backend makes on its host (LOCAL_ONLY_AWK, run here with the
// machine's awks) against the Node path (parseDump, then localOnlyLine): the same entries, each
// the same JSON value with its keys in the same order, or FALLBACK to the Node path.
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, describe, expect, it} from 'vitest'
import {LOCAL_ONLY_AWK, localOnlyLine, readLocalOnlyOutput} from '../../../src/cyrus/mboxlist-local-only.js'
import {parseDump, undumpDocument} from '../../../src/cyrus/mboxlist-dump.js'
import {AWKS, cyrusLine, dump, fixtures, part, tricky, unusual} from './dump-samples.js'

const dir = mkdtempSync(join(tmpdir(), 'murderctl-local-only-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

async function onHost(awk: string, text: string) {
  const [bin, ...pre] = awk.split(' ')
  const doc = join(dir, 'local.json')
  rmSync(doc, {force: true})
  const r = await execa(bin!, [...pre, LOCAL_ONLY_AWK], {input: text, env: {LC_ALL: 'C', MURDERCTL_DOC: doc, MURDERCTL_NAME: join(dir, 'name')}})
  const result = readLocalOnlyOutput(r.stdout)
  return {out: r.stdout, result, doc: result.fallback ? undefined : readFileSync(doc, 'utf8')}
}

/** The Node path's document, and how many of its entries got a stand-in uniqueid. */
function reference(text: string) {
  const lines = parseDump(text)
    .map(localOnlyLine)
    .filter((x) => x !== undefined)
  return {doc: undumpDocument(lines.map((x) => x.line)), live: lines.length, standins: lines.filter((x) => x.standin).length}
}

/** Each entry line as its JSON value, written again: equal means the same value, keys in the same order. */
const values = (doc: string) =>
  doc
    .slice(2, -3)
    .split(',\n')
    .filter((l) => l !== '')
    .map((l) => JSON.stringify(JSON.parse(`{${l}}`)))

async function expectSame(awk: string, text: string) {
  const want = reference(text)
  const got = await onHost(awk, text)
  expect(got.result).toEqual({fallback: false, live: want.live, withoutUniqueid: want.standins})
  // The whole document is what -u reads: one JSON object, the same as the Node path's.
  expect(JSON.stringify(JSON.parse(got.doc!))).toBe(JSON.stringify(JSON.parse(want.doc)))
  expect(values(got.doc!)).toEqual(values(want.doc))
  return got
}

/** Lines the awk takes: a stand-in's name must be plain ASCII text without escapes, its uniqueid absent, not empty (the others fall back). */
const hashable = (l: string) => {
  const e = parseDump(dump([l]))[0]!
  const text = JSON.stringify(e.name).slice(1, -1)
  return !localOnlyLine(e)?.standin || (/^[ -~]+$/.test(text) && !text.includes('\\') && !('uniqueid' in e))
}

const noUid = [
  cyrusLine({name: 'user.nouid', mbtype: 'e', partition: part, acl: {nouid: 'lrs'}}),
  cyrusLine({name: 'DELETED.user.nouid.5F0', mbtype: 'e', partition: part}),
  cyrusLine({name: 'user.nouid.Sp ace', mbtype: 'ei', partition: part, history: [{name: 'user.x', mbtype: 'e'}]}),
]

describe.each(AWKS)('LOCAL_ONLY_AWK under %s', (awk) => {
  it('keeps what the Node path keeps from every captured dump', async () => {
    for (const f of fixtures) await expectSame(awk, readFileSync(f, 'utf8'))
  })

  it('the same for awkward names, ACLs, flags and tombstones, in LF and CRLF', async () => {
    const text = dump(tricky.filter(hashable))
    expect(reference(text).live).toBeGreaterThan(10)
    await expectSame(awk, text)
    await expectSame(awk, text.replaceAll('\n', '\r\n'))
  })

  it('gives a local entry without uniqueid the Node path’s stand-in (sha256sum of its name)', async () => {
    const text = dump([...tricky.slice(0, 2), ...noUid])
    const got = await expectSame(awk, text)
    expect(got.result).toMatchObject({withoutUniqueid: 3})
    expect(got.doc).toMatch(/"uniqueid": "murderctlpush[0-9a-f]{16}"\}/)
  })

  it('an empty list is the Node path’s empty document', async () => {
    const got = await expectSame(
      awk,
      readFileSync(
        fixtures.find((f) => f.endsWith('dump-empty.json.txt'))!,
        'utf8',
      ),
    )
    expect(got.doc).toBe('{\n\n}\n')
  })

  it('falls back to the Node path for the whole host at any line it cannot read with certainty', async () => {
    const entry = (name: string, rest = '"mbtype": "e", "partition": "d", "acl": {}') => `"${name}": {"name": "${name}", ${rest}}`
    const cases = [
      // Another layout; a key whose text is not its name's.
      ...unusual.map((u) => dump([tricky[0]!, u])),
      dump([
        String.raw`"user.\u0061": {"name": "user.a", "mtime": "1", "uidvalidity": "1", "createdmodseq": "1", "foldermodseq": "1", "mbtype": "e", "partition": "default", "acl": {}, "uniqueid": "u", "name_history": []}`,
      ]),
      // A local entry without uniqueid whose name is not plain ASCII, or whose uniqueid is empty.
      dump([cyrusLine({name: 'user.bob.Ünï', mbtype: 'e', partition: part})]),
      ...tricky.filter((l) => !hashable(l)).map((l) => dump([tricky[0]!, l])),
      dump([cyrusLine({name: 'user.e', mbtype: 'e', partition: part, uniqueid: ''})]),
      // What the parser itself refuses: no separator, text after the end, truncated, legacy, junk.
      `{\n${entry('a')}\n${entry('b')}\n}\n`,
      `${dump([tricky[0]!])}extra\n`,
      `{\n${tricky[0]},\n`,
      'user.qyb\t0 default qyb\tlrswipkxtecdan\n',
      'Usage: ctl_mboxlist ...\n',
      `{\n${tricky[0]},\ngarbage\n}\n`,
      `{\n${tricky[0]!.replace('user.alice', 'user.al\u0001ice')}\n}\n`,
    ]
    for (const text of cases) {
      const got = await onHost(awk, text)
      expect(got.result.fallback, text).toBe(true)
    }
  })

  it('passes the producer’s status line through', async () => {
    const got = await onHost(awk, `${dump([tricky[0]!])}\nEXIT 0\n`)
    expect(got.out.split('\n')).toContain('EXIT 0')
    expect(got.result).toEqual({fallback: false, live: 1, withoutUniqueid: 0})
  })
})

describe('readLocalOnlyOutput', () => {
  it('refuses output that stopped early or holds a line it does not know', () => {
    expect(() => readLocalOnlyOutput('')).toThrow(/ended early/)
    expect(() => readLocalOnlyOutput('LOCAL\t3\t0\n')).toThrow(/ended early/)
    expect(() => readLocalOnlyOutput('LOCAL\t3\t0\nEND\nnoise\n')).toThrow(/should not/)
    expect(readLocalOnlyOutput('EXIT 0\nFALLBACK\t7\twhy\n')).toEqual({fallback: true, line: 7, why: 'why'})
  })
})
