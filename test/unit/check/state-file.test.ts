import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {buildReport, CheckResult} from '../../../src/check/model.js'
import {
  DEFAULT_MASTER_COUNT_THRESHOLDS,
  evaluateMasterCount,
  loadCheckState,
  nextCheckState,
  readCheckState,
  RECOVER_MASTER_FIX,
  saveCheckState,
  type MasterCountInput,
  type SavedCheckState,
} from '../../../src/check/state-file.js'
import {formatNagios} from '../../../src/check/nagios.js'
import {BugError} from '../../../src/errors.js'

const thresholds = {masterDropWarnPercent: 10, masterDropCritPercent: 50, masterEmptyBelow: 1}
const prev = (masterCount: number): SavedCheckState => ({murder: 'prod', masterCount, at: '2026-03-01T11:55:00.000Z'})
const evalMC = (over: Partial<MasterCountInput>): CheckResult =>
  CheckResult.parse(evaluateMasterCount({count: 40, thresholds, unifiedSlavesEnabled: false, masterHost: 'mm', ...over}))

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'murderctl-state-'))
})
afterEach(() => rmSync(dir, {recursive: true, force: true}))

describe('check state file', () => {
  it('round-trips, creating the directory, atomically', () => {
    const path = join(dir, 'checks', 'prod.json')
    saveCheckState(path, prev(40))
    expect(loadCheckState(path)).toEqual(prev(40))
    saveCheckState(path, {...prev(41), at: '2026-03-01T12:00:00.000Z'})
    expect(loadCheckState(path, 'prod')).toEqual({murder: 'prod', masterCount: 41, at: '2026-03-01T12:00:00.000Z'})
    expect(readdirSync(join(dir, 'checks'))).toEqual(['prod.json'])
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({murder: 'prod', masterCount: 41, at: '2026-03-01T12:00:00.000Z'})
  })

  it('missing, corrupt, wrong shape, unreadable, or another murder: no previous run, never a throw', () => {
    const path = join(dir, 'prod.json')
    expect(readCheckState(path)).toEqual({kind: 'missing'})
    expect(loadCheckState(path)).toBeUndefined()

    writeFileSync(path, '{"murder": "prod", "masterCount": 4') // torn write by something else
    expect(readCheckState(path)).toMatchObject({kind: 'ignored', reason: expect.stringContaining('not JSON')})
    expect(loadCheckState(path)).toBeUndefined()

    writeFileSync(path, JSON.stringify({murder: 'prod', masterCount: -3, at: '2026-03-01T11:55:00.000Z'}))
    expect(readCheckState(path)).toMatchObject({kind: 'ignored', reason: expect.stringContaining('masterCount')})
    writeFileSync(path, JSON.stringify({murder: 'prod', masterCount: 40, at: 'last tuesday'}))
    expect(loadCheckState(path)).toBeUndefined()
    writeFileSync(path, 'null')
    expect(loadCheckState(path)).toBeUndefined()
    writeFileSync(path, '')
    expect(loadCheckState(path)).toBeUndefined()

    writeFileSync(path, JSON.stringify(prev(40)))
    expect(readCheckState(path, 'staging')).toMatchObject({kind: 'ignored', reason: expect.stringContaining('belongs to murder prod')})
    expect(loadCheckState(path, 'prod')).toEqual(prev(40))

    mkdirSync(join(dir, 'a-directory'))
    expect(readCheckState(join(dir, 'a-directory'))).toMatchObject({kind: 'ignored'})
    if (process.getuid?.() !== 0) {
      chmodSync(path, 0o000)
      expect(readCheckState(path)).toMatchObject({kind: 'ignored', reason: expect.stringContaining('cannot read')})
    }
  })

  it('refuses to save a state that could not be read back', () => {
    expect(() => saveCheckState(join(dir, 'x.json'), {murder: 'prod', masterCount: 1.5, at: 'now'})).toThrow(BugError)
    expect(existsSync(join(dir, 'x.json'))).toBe(false)
  })
})

describe('evaluateMasterCount', () => {
  it('first run: OK, says there is nothing to compare with', () => {
    const r = evalMC({count: 40, previous: undefined})
    expect(r).toMatchObject({name: 'master-count', state: 'OK', figures: {master_mailboxes: 40}})
    expect(r.host).toBeUndefined()
    expect(r.fix).toBeUndefined()
    expect(r.message).toBe('master mm holds 40 mailboxes (no previous run to compare with)')
  })

  it('a corrupt state file is a first run', () => {
    const path = join(dir, 'prod.json')
    writeFileSync(path, '\u0000\u0000garbage')
    const r = evalMC({count: 40, previous: loadCheckState(path, 'prod')})
    expect(r.state).toBe('OK')
    expect(r.message).toContain('no previous run')
    expect(r.figures).toEqual({master_mailboxes: 40})
  })

  it('stable or growing: OK with the previous count and a 0 % drop', () => {
    const stable = evalMC({count: 40, previous: prev(40)})
    expect(stable).toMatchObject({state: 'OK', figures: {master_mailboxes: 40, master_mailboxes_previous: 40, master_drop_percent: 0}})
    expect(stable.message).toBe('master mm holds 40 mailboxes (last run: 40 at 2026-03-01T11:55:00.000Z)')
    expect(evalMC({count: 55, previous: prev(40)})).toMatchObject({state: 'OK', figures: {master_drop_percent: 0}})
  })

  it('dropping: within, just at, above the warning, above the critical threshold', () => {
    expect(evalMC({count: 37, previous: prev(40)})).toMatchObject({state: 'OK', figures: {master_drop_percent: 7.5}})
    expect(evalMC({count: 36, previous: prev(40)})).toMatchObject({state: 'OK', figures: {master_drop_percent: 10}}) // "more than" 10 %
    const warn = evalMC({count: 35, previous: prev(40)})
    expect(warn).toMatchObject({state: 'WARNING', figures: {master_drop_percent: 12.5}, fix: RECOVER_MASTER_FIX})
    expect(warn.message).toBe(
      'master mm holds 35 mailboxes, 12.5% fewer than the last run (40 at 2026-03-01T11:55:00.000Z); unless mailboxes were deleted on purpose, run `murderctl recover-master --dry-run`',
    )
    const crit = evalMC({count: 3, previous: prev(40)})
    expect(crit).toMatchObject({state: 'CRITICAL', figures: {master_drop_percent: 92.5}, fix: 'murderctl recover-master --dry-run'})
    expect(crit.message).toContain('run `murderctl recover-master --dry-run`')
    expect(evalMC({count: 2, previous: prev(3)}).figures.master_drop_percent).toBe(33.33)
    // compared before rounding: 10.004 % is more than 10 %
    expect(evalMC({count: 89996, previous: prev(100000)})).toMatchObject({state: 'WARNING', figures: {master_drop_percent: 10}})
    expect(evalMC({count: 90000, previous: prev(100000)})).toMatchObject({state: 'OK', figures: {master_drop_percent: 10}})
  })

  it('empty while unified slaves are enabled: CRITICAL, even on the first run', () => {
    const r = evalMC({count: 0, previous: prev(40), unifiedSlavesEnabled: true})
    expect(r).toMatchObject({state: 'CRITICAL', fix: RECOVER_MASTER_FIX, figures: {master_mailboxes: 0, master_drop_percent: 100}})
    expect(r.message).toBe(
      'master mm holds 0 mailboxes (was 40 at 2026-03-01T11:55:00.000Z) while unified slaves are enabled (they will copy the empty list); run `murderctl recover-master --dry-run`',
    )
    expect(evalMC({count: 0, previous: undefined, unifiedSlavesEnabled: true})).toMatchObject({state: 'CRITICAL', fix: RECOVER_MASTER_FIX})
    expect(evalMC({count: 0, previous: prev(0), unifiedSlavesEnabled: true}).state).toBe('CRITICAL')
  })

  it('empty without unified slaves: WARNING, or CRITICAL when it was full before', () => {
    const fresh = evalMC({count: 0, previous: undefined})
    expect(fresh).toMatchObject({state: 'WARNING', fix: RECOVER_MASTER_FIX})
    expect(fresh.message).toBe('master mm holds 0 mailboxes; run `murderctl recover-master --dry-run`')
    expect(evalMC({count: 0, previous: prev(0)}).state).toBe('WARNING')
    expect(evalMC({count: 0, previous: prev(40)}).state).toBe('CRITICAL') // a 100 % drop
  })

  it('masterEmptyBelow sets what counts as empty; 0 turns it off', () => {
    expect(evalMC({count: 3, thresholds: {...thresholds, masterEmptyBelow: 5}, unifiedSlavesEnabled: true}).state).toBe('CRITICAL')
    expect(evalMC({count: 5, thresholds: {...thresholds, masterEmptyBelow: 5}, unifiedSlavesEnabled: true}).state).toBe('OK')
    expect(evalMC({count: 0, thresholds: {...thresholds, masterEmptyBelow: 0}, unifiedSlavesEnabled: true}).state).toBe('OK')
  })

  it('bad thresholds or count: UNKNOWN, saying why', () => {
    const r = evalMC({thresholds: {masterDropWarnPercent: 60, masterDropCritPercent: 50, masterEmptyBelow: 1}})
    expect(r.state).toBe('UNKNOWN')
    expect(r.message).toContain('masterDropWarnPercent must not exceed masterDropCritPercent')
    expect(evalMC({thresholds: {...thresholds, masterDropCritPercent: 150}}).state).toBe('UNKNOWN')
    expect(evalMC({count: -1}).state).toBe('UNKNOWN')
    expect(evalMC({count: 1.5}).state).toBe('UNKNOWN')
  })

  it('default thresholds are the inventory defaults', () => {
    expect(DEFAULT_MASTER_COUNT_THRESHOLDS).toEqual({masterDropWarnPercent: 5, masterDropCritPercent: 20, masterEmptyBelow: 1})
  })

  it('perfdata thresholds mirror the evaluation', () => {
    const r = evalMC({count: 0, previous: prev(40), unifiedSlavesEnabled: true})
    const first = formatNagios(buildReport('prod', [r], new Date(), 1)).split('\n')[0]!
    expect(first).toBe(
      "MURDER CRITICAL: 1 critical of 1 check: master mm holds 0 mailboxes (was 40 at 2026-03-01T11:55:00.000Z) while unified slaves are enabled (they will copy the empty list); run `murderctl recover-master --dry-run` | 'master_mailboxes'=0;;1:;0 'master_mailboxes_previous'=40;;;0 'master_drop_percent'=100%;10;50;0;100",
    )
  })
})

describe('nextCheckState', () => {
  const now = new Date('2026-03-01T12:00:00.000Z')
  const next = (count: number, previous: SavedCheckState | undefined, unified = false) =>
    nextCheckState({murder: 'prod', count, previous, now, result: evalMC({count, previous, unifiedSlavesEnabled: unified})})

  it('saves the new count after a good run', () => {
    expect(next(40, undefined)).toEqual({murder: 'prod', masterCount: 40, at: '2026-03-01T12:00:00.000Z'})
    expect(next(42, prev(40))).toEqual({murder: 'prod', masterCount: 42, at: '2026-03-01T12:00:00.000Z'})
  })

  it('keeps the old baseline after an alarming drop, so the alarm lasts until someone acts', () => {
    expect(next(3, prev(40))).toEqual(prev(40))
    expect(next(35, prev(40))).toEqual(prev(40))
    // ...and the next run still alarms
    expect(evalMC({count: 3, previous: next(3, prev(40))}).state).toBe('CRITICAL')
  })

  it('an empty new murder still records its count (0), and UNKNOWN leaves the file alone', () => {
    expect(next(0, undefined, true)).toMatchObject({masterCount: 0})
    const unknown = evaluateMasterCount({count: -1, thresholds, unifiedSlavesEnabled: false})
    expect(nextCheckState({murder: 'prod', count: -1, previous: prev(40), now, result: unknown})).toEqual(prev(40))
    expect(nextCheckState({murder: 'prod', count: -1, previous: undefined, now, result: unknown})).toBeUndefined()
  })
})
