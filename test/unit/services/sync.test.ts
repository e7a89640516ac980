// sync-backends' decisions on outputs captured from a real Cyrus 3.6.1 (test/fixtures/cyrus):
// how each backend's `-m -w` and dump classify against the master's list, what a real run
// refuses, and when a reviewed plan counts as stale. No SSH.
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {isRemote, localEntry, parseDump, undumpDocument, undumpLine} from '../../../src/cyrus/mboxlist-dump.js'
import {parseMupdateWarn} from '../../../src/cyrus/mboxlist-warn.js'
import {classifyBackend, needsPush, planDifferences, refusalOf, type SyncPlan} from '../../../src/engine/actions/sync.js'
import type {EngineHooks} from '../../../src/engine/engine.js'
import {syncBackends} from '../../../src/services/sync.js'
import {fakeMurder, FakeShell} from '../fakes/shell.js'

const fx = (name: string) => readFileSync(join(import.meta.dirname, '../../fixtures/cyrus', name), 'utf8')
const locations = (dump: string) => new Map(parseDump(dump).map((e) => [e.name, isRemote(e) && e.server ? `${e.server}!${e.partition}` : e.partition]))
const NONE = {localAuthoritative: false, allowLocalDeletes: false, skipFailed: false}
const b1 = {name: 'b1', servername: 'b1'}
const b2 = {name: 'b2', servername: 'b2'}
/** b2 as captured for mw-b2-conflict: a local user.alice.Sent (the master has it on b1) and user.zed. */
const b2Entries = [localEntry('user.alice.Sent', 'alice', {uniqueid: 'u1'}), localEntry('user.zed', 'zed', {uniqueid: 'u2'})]

const planOf = (mode: 'standard' | 'unified', backends: SyncPlan['backends']): SyncPlan => ({
  kind: 'murderctl-sync-plan',
  version: 1,
  murder: 'lab',
  mode,
  createdAt: '2026-11-28T00:00:00Z',
  master: {host: 'mm', entries: 9, fingerprint: 'f'.repeat(64)},
  backends,
})

describe('sync-backends: a backend classified against the master', () => {
  it('first push to an empty master: every live local mailbox to activate, no conflict, nothing refused', () => {
    const d = classifyBackend(
      b1,
      parseMupdateWarn(fx('mw-b1-first-push.stdout')),
      parseDump(fx('dump-backend-b1.json.txt')),
      locations(fx('dump-empty.json.txt')),
    )
    // The dump's remote user.dave and its delayed-deleted entry are not local mailboxes.
    expect(d).toMatchObject({ok: true, localMailboxes: 8, conflicts: []})
    expect(d.warn!.activate).toHaveLength(9)
    expect(d.warn!.activate).toContain('user.bob.back\\slash\ttab')
    expect(needsPush(d)).toBe(true)
    expect(refusalOf(planOf('standard', [d]), NONE)).toBeUndefined()
  })

  it('in sync: -m -w empty and the master places every local mailbox on this backend', () => {
    const d = classifyBackend(
      b1,
      parseMupdateWarn(fx('mw-b1-in-sync.stdout')),
      parseDump(fx('dump-backend-b1.json.txt')),
      locations(fx('dump-master.json.txt')),
    )
    expect(d.conflicts).toEqual([])
    expect(needsPush(d)).toBe(false)
  })

  it('a stale master: removals from MUPDATE, a remote flag to clear, a new mailbox; all pushable', () => {
    const d = classifyBackend(b1, parseMupdateWarn(fx('mw-b1-stale-master.stdout')), [], locations(fx('dump-master.json.txt')))
    expect(d.warn).toMatchObject({
      removeFromMupdate: expect.arrayContaining(['user.dave', 'shared.news']),
      removeRemoteFlag: ['user.alice'],
      activate: ['user.newbox'],
    })
    expect(d.warn!.removeFromMupdate).toHaveLength(8)
    expect(needsPush(d)).toBe(true)
    expect(refusalOf(planOf('standard', [d]), NONE)).toBeUndefined()
  })

  it('standard murder: a local mailbox the master has elsewhere is a conflict and a local deletion, refused without a choice', () => {
    const d = classifyBackend(b2, parseMupdateWarn(fx('mw-b2-conflict.stdout')), b2Entries, locations(fx('dump-master.json.txt')))
    expect(d.conflicts).toEqual([{mailbox: 'user.alice.Sent', masterSays: 'b1!default'}])
    expect(d.warn).toMatchObject({removeLocal: ['user.alice.Sent'], activate: ['user.zed']})
    const refused = refusalOf(planOf('standard', [d]), NONE)
    expect(refused).toMatchObject({code: 'refused', host: 'b2'})
    expect(refused!.message).toMatch(/would delete 1 local mailboxes \(b2:user\.alice\.Sent\)/)
    expect(refused!.hint).toMatch(/--local-authoritative.*--allow-local-deletes/)
    expect(refusalOf(planOf('standard', [d]), {...NONE, localAuthoritative: true})).toBeUndefined()
    expect(refusalOf(planOf('standard', [d]), {...NONE, allowLocalDeletes: true})).toBeUndefined()
  })

  it('unified murder: -w prints nothing for the conflict, murderctl finds it; refused unless --local-authoritative', () => {
    const d = classifyBackend(b2, parseMupdateWarn(''), b2Entries, locations(fx('dump-master.json.txt')))
    expect(d.conflicts).toHaveLength(1)
    expect(needsPush(d)).toBe(true)
    expect(refusalOf(planOf('unified', [d]), NONE)?.message).toMatch(
      /b2 has 1 local mailboxes the master places elsewhere: ctl_mboxlist -m would skip them silently/,
    )
    // --allow-local-deletes does not cover it: -m would not delete, it would skip.
    expect(refusalOf(planOf('unified', [d]), {...NONE, allowLocalDeletes: true})).toBeDefined()
    expect(refusalOf(planOf('unified', [d]), {...NONE, localAuthoritative: true})).toBeUndefined()
  })

  it('a backend that failed to diff stops the run with its own exit code, unless --skip-failed', () => {
    const ok = classifyBackend(b1, parseMupdateWarn(fx('mw-b1-first-push.stdout')), [], new Map())
    const failed = {backend: 'b2', servername: 'b2', ok: false, conflicts: [], localMailboxes: 0, error: {message: 'cannot connect', code: 'unreachable'}}
    expect(refusalOf(planOf('standard', [ok, failed]), NONE)).toMatchObject({
      code: 'unreachable',
      host: 'b2',
      message: expect.stringMatching(/nothing was applied anywhere/),
    })
    expect(refusalOf(planOf('standard', [ok, {...failed, error: {message: 'key', code: 'hostKey'}}]), NONE)?.code).toBe('hostKey')
    expect(refusalOf(planOf('standard', [ok, failed]), {...NONE, skipFailed: true})).toBeUndefined()
  })
})

describe('sync-backends: a reviewed plan against a fresh one', () => {
  const d1 = classifyBackend(b1, parseMupdateWarn(fx('mw-b1-first-push.stdout')), [], new Map(), 'a'.repeat(64))
  const d2 = classifyBackend(b2, parseMupdateWarn(fx('mw-b2-conflict.stdout')), b2Entries, locations(fx('dump-master.json.txt')), 'b'.repeat(64))
  const reviewed = planOf('standard', [d1, d2])

  it('the same content made later is not stale', () => {
    expect(planDifferences(reviewed, {...reviewed, createdAt: '2026-11-29T00:00:00Z'})).toEqual([])
  })

  it('names what differs: the master, an edited conflict list, a changed fingerprint', () => {
    expect(planDifferences(reviewed, {...reviewed, master: {...reviewed.master, fingerprint: '0'.repeat(64)}})).toEqual(['the master mm'])
    expect(planDifferences({...reviewed, backends: [d1, {...d2, conflicts: []}]}, reviewed)).toEqual(['b2'])
    expect(planDifferences(reviewed, {...reviewed, backends: [{...d1, fingerprint: 'c'.repeat(64)}, d2]})).toEqual(['b1'])
  })

  it('on resume, backends already pushed in this run (and so the master) are not compared', () => {
    const after = {...reviewed, master: {...reviewed.master, entries: 10}, backends: [{...d1, warn: parseMupdateWarn('')}, d2]}
    expect(planDifferences(reviewed, after)).toEqual(['the master mm', 'b1'])
    expect(planDifferences(reviewed, after, new Set(['b1']))).toEqual([])
  })
})

describe('sync-backends through the engine, on a fake pool answering with the captured outputs', () => {
  const shell = new FakeShell((host, command) => {
    if (command.includes('murderctl-recovery.lock')) return {exitCode: 3} // no lock held
    if (command.endsWith('ctl_mboxlist -m -w')) return {stdout: fx(host === 'b1' ? 'mw-b1-first-push.stdout' : 'mw-b2-conflict.stdout')}
    if (command.endsWith('ctl_mboxlist -d'))
      return {
        stdout:
          host === 'mupdate'
            ? fx('dump-master.json.txt')
            : host === 'b1'
              ? fx('dump-backend-b1.json.txt')
              : undumpDocument(b2Entries.map((e) => undumpLine(e))),
      }
    return {}
  })
  const ctx = fakeMurder(shell, mkdtempSync(join(tmpdir(), 'murderctl-sync-')))
  const lines: string[] = []
  const hooks: EngineHooks = {
    progress: (l) => lines.push(l),
    consent: async () => true,
    confirm: async () => true,
    consentBy: '--yes',
  }

  it('a dry run diffs every backend, keeps the plan, says what a real run would refuse, and sends nothing that changes a host', async () => {
    const r = await syncBackends(ctx, {localAuthoritative: false, allowLocalDeletes: false, skipFailed: false, dryRun: true}, hooks)
    expect(r.plan!.backends.map((b) => [b.backend, b.ok, b.warn?.activate.length, b.conflicts.length])).toEqual([
      ['b1', true, 9, 0],
      ['b2', true, 1, 1],
    ])
    expect(r.wouldRefuse).toMatch(/would delete 1 local mailboxes \(b2:user\.alice\.Sent\)/)
    expect(JSON.parse(readFileSync(r.planPath!, 'utf8'))).toEqual(r.plan)
    // The steps a real run would take: lock, the copies, the push on both, unlock.
    expect(r.steps.map((s) => `${s.step}:${s.hosts.map((h) => h.host).join(',')}`)).toEqual([
      'lock:mupdate',
      'save-master-db:mupdate',
      'save-backend-dbs:b1,b2',
      'push:b1,b2',
      'unlock:mupdate',
    ])
    expect(lines.join('\n')).toMatch(/done b1: 9 changes, 0 conflicts \(8 local mailboxes\)/)
    // Read-only: dumps, diffs, the lock looked at; no mkdir, no cp, no push.
    expect(shell.sent.filter((c) => /mkdir|cp -n|mv -n|ctl_mboxlist -m$|ctl_mboxlist -m -a/.test(c.command))).toEqual([])
  })
})
