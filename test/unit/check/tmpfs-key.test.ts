import {describe, expect, it} from 'vitest'
import {CheckResult} from '../../../src/check/model.js'
import {tmpfsKeyCheck} from '../../../src/check/tmpfs-key.js'
import {memoryDbRun, memoryDirs} from '../../../src/host/memory-db.js'

const RUN = '20261128T193000Z-recover-master-ab12'

describe('tmpfs-key', () => {
  it("knows a run's in-memory list by its path, and nothing else", () => {
    expect(memoryDbRun(`${memoryDirs(RUN).tmpfs}/mailboxes.db`)).toBe(RUN)
    expect(memoryDbRun(`${memoryDirs(RUN).shm}/mailboxes.db`)).toBe(RUN)
    for (const p of [undefined, '/var/lib/cyrus/mailboxes.db', '/dev/shm/mailboxes.db', `/srv/murderctl-tmpfs-${RUN}`]) expect(memoryDbRun(p)).toBeNull()
  })

  it('is CRITICAL on a host whose imapd.conf still names one, with the resume as the fix', () => {
    const r = tmpfsKeyCheck(
      [
        {host: 'mupdate', imapdConf: '/etc/imapd.conf', dbPath: `${memoryDirs(RUN).tmpfs}/mailboxes.db`, read: true},
        {host: 'b1', imapdConf: '/etc/imapd.conf', read: true},
      ],
      'mupdate',
    )
    expect(r).toHaveLength(1)
    expect(r[0]).toMatchObject({name: 'tmpfs-key', host: 'mupdate', state: 'CRITICAL', fix: `murderctl recover-master --resume ${RUN}`})
    expect(CheckResult.parse(r[0])).toBeTruthy()
  })

  it('is OK when no host has one (an operator path of their own is not flagged), UNKNOWN when the master cannot be read', () => {
    const ok = tmpfsKeyCheck([{host: 'mupdate', imapdConf: '/etc/imapd.conf', dbPath: '/srv/cyrus/mailboxes.db', read: true}], 'mupdate')
    expect(ok).toEqual([expect.objectContaining({state: 'OK', host: 'mupdate'})])
    expect(tmpfsKeyCheck([{host: 'mupdate', imapdConf: '/etc/imapd.conf', read: false}], 'mupdate')[0].state).toBe('UNKNOWN')
  })
})
