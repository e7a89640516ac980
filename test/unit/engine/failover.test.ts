// The pieces of failover that need no lab: the history read back from journals, the inventory
// command's placeholders, and config diffs that never show a password.
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {configDiff, fillCommand} from '../../../src/engine/actions/pair.js'
import {failoverHistory} from '../../../src/engine/history.js'
import {Journal} from '../../../src/engine/journal.js'

describe('failover history from the journals', () => {
  it('reads direction, outcome and service gap; a refusal is not a failure', () => {
    const dir = mkdtempSync(join(tmpdir(), 'murderctl-hist-'))
    const done = new Journal(dir, '20261128T100000Z-failover-aaaa')
    done.write({event: 'run-start', data: {command: 'failover', options: {pair: 'b1', kind: 'controlled', from: 'b1', to: 'b1r'}, dryRun: false}})
    done.write({event: 'note', step: 'stop-old', data: {mark: 'stopStartedAt', at: 1000}})
    done.write({event: 'note', step: 'start-new', data: {mark: 'servedAt', at: 9500}})
    done.write({event: 'run-end', data: {completed: true, dryRun: false}})
    const refused = new Journal(dir, '20261128T110000Z-failover-bbbb')
    refused.write({event: 'run-start', data: {command: 'failover', options: {pair: 'b1', kind: 'controlled', from: 'b1r', to: 'b1'}, dryRun: false}})
    refused.write({event: 'step-failed', step: 'preflight', data: {code: 'refused'}})
    const other = new Journal(dir, '20261128T120000Z-failover-cccc')
    other.write({event: 'run-start', data: {command: 'failover', options: {pair: 'b2', kind: 'hard', from: 'b2', to: 'b2r'}, dryRun: false}})
    const fence = new Journal(dir, '20261128T130000Z-fence-dddd')
    fence.write({event: 'run-start', data: {pair: 'b1', kind: 'fence', from: 'b1', to: 'b1r', dryRun: false}})
    fence.write({event: 'run-end', data: {outcome: 'done'}})
    const h = failoverHistory(dir, 'b1')
    expect(h.map((x) => [x.kind, x.from, x.to, x.outcome, x.serviceGapMs])).toEqual([
      ['controlled', 'b1', 'b1r', 'done', 8500],
      ['controlled', 'b1r', 'b1', 'refused', null],
      ['fence', 'b1', 'b1r', 'done', null],
    ])
  })
})

describe('pair commands and config diffs', () => {
  it('fills placeholders shell-quoted and leaves unknown ones', () => {
    expect(fillCommand('move {servername} {new.address} {old} {x}', {servername: 'b1', 'new.address': '10.0.0.15', old: "it's"})).toBe(
      "move b1 10.0.0.15 'it'\\''s' {x}",
    )
  })

  it('diffs configs line by line with passwords masked', () => {
    const d = configDiff('a: 1\nmupdate_password: secret1\nsync_log: 1\n', 'a: 1\n#mupdate_password: secret1  # murderctl\nsync_log: 1\nsync_password: s2\n')
    expect(d).not.toMatch(/secret1|s2/)
    expect(d.split('\n')).toEqual(['- mupdate_password: ***', '+ #mupdate_password: ***', '+ sync_password: ***'])
  })
})
