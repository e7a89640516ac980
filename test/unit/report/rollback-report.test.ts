// The report of a rolled-back run (a real unified recovery stopped at its diff gate on the lab,
// then `recover-master --rollback`), and of a rollback that stopped part-way.
import {describe, expect, it} from 'vitest'
import {renderRunHtml} from '../../../src/report/run-html.js'
import {renderRunMarkdown} from '../../../src/report/run-markdown.js'
import {buildRunReport} from '../../../src/report/run-report.js'
import {gathered} from './fixtures.js'
import {lintMarkdown} from './markdownlint.js'

describe('report of a rolled-back run', () => {
  it('shows the rollback: consent, each unit, the files put back and what they replaced, the checks after', () => {
    const r = buildRunReport(gathered('recover-master-rolled-back'))
    expect(r.outcome).toBe('rolled back')
    expect(r.stop).toBeUndefined()
    const b = r.rollback!
    expect(b.completed).toBe(true)
    expect(b.consent?.by).toBe('--yes')
    expect(b.units.map((u) => `${u.id}@${u.host}:${u.status}`)).toEqual([
      'restore-set-aside-master-db@mupdate:done',
      'undo-stop-master@mupdate:skipped',
      'restore-disable-slaves@b1:done',
      'restore-disable-slaves@b2:done',
      'undo-disable-slaves@b1:skipped',
      'undo-disable-slaves@b2:skipped',
      'undo-lock@mupdate:done',
    ])
    expect(b.restored.map((f) => [f.host, f.path])).toEqual([
      ['mupdate', '/var/lib/cyrus/mailboxes.db'],
      ['b1', '/etc/cyrus.conf'],
      ['b2', '/etc/cyrus.conf'],
    ])
    expect(b.restored[0].replacedKeptAs).toMatch(/mailboxes\.db\.murderctl-\S+-restore-set-aside-master-db$/)
    expect(b.verified.every((v) => v.ok)).toBe(true)
    expect(b.verified.find((v) => v.check === 'entries')?.detail).toBe('40 entries, the restored copy holds 40')
    // The rollback's units are on the timeline, and its copies among the copies kept.
    expect(r.timeline.some((u) => u.step === 'restore-set-aside-master-db' && u.status === 'done')).toBe(true)
    expect(r.copies.some((c) => c.step === 'restore-set-aside-master-db')).toBe(true)
    const text = renderRunMarkdown(r)
    expect(text).toMatch(/## Rollback\n\nStarted \S+, ended \S+: \*\*rolled back and verified\*\* \(consent: --yes\)/)
    expect(lintMarkdown(text)).toEqual([])
    expect(renderRunHtml(r)).toMatch(/<h2 id="rollback">Rollback<\/h2>/)
  })

  it('a rollback that stopped part-way says where, and that --rollback goes on', () => {
    const g = gathered('recover-master-rolled-back')
    const end = g.events.findIndex((e) => e.event === 'rollback-end')
    const at = g.events[end].at
    g.events.splice(end, 1, {
      at,
      run: g.run,
      event: 'rollback-step',
      step: 'undo-lock',
      host: 'mupdate',
      data: {status: 'failed', error: 'host mupdate: connection refused'},
    })
    g.events.push({at, run: g.run, event: 'rollback-end', data: {completed: false, stoppedAt: 'undo-lock'}})
    const r = buildRunReport(g)
    expect(r.outcome).toBe('rollback stopped')
    expect(r.stop).toMatchObject({where: 'rollback unit undo-lock on mupdate', reason: 'host mupdate: connection refused'})
    expect(r.stop!.resume).toBe(`murderctl recover-master -i /tmp/murder-lab/inventory.yaml --rollback ${r.run}`)
    expect(r.rollback!.completed).toBe(false)
    expect(lintMarkdown(renderRunMarkdown(r))).toEqual([])
  })
})
