import {describe, expect, it} from 'vitest'
import {buildReport, type CheckResult} from '../../../src/check/model.js'
import {fitNagios, formatNagios, formatNagiosUnknown, formatPerfdata, perfItem, perfNumber} from '../../../src/check/nagios.js'
import {b1Diverged, b2Consistent, cyrusUnknown, masterCount, okMaster, replicationLag} from './fixtures.js'

const at = new Date('2026-03-01T12:00:00.000Z')

describe('formatNagios', () => {
  it('status line, then problems worst first, then OK checks', () => {
    const report = buildReport('prod', [okMaster, masterCount, b2Consistent, replicationLag, b1Diverged, cyrusUnknown], at, 900)
    const lines = formatNagios(report).split('\n')
    expect(lines.at(-1)).toBe('') // ends with a newline
    lines.pop()
    expect(lines[0]).toBe(
      `MURDER CRITICAL: ${report.summary} | ` +
        `'master_mailboxes'=40;;;0 'b2_mw_changes'=0;;1;0 'b2_sync_log_bytes'=2000000B;1000000;50000000;0 ` +
        `'b2_sync_log_age_seconds'=400s;300;1800;0 'b1_mw_changes'=3;;1;0`,
    )
    expect(lines.slice(1)).toEqual([
      'CRITICAL backend-consistency b1: b1 diverged from the master (3 changes); run `murderctl sync-backends --backend b1`',
      'UNKNOWN cyrus-master b3: b3 did not answer within 10 s; check ssh to b3',
      'WARNING replication b2: b2 sync log holds 2 MB, oldest entry 400 s old; check that sync_client -r runs on b2',
      'OK mupdate-master mm: mm answers as the mupdate master',
      'OK master-count: master mm holds 40 mailboxes (last run: 40 at 2026-01-01T00:00:00.000Z)',
      'OK backend-consistency b2: b2 agrees with the master',
    ])
  })

  it('the first line has the Nagios shape: MURDER <STATE>: text | perfdata', () => {
    const first = formatNagios(buildReport('prod', [okMaster, masterCount], at, 1)).split('\n')[0]!
    expect(first).toMatch(/^MURDER (OK|WARNING|CRITICAL|UNKNOWN): [^|]+ \| ('[^'=]+'=[-0-9.]+[a-zA-Z%]*(;[^; ]*){0,4} ?)+$/)
    expect(first).toBe("MURDER OK: 2 checks OK | 'master_mailboxes'=40;;;0")
  })

  it('no perfdata: no pipe at all', () => {
    expect(formatNagios(buildReport('prod', [okMaster], at, 1))).toBe('MURDER OK: 1 check OK\nOK mupdate-master mm: mm answers as the mupdate master\n')
  })

  it('an empty report is UNKNOWN', () => {
    expect(formatNagios(buildReport('prod', [], at, 1))).toBe('MURDER UNKNOWN: no checks ran\n')
  })

  it('never lets a pipe from a message start perfdata early', () => {
    const piped: CheckResult = {
      name: 'uniqueid',
      host: 'b1',
      state: 'WARNING',
      message: 'b1: 2 mailboxes without uniqueid (user|x, user|y)',
      figures: {missing: 2},
    }
    const out = formatNagios(buildReport('prod', [piped], at, 1))
    const [first, ...rest] = out.trimEnd().split('\n')
    expect(first!.split('|')).toHaveLength(2)
    expect(first!.split('|')[1]).toBe(" 'b1_missing'=2")
    expect(rest.join('\n')).not.toContain('|')
    expect(rest[0]).toBe('WARNING uniqueid b1: b1: 2 mailboxes without uniqueid (user/x, user/y)')
  })
})

describe('perfdata', () => {
  it('labels are sanitized, quoted and unique', () => {
    const weird: CheckResult[] = [
      {name: 'slaves', host: "fe 1'=|x", state: 'OK', message: 'ok', figures: {"mail boxes'": 5}},
      {name: 'replication', host: 'b1', state: 'OK', message: 'ok', figures: {count: 1}},
      {name: 'uniqueid', host: 'b1', state: 'OK', message: 'ok', figures: {count: 2}},
      {name: 'uniqueid', host: 'b1.', state: 'OK', message: 'ok', figures: {count: 3}},
    ]
    expect(formatPerfdata(weird)).toBe("'fe_1___x_mail_boxes_'=5 'b1_count'=1 'uniqueid_b1_count'=2 'b1._count'=3")
  })

  it('fields: value with unit, warn, crit, min, max; trailing empty fields dropped', () => {
    expect(perfItem('lag', 12.5, {uom: 's', warn: 300, crit: '~:1800', min: 0, max: 3600})).toBe("'lag'=12.5s;300;~:1800;0;3600")
    expect(perfItem('x', 7)).toBe("'x'=7")
    expect(perfItem('x', 7, {warn: '1:'})).toBe("'x'=7;1:")
    expect(perfItem('x', 7, {max: 9})).toBe("'x'=7;;;;9")
  })

  it('numbers are plain decimals, U when not finite', () => {
    expect(perfNumber(40)).toBe('40')
    expect(perfNumber(0.25)).toBe('0.25')
    expect(perfNumber(1e21)).toBe('1000000000000000000000')
    expect(perfNumber(1e-7)).toBe('0.0000001')
    expect(perfNumber(Number.NaN)).toBe('U')
    expect(perfItem('x', Infinity, {uom: 's'})).toBe("'x'=U")
  })
})

describe('formatNagiosUnknown', () => {
  it('one line, MURDER UNKNOWN: reason', () => {
    expect(formatNagiosUnknown('unknown check "foo" in --only')).toBe('MURDER UNKNOWN: unknown check "foo" in --only\n')
    expect(formatNagiosUnknown('inventory invalid:\n  hosts: missing | oops')).toBe('MURDER UNKNOWN: inventory invalid: hosts: missing / oops\n')
    expect(formatNagiosUnknown('  ')).toBe('MURDER UNKNOWN: internal error\n')
  })
})

describe('fitNagios (NRPE passes 1 KiB)', () => {
  // Forty backends down: every line long, the perfdata long too.
  const many: CheckResult[] = Array.from({length: 40}, (_, i) => ({
    name: 'backend-consistency',
    host: `backend${i}.mail.example.org`,
    state: 'CRITICAL',
    message: `backend${i}.mail.example.org cannot be read: connect ECONNREFUSED 192.0.2.${i}:22 (check the address, sshd and the SSH key)`,
    figures: {mw_changes: i, local_mailboxes: 1000 + i},
  }))
  const full = formatNagios(buildReport('prod', [okMaster, ...many], '2026-11-28T03:00:00.000Z', 900))

  it('keeps the status line first, the problems next, and says what it left out, within the limit', () => {
    expect(Buffer.byteLength(full)).toBeGreaterThan(4096)
    const cut = fitNagios(full, 1024)
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(1024)
    const lines = cut.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^MURDER CRITICAL: /)
    // Perfdata is trimmed to whole items, never cut inside one.
    for (const item of (lines[0].split(' | ')[1] ?? '').split(' ').filter(Boolean)) expect(item).toMatch(/^'[^']+'=\d+(;[^;]*)*$/)
    expect(lines[1]).toMatch(/^CRITICAL backend-consistency /)
    expect(lines.at(-1)).toMatch(/^\.\.\. \d+ more lines: murderctl check --format json$/)
  })

  it('leaves short output and a zero limit alone', () => {
    const short = formatNagios(buildReport('prod', [okMaster], '2026-11-28T03:00:00.000Z', 10))
    expect(fitNagios(short, 1024)).toBe(short)
    expect(fitNagios(full, 0)).toBe(full)
  })
})
