// The report model and its Markdown/HTML renderers, on journals captured from real lab runs.
import {describe, expect, it} from 'vitest'
import {type LooseEvent} from '../../../src/services/report.js'
import {renderRunHtml} from '../../../src/report/run-html.js'
import {renderRunMarkdown} from '../../../src/report/run-markdown.js'
import {buildRunReport, runLine} from '../../../src/report/run-report.js'
import {html, md, mdCode, mdFence} from '../../../src/report/escape.js'
import {FIXTURES, gathered} from './fixtures.js'
import {lintMarkdown} from './markdownlint.js'

const WEIRD = ['user.zoe.<script>alert(1)</script>', 'user.zoe.R&D "quoted"', 'user.zoe.a|b*c_[x](y)`q`']

describe('run report model', () => {
  it('a completed recover-master: outcome, every step per host, consent, diff, copies, figures', () => {
    const r = buildRunReport(gathered('recover-master-completed'))
    expect(r).toMatchObject({command: 'recover-master', murder: 'lab', operator: 'not recorded', outcome: 'completed'})
    expect(r.stop).toBeUndefined()
    // The run was resumed twice: each attempt is on the timeline, the failed ones too.
    const hosts = new Set(r.timeline.map((u) => u.host))
    expect([...hosts].sort()).toEqual(['b1', 'b2', 'fe1', 'fe2', 'mupdate', null].sort())
    expect(
      r.timeline
        .filter((u) => u.step === 'diff' && u.status === 'failed')
        .map((u) => u.host)
        .sort(),
    ).toEqual(['b1', 'b2'])
    expect(r.timeline.filter((u) => u.step === 'push').every((u) => u.status === 'done' && u.end > u.start)).toBe(true)
    expect(r.timeline.find((u) => u.step === 'stop-master')).toMatchObject({status: 'skipped'})
    expect(r.consents).toEqual([{at: expect.any(String), step: 'diff', gate: undefined, by: 'not recorded', who: undefined}])
    expect(r.diffs).toHaveLength(1)
    expect(r.diffs[0]).toMatchObject({step: 'diff', total: 43, pushed: true})
    expect(r.diffs[0].targets.find((t) => t.target === 'b1')!.kinds[0].items).toEqual(expect.arrayContaining(WEIRD))
    expect(r.copies.map((c) => `${c.host}:${c.moved ? 'moved' : 'copied'}`).sort()).toEqual([
      'b1:copied',
      'b2:copied',
      'fe1:moved',
      'fe2:moved',
      'mupdate:copied',
    ])
    expect(r.copies.every((c) => /^[0-9a-f]{64}$/.test(c.sha256!) && c.now === 'unchecked')).toBe(true)
    const verify = r.figures.find((f) => f.step === 'verify')!
    expect(Object.fromEntries(verify.rows)).toMatchObject({
      master: '43',
      unionOfBackendsLocal: '43',
      'slaves[fe1].entries': '43',
      'backendsMw[b1].changes': '0',
    })
    expect(r.commands.some((c) => c.command.endsWith('ctl_mboxlist -m') && c.exitCode === 0)).toBe(true)
  })

  it('a run stopped at the diff without consent: where, and the resume and rollback commands', () => {
    const r = buildRunReport(gathered('recover-master-stopped-at-diff'))
    expect(r.outcome).toBe('awaiting consent')
    expect(r.consents).toEqual([])
    expect(r.diffs[0]).toMatchObject({step: 'diff', total: 43, pushed: false})
    expect(r.stop).toMatchObject({
      where: 'after step diff',
      resume: `murderctl recover-master -i /tmp/murder-lab/inventory.yaml --resume ${r.run} --yes`,
      rollback: `murderctl recover-master -i /tmp/murder-lab/inventory.yaml --rollback ${r.run}`,
    })
    expect(r.timeline.some((u) => u.step === 'push')).toBe(false)
  })

  it('a run past an irreversible step offers no rollback, and says why, in every format', () => {
    const g = gathered('recover-master-stopped-at-diff')
    const at = g.events.findIndex((e) => e.event === 'step-start' && e.step === 'diff')
    const note = {...g.events[at]!, event: 'note', host: undefined, data: {irreversible: 'it may have taken mail: finish, then fail back'}}
    const r = buildRunReport({...g, events: [...g.events.slice(0, at), note, ...g.events.slice(at)]})
    expect(r.stop).toMatchObject({
      resume: expect.stringContaining(`--resume ${r.run}`),
      noRollback: 'step diff has started: it may have taken mail: finish, then fail back',
    })
    expect(r.stop!.rollback).toBeUndefined()
    expect(renderRunMarkdown(r)).toContain('It cannot be rolled back: step diff has started: it may have taken mail: finish, then fail back')
    expect(renderRunMarkdown(r)).not.toContain('--rollback')
    expect(renderRunHtml(r)).toContain('It cannot be rolled back: step diff has started')
  })

  it('a failover, completed: every step, the address move run here, the configs copied aside, the irreversible start no stop', () => {
    const r = buildRunReport(gathered('failover-completed'))
    expect(r).toMatchObject({command: 'failover', outcome: 'completed'})
    expect(r.stop).toBeUndefined()
    expect(r.timeline.find((u) => u.step === 'start-new')).toMatchObject({status: 'done'})
    expect(r.commands.filter((c) => c.host === 'local').map((c) => c.command)).toEqual([expect.stringMatching(/move-address b1 \S+ b1r$/)])
    expect(r.copies.length).toBeGreaterThanOrEqual(4)
  })

  it('a failover stopped after its new master started (a real journal): resumed with the pair named, and why no rollback', () => {
    const r = buildRunReport(gathered('failover-stopped-after-start'))
    expect(r.outcome).toBe('interrupted')
    expect(r.stop).toMatchObject({
      where: 'before step diff-new',
      resume: `murderctl failover b1 -i /tmp/murder-lab/inventory.yaml --resume ${r.run}`,
      noRollback: expect.stringMatching(/^step start-new has started: .*fail back .*: murderctl failover b1 --to b1$/),
    })
    expect(r.stop!.rollback).toBeUndefined()
    expect(renderRunMarkdown(r)).toContain('It cannot be rolled back: step start-new has started')
    // A run of a command for a pair is resumed with its pair, in the CLI's own words.
    const g = gathered('failover-stopped-after-start')
    const start = g.events.find((e) => e.event === 'run-start')!
    const repair = {...start, data: {...start.data, command: 'replication-repair', options: {pair: 'b1'}}}
    const rr = buildRunReport({...g, events: g.events.map((e) => (e === start ? repair : e))})
    expect(rr.stop!.resume).toBe(`murderctl replication repair b1 -i /tmp/murder-lab/inventory.yaml --resume ${r.run}`)
  })

  it('a failed run: the failing step, host and Cyrus-worded reason', () => {
    const r = buildRunReport(gathered('recover-master-failed'))
    expect(r.outcome).toBe('failed')
    expect(r.stop!.where).toBe('step install-frontend-db on mupdate')
    expect(r.stop!.reason).toMatch(/no frontend holds a mailbox list/)
    expect(r.stop!.resume).toContain(`--resume ${r.run}`)
  })

  it('consent gates as the generalized engine journals them: plan and diff, given, or refused for want of a terminal', () => {
    const g = gathered('recover-master-stopped-at-diff')
    const last = g.events[g.events.length - 1]
    const lock = g.events.find((e) => e.step === 'lock')!
    g.events.splice(g.events.indexOf(lock), 0, {at: lock.at, run: g.run, event: 'note', step: 'lock', data: {gate: 'plan', confirmed: true, by: '--yes'}})
    g.events.push({at: last.at, run: g.run, event: 'note', step: 'diff', data: {gate: 'diff', confirmed: false, reason: 'no terminal'}})
    const r = buildRunReport(g)
    expect(r.consents.map((c) => [c.step, c.gate, c.by])).toEqual([['lock', 'plan', '--yes']])
    expect(r.refusals.map((c) => [c.step, c.gate, c.reason])).toEqual([['diff', 'diff', 'no terminal']])
    expect(r.outcome).toBe('awaiting consent')
    expect(r.stop!.where).toBe('after step diff')
    expect(r.stop!.reason).toMatch(/diff was shown and not confirmed \(no terminal\)/)
    // The diff's own consent is the one at its step, not the plan's.
    expect(r.diffs[0]).toMatchObject({pushed: false, consent: undefined})
    const text = renderRunMarkdown(r)
    expect(text).toContain('| lock | plan | --yes | not recorded |')
    expect(text).toContain('| diff | diff | no terminal |')
    expect(lintMarkdown(text)).toEqual([])
  })

  it('a run interrupted by Ctrl-C: stopped before the next step, resumable', () => {
    const r = buildRunReport(gathered('recover-master-interrupted'))
    expect(r.outcome).toBe('interrupted')
    expect(r.stop).toMatchObject({where: 'before step start-master', resume: `murderctl recover-master -i /tmp/murder-lab/inventory.yaml --resume ${r.run}`})
    expect(r.timeline.at(-1)).toMatchObject({step: 'install-frontend-db', host: 'mupdate', status: 'done'})
  })

  it('a sync-backends run: its plan is the diff, its copies and verify figures', () => {
    const r = buildRunReport(gathered('sync-backends-completed'))
    expect(r).toMatchObject({command: 'sync-backends', outcome: 'completed'})
    expect(r.diffs[0]).toMatchObject({total: 3, pushed: true})
    expect(r.diffs[0].targets.map((t) => t.target)).toEqual(['b1', 'b2'])
    expect(r.copies.map((c) => c.host)).toEqual(['mupdate', 'b1'])
    expect(r.figures.map((f) => f.step)).toEqual(['verify', 'run-end'])
    expect(r.timeline.find((u) => u.step === 'push')).toMatchObject({host: 'b1', status: 'ended'})
  })

  it('tolerates unknown events and fields, lines cut short, and reads consent records with who and how', () => {
    const g = gathered('recover-master-completed')
    const extra = (e: Partial<LooseEvent> & {event: string}): LooseEvent => ({at: g.events[g.events.length - 1].at, run: g.run, ...e})
    const start = g.events[0]
    g.events = [
      {...start, data: {...start.data, murder: 'prod-murder', operator: 'alice', inventoryFingerprint: 'abc123'}},
      ...g.events.slice(1).map((e) => (e.event === 'note' ? {...e, data: {confirmed: true, by: 'prompt', who: 'alice'}} : e)),
      extra({event: 'replication-lag', host: 'b1', data: {seconds: 3}, somethingNew: [1, 2]} as never),
      extra({event: 'consent', step: 'push-more', data: {by: '--yes'}}),
    ]
    g.unreadableLines = 2
    const r = buildRunReport(g)
    expect(r).toMatchObject({murder: 'prod-murder', operator: 'alice', outcome: 'completed', unreadableLines: 2})
    expect(r.facts).toContainEqual(['inventoryFingerprint', 'abc123'])
    expect(r.consents.map((c) => [c.step, c.by, c.who])).toEqual([
      ['diff', 'prompt', 'alice'],
      ['push-more', '--yes', undefined],
    ])
    expect(renderRunMarkdown(r)).toContain('| diff | — | prompt | alice |')
  })

  it('one line per run for --list', () => {
    expect(FIXTURES.map((f) => runLine(gathered(f)).outcome)).toEqual([
      'completed',
      'awaiting consent',
      'failed',
      'interrupted',
      'completed',
      'completed',
      'interrupted',
    ])
  })
})

describe('renderers', () => {
  for (const name of FIXTURES) {
    it(`${name}: Markdown passes markdownlint`, () => {
      const text = renderRunMarkdown(buildRunReport(gathered(name)))
      expect(lintMarkdown(text)).toEqual([])
    })
  }

  it('Markdown keeps mailbox names inert: only inside fenced blocks, each line of the fold intact', () => {
    const text = renderRunMarkdown(buildRunReport(gathered('sync-backends-completed')))
    for (const w of WEIRD) expect(text).toContain(`Force Activate: ${w}\n`)
    const outsideFences = text.replace(/^(`{3,})text\n[\s\S]*?\n\1$/gm, '')
    expect(outsideFences).not.toMatch(/<script>|zoe/)
    expect(text).toMatch(/<details><summary>b1: all 3 changes<\/summary>/)
  })

  it('HTML is self-contained and escapes everything', () => {
    const page = renderRunHtml(buildRunReport(gathered('recover-master-completed')))
    expect(page).not.toMatch(/<script|<link|@import|url\(http|src="http|href="http/i)
    expect(page).toContain('user.zoe.&lt;script&gt;alert(1)&lt;/script&gt;')
    expect(page).toContain('user.zoe.R&amp;D &quot;quoted&quot;')
    expect(page).toMatch(/<svg [^>]*class="gantt"/)
    expect(page).toContain('Content-Security-Policy" content="default-src \'none\'')
    // Every diff line is in the folded list.
    expect(page.match(/Force Activate: /g)).toHaveLength(43)
  })

  it('escapers', () => {
    expect(html(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;')
    expect(md('a|b *c* <d> [e](f) `g`')).toBe('a\\|b \\*c\\* &lt;d&gt; \\[e\\]\\(f\\) \\`g\\`')
    expect(mdCode('x`y|z')).toBe('``x`y\\|z``')
    expect(mdCode('`a')).toBe('`` `a ``')
    expect(mdFence(['```', 'b'])).toBe('````text\n```\nb\n````')
  })
})
