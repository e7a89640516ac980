// verify-murder in two parts (a standard rebuild checks the backends and the master before the
// frontends start, then the frontends): which hosts each part asks, and when the master's count
// from the first part stands for the second. Hosts answer with the lab's captured outputs
// through the fake shell; the lab suite runs the playbooks for real.
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {verifyMurderAction} from '../../../src/engine/actions/verify.js'
import {checkCondition} from '../../../src/engine/conditions.js'
import {newRunContext, type RunContext} from '../../../src/engine/context.js'
import {Journal} from '../../../src/engine/journal.js'
import {Step} from '../../../src/engine/schema.js'
import {fakeMurder, FakeShell} from '../fakes/shell.js'

const fx = (name: string) => readFileSync(join(import.meta.dirname, '../../fixtures/lab', name), 'utf8')
const masterDump = fx('dump-mupdate.txt')
// b2's own list: the master's entries placed on b2, as local entries.
const b2Dump = `{\n${masterDump
  .split('\n')
  .filter((l) => l.includes('"server": "b2"'))
  .map((l) => l.replace(', "server": "b2"', '').replace('"mbtype": "er"', '"mbtype": "e"'))
  .join('\n')
  .replace(/,$/, '')}\n}\n`

function murder(sums: Record<string, string>, fe1Dump = fx('dump-fe1.txt')) {
  const dumps: Record<string, string> = {mupdate: masterDump, fe1: fe1Dump, b1: fx('dump-b1.txt'), b2: b2Dump}
  const shell = new FakeShell((host, command) => {
    if (command.startsWith('cat -- /etc/imapd.conf')) return {stdout: fx(`imapd.conf-${host === 'mupdate' ? 'mupdate' : host.startsWith('fe') ? 'fe1' : 'b1'}`)}
    if (command.includes('sha256sum')) return {stdout: `${sums[host]}  /var/lib/cyrus/mailboxes.db\n`}
    if (command.includes('ctl_mboxlist -d')) return {stdout: dumps[host]}
    if (command.includes('ctl_mboxlist -m -w')) return {stdout: ''}
    if (command.includes('pgrep -P')) return {stdout: 'connected\n'}
    return {}
  })
  const ctx = fakeMurder(shell, mkdtempSync(join(tmpdir(), 'verify-')))
  return {ctx, shell, rc: newRunContext(ctx, new Journal(ctx.inv.stateDir, 'run-1'), {options: {}}) as RunContext}
}

const step = (id: string, scope: string) => Step.parse({id, title: id, hosts: 'none', action: 'verify-murder', params: {scope}})
const run = (rc: RunContext, id: string, scope: 'all' | 'backends' | 'slaves') =>
  verifyMurderAction.run(rc, step(id, scope), verifyMurderAction.params.parse({scope}), undefined) as Promise<Record<string, unknown>>
const sent = (shell: FakeShell, from: number) => shell.sent.slice(from)
const dumped = (shell: FakeShell, from: number) =>
  sent(shell, from)
    .filter((c) => c.command.includes('ctl_mboxlist -d'))
    .map((c) => c.host)
    .sort()

describe('verify-murder in two parts', () => {
  const same = {mupdate: 'a'.repeat(64), fe1: 'a'.repeat(64), b1: 'b'.repeat(64), b2: 'c'.repeat(64)}

  it('backends: asks no slave, checks every -m -w and counts the master; slaves: the count stands while the master keeps its checksum', async () => {
    const {shell, rc} = murder(same)
    const first = await run(rc, 'verify-backends', 'backends')
    expect(first).toMatchObject({
      scope: 'backends',
      master: 40,
      unionOfBackendsLocal: 40,
      masterRead: 'count',
      backendsMw: [
        {host: 'b1', changes: 0},
        {host: 'b2', changes: 0},
      ],
    })
    expect(first.slaves).toBeUndefined()
    expect(shell.sent.filter((c) => c.host === 'fe1')).toEqual([])
    const mark = shell.sent.length
    const second = await run(rc, 'verify', 'slaves')
    expect(second).toMatchObject({scope: 'slaves', master: 40, masterRead: 'checksum', slaves: [{host: 'fe1', entries: 40, connected: true, sameBytes: true}]})
    expect(second.backendsMw).toBeUndefined()
    // No list read again, no -m -w, no backend asked at all.
    expect(dumped(shell, mark)).toEqual([])
    expect(sent(shell, mark).filter((c) => c.command.includes('-m -w') || c.host.startsWith('b'))).toEqual([])
  })

  it('slaves: the master counted again when its mailboxes.db changed since', async () => {
    const m = murder(same)
    await run(m.rc, 'verify-backends', 'backends')
    const sums = same as Record<string, string>
    sums.mupdate = sums.fe1 = 'd'.repeat(64)
    const mark = m.shell.sent.length
    expect(await run(m.rc, 'verify', 'slaves')).toMatchObject({masterRead: 'count', master: 40})
    expect(dumped(m.shell, mark)).toEqual(['mupdate'])
  })

  it('all (the default): both parts in one step, as the other playbooks run it', async () => {
    const {shell, rc} = murder(same)
    expect(await run(rc, 'verify', 'all')).toMatchObject({scope: 'all', master: 40, masterRead: 'count', slaves: [{host: 'fe1', sameBytes: true}]})
    expect(shell.sent.some((c) => c.host === 'fe1')).toBe(true)
    expect(verifyMurderAction.params.parse({})).toEqual({scope: 'all'})
  })
})

// The push's post-condition (-m -w empty) read between two checksums of the backend's
// mailboxes.db and the master's stands for the verify while both keep them: the master's list
// copied from memory to its disk has the same bytes, so Cyrus would answer the same.
describe("verify: the push's empty -m -w stands while both lists keep their checksums", () => {
  const sums = () => ({mupdate: 'a'.repeat(64), fe1: 'a'.repeat(64), b1: 'b'.repeat(64), b2: 'c'.repeat(64)})
  const mwSent = (shell: FakeShell, from: number) =>
    sent(shell, from)
      .filter((c) => c.command.includes('-m -w'))
      .map((c) => c.host)
      .sort()
  const hostOf = (rc: RunContext, name: string) => rc.murder.inv.hosts.find((h) => h.name === name)!

  it('unchanged: no -m -w asked again, each backend read "checksum"; the master still counted', async () => {
    const {shell, rc} = murder(sums())
    for (const b of ['b1', 'b2']) expect((await checkCondition(rc, 'mw-empty', hostOf(rc, b))).ok).toBe(true)
    const mark = shell.sent.length
    const v = await run(rc, 'verify-backends', 'backends')
    expect(v).toMatchObject({
      masterRead: 'count',
      backendsMw: [
        {host: 'b1', changes: 0, read: 'checksum'},
        {host: 'b2', changes: 0, read: 'checksum'},
      ],
    })
    expect(mwSent(shell, mark)).toEqual([])
    // Read once each: the backends' lists (the union) and the master's count.
    expect(dumped(shell, mark)).toEqual(['b1', 'b2', 'mupdate'])
  })

  /** Both backends' post-condition read, then `change` to the checksums, then verify-backends: its figures and the backends it asked. */
  async function verifyAfter(change: (s: ReturnType<typeof sums>) => void) {
    const s = sums()
    const {shell, rc} = murder(s)
    for (const b of ['b1', 'b2']) await checkCondition(rc, 'mw-empty', hostOf(rc, b))
    change(s)
    const mark = shell.sent.length
    const v = await run(rc, 'verify-backends', 'backends')
    return {v, asked: mwSent(shell, mark)}
  }

  it("a backend's mailboxes.db changed since: that backend asked again", async () => {
    const {v, asked} = await verifyAfter((s) => (s.b2 = 'e'.repeat(64)))
    expect(v.backendsMw).toEqual([
      {host: 'b1', changes: 0, read: 'checksum'},
      {host: 'b2', changes: 0, read: 'mw'},
    ])
    expect(asked).toEqual(['b2'])
  })

  it("the master's mailboxes.db changed since (another push, a write): every backend asked again", async () => {
    expect((await verifyAfter((s) => (s.mupdate = 'f'.repeat(64)))).asked).toEqual(['b1', 'b2'])
  })

  it('a checksum that moved while the -m -w was read: not kept', async () => {
    const s = sums()
    const {shell, rc} = murder(s)
    // The master's list changes while b1's -m -w is read: its checksum before and after differ.
    let reads = 0
    Object.defineProperty(s, 'mupdate', {get: () => (reads++ === 0 ? 'a' : 'd').repeat(64)})
    await checkCondition(rc, 'mw-empty', hostOf(rc, 'b1'))
    const mark = shell.sent.length
    await run(rc, 'verify-backends', 'backends')
    expect(mwSent(shell, mark)).toEqual(['b1', 'b2'])
  })

  it("a unified verify takes only the -a check about the backend's own mailboxes, not a plain one", async () => {
    const {shell, rc} = murder(sums())
    for (const b of ['b1', 'b2']) await checkCondition(rc, 'mw-empty', hostOf(rc, b))
    ;(rc.murder.inv as {mode: string}).mode = 'unified'
    const mark = shell.sent.length
    await run(rc, 'verify-backends', 'backends').catch(() => undefined)
    expect(mwSent(shell, mark)).toEqual(['b1', 'b2'])
  })
})
