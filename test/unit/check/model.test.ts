import {describe, expect, it} from 'vitest'
import {BugError} from '../../../src/errors.js'
import {buildReport, bySeverity, CheckState, exitCodeFor, SUMMARY_MAX, worstState, type CheckResult} from '../../../src/check/model.js'
import {b1Diverged, b2Consistent, cyrusUnknown, masterCount, okMaster, replicationLag} from './fixtures.js'

const at = new Date('2026-03-01T12:00:00.000Z')
const result = (state: CheckState, message: string, host?: string): CheckResult => ({
  name: 'slaves',
  ...(host ? {host} : {}),
  state,
  message,
  figures: {},
})

describe('worstState', () => {
  it('ranks CRITICAL > UNKNOWN > WARNING > OK, whatever the order', () => {
    expect(worstState(['OK', 'WARNING'])).toBe('WARNING')
    expect(worstState(['WARNING', 'UNKNOWN'])).toBe('UNKNOWN')
    expect(worstState(['UNKNOWN', 'WARNING', 'OK'])).toBe('UNKNOWN')
    expect(worstState(['UNKNOWN', 'CRITICAL'])).toBe('CRITICAL')
    expect(worstState(['CRITICAL', 'UNKNOWN', 'WARNING', 'OK'])).toBe('CRITICAL')
    expect(worstState(['OK', 'OK'])).toBe('OK')
  })

  it('is the same for every permutation of the four states', () => {
    const all = CheckState.options
    const perms = (xs: readonly CheckState[]): CheckState[][] =>
      xs.length <= 1 ? [[...xs]] : xs.flatMap((x, i) => perms([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]))
    for (const p of perms(all)) expect(worstState(p)).toBe('CRITICAL')
    for (const p of perms(['OK', 'WARNING', 'UNKNOWN'])) expect(worstState(p)).toBe('UNKNOWN')
  })

  it('takes any iterable; an empty one is OK (buildReport turns "no checks" into UNKNOWN)', () => {
    expect(worstState(new Set<CheckState>(['WARNING', 'OK']))).toBe('WARNING')
    expect(worstState([])).toBe('OK')
  })
})

describe('exitCodeFor', () => {
  it('follows the Nagios plugin codes, not the severity order', () => {
    expect(exitCodeFor('OK')).toBe(0)
    expect(exitCodeFor('WARNING')).toBe(1)
    expect(exitCodeFor('CRITICAL')).toBe(2)
    expect(exitCodeFor('UNKNOWN')).toBe(3)
  })
})

describe('bySeverity', () => {
  it('puts the worst first and keeps the order within a state', () => {
    const rs = [result('WARNING', 'w1'), result('OK', 'o'), result('CRITICAL', 'c1'), result('UNKNOWN', 'u'), result('CRITICAL', 'c2'), result('WARNING', 'w2')]
    expect(bySeverity(rs).map((r) => r.message)).toEqual(['c1', 'c2', 'u', 'w1', 'w2', 'o'])
    expect(rs[0]!.message).toBe('w1') // not sorted in place
  })
})

describe('buildReport', () => {
  it('takes the worst state and writes counts then the worst problems first', () => {
    const r = buildReport('prod', [okMaster, masterCount, replicationLag, b1Diverged, b2Consistent, cyrusUnknown], at, 1234)
    expect(r).toMatchObject({version: 1, murder: 'prod', state: 'CRITICAL', startedAt: '2026-03-01T12:00:00.000Z', durationMs: 1234})
    expect(r.checks).toHaveLength(6)
    expect(r.summary).toBe(
      '1 critical, 1 unknown, 1 warning of 6 checks: b1 diverged from the master (3 changes); run `murderctl sync-backends --backend b1`; b3 did not answer within 10 s; check ssh to b3; +1 more',
    )
    expect(r.summary.length).toBeLessThanOrEqual(SUMMARY_MAX)
  })

  it('fits as many whole problems as it can', () => {
    const r = buildReport(
      'prod',
      [result('WARNING', 'fe2 holds 39 mailboxes, the master 40', 'fe2'), result('CRITICAL', 'b1 diverged from the master (3 changes)', 'b1'), okMaster],
      at,
      5,
    )
    expect(r.state).toBe('CRITICAL')
    expect(r.summary).toBe('1 critical, 1 warning of 3 checks: b1 diverged from the master (3 changes); fe2 holds 39 mailboxes, the master 40')
  })

  it('all OK, one check, no checks', () => {
    expect(buildReport('prod', [okMaster, masterCount], at, 1)).toMatchObject({state: 'OK', summary: '2 checks OK'})
    expect(buildReport('prod', [okMaster], at, 1).summary).toBe('1 check OK')
    expect(buildReport('prod', [], at, 1)).toMatchObject({state: 'UNKNOWN', summary: 'no checks ran', checks: []})
  })

  it('keeps the summary under the limit however many and long the problems', () => {
    const many = Array.from({length: 30}, (_, i) =>
      result('CRITICAL', `backend b${i} diverged from the master (${i} changes); run \`murderctl sync-backends --backend b${i}\``, `b${i}`),
    )
    const r = buildReport('prod', many, at, 1)
    expect(r.summary.length).toBeLessThanOrEqual(SUMMARY_MAX)
    expect(r.summary).toMatch(/^30 critical of 30 checks: backend b0 diverged .*; \+\d+ more$/)
    const more = Number(/\+(\d+) more$/.exec(r.summary)![1])
    expect(r.summary.split('; run').length - 1 + more).toBe(30) // every problem is either shown or counted

    const long = buildReport('prod', [result('CRITICAL', 'x'.repeat(500), 'fe1'), result('WARNING', 'w', 'fe2')], at, 1)
    expect(long.summary.length).toBeLessThanOrEqual(SUMMARY_MAX)
    expect(long.summary).toMatch(/^1 critical, 1 warning of 2 checks: x+…; \+1 more$/)
  })

  it('folds a multi-line message onto one line', () => {
    const r = buildReport('prod', [result('WARNING', 'fe1 is behind\n  by 3 mailboxes\r\n')], at, 1)
    expect(r.checks[0]!.message).toBe('fe1 is behind by 3 mailboxes')
    expect(r.summary).not.toMatch(/[\r\n]/)
  })

  it('rejects results a check should never produce, naming the check', () => {
    const bad = (r: unknown) => () => buildReport('prod', [r as CheckResult], at, 1)
    expect(bad({...b1Diverged, state: 'BROKEN'})).toThrow(BugError)
    expect(bad({...b1Diverged, state: 'BROKEN'})).toThrow(/backend-consistency on b1/)
    expect(bad({...b1Diverged, fix: 'ssh b1 reconstruct'})).toThrow(/fix/)
    expect(bad({...b1Diverged, figures: {mw_changes: Number.NaN}})).toThrow(BugError)
    expect(bad({...b1Diverged, figures: {mw_changes: Infinity}})).toThrow(BugError)
    expect(bad({...b1Diverged, name: 'Backend Consistency'})).toThrow(BugError)
    expect(bad({...b1Diverged, message: ''})).toThrow(BugError)
    expect(bad({...b1Diverged, hint: 'typo for fix'})).toThrow(BugError)
    expect(bad({...b1Diverged, perf: {mw_changes: {crit: '>1'}}})).toThrow(BugError)
  })

  it('rejects two results for the same check and host (they would be duplicate Prometheus series)', () => {
    expect(() => buildReport('prod', [b1Diverged, {...b1Diverged, state: 'OK'}], at, 1)).toThrow(/two results/)
    expect(() => buildReport('prod', [b1Diverged, b2Consistent], at, 1)).not.toThrow()
  })

  it('accepts an ISO string for startedAt', () => {
    expect(buildReport('prod', [okMaster], '2026-03-01T12:00:00Z', 1).startedAt).toBe('2026-03-01T12:00:00Z')
    expect(() => buildReport('prod', [okMaster], 'yesterday', 1)).toThrow(BugError)
  })
})
