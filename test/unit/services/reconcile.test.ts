// The pure parts of reconcile: which mailboxes a sync log names, where a deleted mailbox's mail
// goes, and what each mailbox needs (GUID missing, UID collision, flags).
import {describe, expect, it} from 'vitest'
import {parseSyncLog, planFingerprint, planMailbox, recoveryTarget} from '../../../src/services/reconcile.js'

const rec = (uid: number, guid: string, flags: string[] = [], internalDate = 1000 + uid) => ({
  uid,
  guid: guid.padEnd(40, '0'),
  flags,
  internalDate,
  size: 100 + uid,
  modseq: uid,
})

describe("parseSyncLog (Carter: the mailboxes of the old master's unreplayed log)", () => {
  it('takes mailbox names from APPEND/MAILBOX/UNMAILBOX lines and users from USER/SEEN/SUB lines, quoted or not', () => {
    const log = [
      'APPEND user.alice',
      'MAILBOX user.alice.Sent',
      'MAILBOX "user.alice.With Space"',
      'UNMAILBOX user.bob.Old',
      'SEEN carol user.carol',
      'USER dave',
      'SUB erin user.erin.Lists',
      'QUOTA user.alice',
      '',
    ].join('\n')
    expect(parseSyncLog(log)).toEqual({
      mailboxes: ['user.alice', 'user.alice.Sent', 'user.alice.With Space', 'user.bob.Old', 'user.carol', 'user.erin.Lists'],
      users: ['carol', 'dave', 'erin'],
    })
  })
})

describe('recoveryTarget', () => {
  it("keeps the path under the owner's recovery folder; the INBOX itself becomes <folder>.INBOX", () => {
    expect(recoveryTarget('user.alice.Trash', 'Recovered-2026-11-28')).toBe('user.alice.Recovered-2026-11-28.Trash')
    expect(recoveryTarget('user.alice.A.B', 'R')).toBe('user.alice.R.A.B')
    expect(recoveryTarget('user.alice', 'R')).toBe('user.alice.R.INBOX')
    expect(recoveryTarget('example.com!user.alice.X', 'R')).toBe('example.com!user.alice.R.X')
    expect(recoveryTarget('shared.team', 'R')).toBe('R.shared.team')
    expect(recoveryTarget('user/alice/Trash', 'R', '/')).toBe('user/alice/R/Trash')
  })
})

describe('planMailbox', () => {
  const base = {source: 'user.alice', why: ['sync-log'], owner: 'alice', targetName: 'user.alice', action: 'reinject' as const, cutoffLastUid: 3}
  it('plans the GUIDs missing on the new side; a UID holding another GUID there is a collision; flags are compared', () => {
    const old = [rec(1, 'a'), rec(2, 'b', ['\\Seen']), rec(4, 'c', ['\\Seen', '\\Recent']), rec(5, 'd')]
    const nu = [rec(1, 'a'), rec(2, 'b'), rec(4, 'x'), rec(5, 'y')]
    const p = planMailbox({...base, old, target: {name: 'user.alice', messages: nu}})
    expect(p.messages.map((m) => [m.uid, m.guid[0], m.uidCollision, m.beforeCutoff])).toEqual([
      [4, 'c', true, false],
      [5, 'd', true, false],
    ])
    expect(p.messages[0]!.flags).toEqual(['\\Seen'])
    expect(p.flagDifferences).toEqual([{guid: 'b'.padEnd(40, '0'), old: ['\\Seen'], new: []}])
    expect(p.oldGuids).toHaveLength(4)
  })
  it('a GUID already in the mailbox under another UID is not appended again (idempotent)', () => {
    const p = planMailbox({...base, old: [rec(4, 'c')], target: {name: 'user.alice', messages: [rec(9, 'c')]}})
    expect(p.messages).toEqual([])
  })
  it('marks a missing message the new side had a UID for at the cutoff (it may have been expunged there)', () => {
    const p = planMailbox({...base, old: [rec(2, 'b')], target: {name: 'user.alice', messages: []}})
    expect(p.messages[0]!.beforeCutoff).toBe(true)
  })
  it('a mailbox absent on the new side: every message, and the fingerprint changes with the plan', () => {
    const a = planMailbox({...base, action: 'recreate', old: [rec(1, 'a'), rec(2, 'b')], target: null})
    expect(a.messages.map((m) => m.uid)).toEqual([1, 2])
    expect(planFingerprint([a])).not.toBe(planFingerprint([{...a, messages: a.messages.slice(1)}]))
  })
})

describe('a 3.6 deleted entry in a dump', () => {
  it("parses without a partition (the name's tombstone after DELETE), while a live entry still needs one", async () => {
    const {parseDump} = await import('../../../src/cyrus/mboxlist-dump.js')
    const ed =
      '{\n"user.alice.Trash": {"name": "user.alice.Trash", "mtime": "1795886897", "uidvalidity": "1795886873", "createdmodseq": "1", "foldermodseq": "3", "mbtype": "ed", "acl": {}, "uniqueid": "vkjdpej9z7tklpnxk0oh986q", "name_history": []}\n}\n'
    expect(parseDump(ed)[0]).toMatchObject({name: 'user.alice.Trash', mbtype: 'ed', partition: ''})
    expect(() => parseDump('{\n"a": {"name": "a", "mbtype": "e", "acl": {}}\n}\n')).toThrow()
  })
})
