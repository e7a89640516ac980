import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {UnexpectedOutputError} from '../../../src/errors.js'
import {classifyMupdateStderr, createWarnCounter, isEmptyPlan, parseMupdateWarn} from '../../../src/cyrus/mboxlist-warn.js'

// Real `ctl_mboxlist -m -w` stdout/stderr of Debian's Cyrus 3.6.1 (see test/fixtures/cyrus/README.md).
const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/cyrus/${name}`, import.meta.url), 'utf8')

describe('parseMupdateWarn', () => {
  it('first push of a backend: Force Activate for every local mailbox, odd names kept byte for byte', () => {
    const plan = parseMupdateWarn(fixture('mw-b1-first-push.stdout'))
    expect(plan.activate).toEqual([
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
    expect(plan.removeFromMupdate).toEqual([])
    expect(plan.removeRemoteFlag).toEqual([])
    expect(plan.removeLocal).toEqual([])
  })

  it('in sync: nothing to do', () => {
    const plan = parseMupdateWarn(fixture('mw-b1-in-sync.stdout'))
    expect(isEmptyPlan(plan)).toBe(true)
  })

  it('stale master: Remove from MUPDATE, Remove remote flag on, Force Activate', () => {
    const plan = parseMupdateWarn(fixture('mw-b1-stale-master.stdout'))
    expect(plan.removeFromMupdate).toHaveLength(8)
    expect(plan.removeFromMupdate).toContain('user.bob.Say "hi"')
    expect(plan.removeRemoteFlag).toEqual(['user.alice'])
    expect(plan.activate).toEqual(['user.newbox'])
    expect(plan.removeLocal).toEqual([])
  })

  it('standard-murder conflict: Remove Local Mailbox', () => {
    expect(parseMupdateWarn(fixture('mw-b2-conflict.stdout'))).toEqual({
      activate: ['user.zed'],
      removeFromMupdate: [],
      removeRemoteFlag: [],
      removeLocal: ['user.alice.Sent'],
    })
  })

  it('accepts CRLF and blank lines, rejects anything else', () => {
    expect(parseMupdateWarn('Force Activate: a b \r\n\r\n').activate).toEqual(['a b '])
    expect(() => parseMupdateWarn('Force Activate: a\nmupdate said: x\n')).toThrow(UnexpectedOutputError)
    expect(() => parseMupdateWarn('Force Activate: a\nmupdate said: x\n')).toThrow(/unexpected line 2: "mupdate said: x"/)
    expect(() => parseMupdateWarn('Force Activate: ')).toThrow(UnexpectedOutputError)
    expect(() => parseMupdateWarn('force activate: a')).toThrow(UnexpectedOutputError)
  })
})

describe('createWarnCounter (check: figures, not every name)', () => {
  const count = (text: string, keep?: number) => {
    const c = createWarnCounter(keep, {host: 'b1'})
    for (const l of text.split('\n')) c.push(l)
    return c.result()
  }

  it('counts each kind as parseMupdateWarn finds it, on every captured output', () => {
    for (const f of ['mw-b1-first-push.stdout', 'mw-b1-in-sync.stdout', 'mw-b1-stale-master.stdout', 'mw-b2-conflict.stdout']) {
      const plan = parseMupdateWarn(fixture(f))
      const got = count(fixture(f))
      expect(got.counts, f).toEqual(Object.fromEntries(Object.entries(plan).map(([k, v]) => [k, v.length])))
      expect(got.changes, f).toBe(Object.values(plan).reduce((n, v) => n + v.length, 0))
      for (const [k, v] of Object.entries(plan)) expect(got.examples[k as keyof typeof plan], f).toEqual(v.slice(0, 5))
    }
  })

  it('keeps only the first names of a long output', () => {
    const lines = Array.from({length: 100_000}, (_, i) => `Remove from MUPDATE: user.u${i}`).join('\n')
    const got = count(`${lines}\n`, 3)
    expect(got.counts.removeFromMupdate).toBe(100_000)
    expect(got.examples.removeFromMupdate).toEqual(['user.u0', 'user.u1', 'user.u2'])
  })

  it("leaves out the activations it is told to skip (a unified backend's remote entries under -a), and only those", () => {
    const c = createWarnCounter(5, {host: 'b1', skipActivate: (n) => n.startsWith('user.other')})
    for (const l of ['Force Activate: user.other', 'Force Activate: user.other.Sent', 'Force Activate: user.mine', 'Remove from MUPDATE: user.other.x'])
      c.push(l)
    expect(c.result()).toMatchObject({
      changes: 2,
      counts: {activate: 1, removeFromMupdate: 1, removeRemoteFlag: 0, removeLocal: 0},
      examples: {activate: ['user.mine'], removeFromMupdate: ['user.other.x']},
    })
  })

  it('refuses a line of no known kind, naming its line number', () => {
    expect(() => count('Force Activate: user.a\nsomething new: x\n')).toThrow(UnexpectedOutputError)
    expect(() => count('Force Activate: user.a\nsomething new: x\n')).toThrow(/line 2/)
  })
})

describe('classifyMupdateStderr', () => {
  it('recognises the real 3.6.1 failures', () => {
    expect(classifyMupdateStderr(fixture('mw-master-refused.stderr'))).toMatchObject({kind: 'connect', count: 1})
    expect(classifyMupdateStderr(fixture('mw-no-mupdate-server.stderr'))).toMatchObject({kind: 'no-mupdate-server'})
    expect(classifyMupdateStderr(fixture('mw-duplicate-option.stderr'))).toMatchObject({
      kind: 'duplicate-option',
      names: ['mupdate_server'],
      reason: expect.stringContaining("'mupdate_server' twice"),
    })
    const undump = classifyMupdateStderr(fixture('undump-master-dump.stderr'))!
    expect(undump.kind).toBe('missing-uniqueid')
    expect(undump.count).toBe(9)
    expect(undump.names).toContain('user.bob.back\\slash\ttab')
    expect(undump.reason).toContain('skipped 9 entries')
    expect(undump.hint).toContain("frontend's mailboxes.db")
    // The other -u warnings ("missing uidvalidity for ...") are not failures by themselves.
    expect(classifyMupdateStderr(fixture('undump-remote-entry.stderr'))).toMatchObject({kind: 'missing-uniqueid', count: 1, names: ['user.carol']})
  })

  it('recognises the other documented texts', () => {
    expect(classifyMupdateStderr("couldn't do LIST command on mupdate server\n")!.kind).toBe('list')
    const sort = classifyMupdateStderr('mupdate said: user.a b1!default\nmailboxes.db said: user.b\nfatal error: mupdate said not us before it said us\n')!
    expect(sort.kind).toBe('sort-order')
    expect(sort.line).toBe('fatal error: mupdate said not us before it said us')
    expect(classifyMupdateStderr("permanent failure storing 'user.a'\npermanent failure storing 'user.b'\n")).toMatchObject({
      kind: 'store',
      count: 2,
      names: ['user.a', 'user.b'],
      reason: expect.stringContaining('and 1 more'),
    })
  })

  it('puts a broken config first and returns undefined for nothing known', () => {
    const both = "couldn't connect to mupdate server\nfatal error: option 'x' was specified twice in config file\n"
    expect(classifyMupdateStderr(both)!.kind).toBe('duplicate-option')
    expect(classifyMupdateStderr('')).toBeUndefined()
    expect(classifyMupdateStderr('something else\n')).toBeUndefined()
  })
})
