import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import {describe, expect, it} from 'vitest'
import {parseSyncErrors, syncLogScript} from '../../../src/services/audit.js'
import {imapDate, ownerView} from '../../../src/imap/mailbox-name.js'

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/cyrus/${name}`, import.meta.url), 'utf8')

describe('parseSyncErrors', () => {
  it('one event per mismatch although Cyrus logs it twice; other lines ignored', () => {
    const events = parseSyncErrors('b1', fixture('syslog-guid-mismatch.txt'))
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({
      host: 'b1',
      mailbox: 'user.alice',
      uid: expect.any(Number),
      rguid: expect.stringMatching(/^[0-9a-f]{40}$/),
      mguid: expect.stringMatching(/^[0-9a-f]{40}$/),
    })
    expect(events[0].time).toMatch(/^\d{4}-\d\d-\d\dT/)
  })

  it('reads the classic syslog timestamp too', () => {
    const line =
      'Nov 28 16:27:42 b1 cyrus/sync_client[1]: SYNCERROR: guid mismatch: mailbox=<example.com!user.bob.Sent> uid=<12> rguid=<aa> mguid=<bb> func=<compare_one_record>'
    expect(parseSyncErrors('b1', line)).toEqual([
      {host: 'b1', time: 'Nov 28 16:27:42', mailbox: 'example.com!user.bob.Sent', uid: 12, rguid: 'aa', mguid: 'bb'},
    ])
  })
})

describe('repair helpers', () => {
  it("ownerView: the owner and the owner's name for a mailbox, in each namespace setting", () => {
    const conf = (o: Record<string, string> = {}) => new Map(Object.entries(o))
    expect(ownerView('user.alice', conf())).toEqual({owner: 'alice', name: 'INBOX'})
    expect(ownerView('user.alice.Sent.2026', conf())).toEqual({owner: 'alice', name: 'INBOX.Sent.2026'})
    expect(ownerView('user.alice.Sent', conf({altnamespace: 'yes'}))).toEqual({owner: 'alice', name: 'Sent'})
    expect(ownerView('user/alice/Sent', conf({unixhierarchysep: 'yes'}))).toEqual({owner: 'alice', name: 'INBOX/Sent'})
    expect(ownerView('example.com!user.bob', conf())).toEqual({owner: 'bob@example.com', name: 'INBOX'})
    expect(ownerView('shared.news', conf())).toEqual({owner: null, name: 'shared.news'})
  })

  it('imapDate: RFC 3501 date-time in UTC', () => {
    expect(imapDate(1795883255)).toBe('28-Nov-2026 16:27:35 +0000')
    expect(imapDate(0)).toBe('01-Jan-1970 00:00:00 +0000')
  })
})

describe("the syslog read: all of it, or the cron check's window at its end", () => {
  const line = (host: string, mailbox: string) =>
    `2026-11-29T04:00:00.000000+00:00 vm lab-${host}/sync_client[1]: SYNCERROR: guid mismatch: mailbox=<${mailbox}> uid=<2> rguid=<aa> mguid=<bb> func=<compare_one_record>`
  const log = join(mkdtempSync(join(tmpdir(), 'murderctl-syslog-')), 'mail.log')
  // An old event, 100 KiB of other lines, then a recent event of this host and one of another.
  const noise = Array.from({length: 1000}, (_, i) => `2026-11-29T03:00:00.000000+00:00 vm lab-b1/imap[9]: login ${i} ${'x'.repeat(80)}`).join('\n')
  writeFileSync(log, [line('b1', 'user.old'), noise, line('b1', 'user.new'), line('b2', 'user.other'), ''].join('\n'))
  const read = async (bytes?: number) => {
    const r = await execa('sh', ['-c', syncLogScript(log, 'lab-b1', bytes)])
    return parseSyncErrors('b1', r.stdout).map((e) => e.mailbox)
  }

  it("reads the whole file without a window, this host's lines only", async () => {
    expect(await read()).toEqual(['user.old', 'user.new'])
  })

  it('reads only the window at the end, its cut first line left out', async () => {
    expect(await read(4096)).toEqual(['user.new'])
    // A window cutting into the recent event's line drops it rather than misread it.
    expect(await read(line('b1', 'user.new').length + line('b2', 'user.other').length)).toEqual([])
  })

  it('reads a file smaller than the window whole, first line included', async () => {
    expect(await read(10 * 1024 * 1024)).toEqual(['user.old', 'user.new'])
  })

  it('says NOLOG for a file it cannot read', async () => {
    expect((await execa('sh', ['-c', syncLogScript(`${log}.missing`, undefined, 4096)])).stdout).toBe('NOLOG')
  })
})
