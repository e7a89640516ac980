import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import parsePrometheusTextFormat, {type ParsedFamily} from 'parse-prometheus-text-format'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {AbortError} from '../../../src/errors.js'
import {buildReport, type CheckResult} from '../../../src/check/model.js'
import {escapeLabelValue, formatPrometheus, formatPrometheusFailure, writeTextfileAtomic} from '../../../src/check/prometheus.js'
import {b1Diverged, b2Consistent, cyrusUnknown, masterCount, okMaster, replicationLag} from './fixtures.js'

const startedAt = new Date('2026-03-01T12:00:00.000Z')
const now = new Date('2026-03-01T12:00:01.500Z')

// A host name no real inventory would allow, to prove escaping end to end.
const nasty: CheckResult = {
  name: 'slaves',
  host: 'fe"1\\x',
  state: 'WARNING',
  message: 'fe1 holds 39 mailboxes, the master 40',
  figures: {'mailboxes "local"': 39},
}

const report = buildReport('prod', [okMaster, masterCount, b1Diverged, b2Consistent, replicationLag, cyrusUnknown, nasty], startedAt, 2500)
const text = formatPrometheus(report, now)
const families = parsePrometheusTextFormat(text)
const family = (name: string): ParsedFamily => {
  const f = families.find((x) => x.name === name)
  if (!f) throw new Error(`no family ${name} in:\n${text}`)
  return f
}
const value = (name: string, labels: Record<string, string>): string | undefined =>
  family(name).metrics.find((m) => JSON.stringify(m.labels) === JSON.stringify(labels))?.value

describe('formatPrometheus', () => {
  it('is valid text exposition: every family once, gauges, HELP, final newline, no timestamps', () => {
    expect(text.endsWith('\n')).toBe(true)
    expect(text.endsWith('\n\n')).toBe(false)
    expect(families.map((f) => f.name)).toEqual([
      'murder_check_up',
      'murder_check_overall_status',
      'murder_check_duration_seconds',
      'murder_check_last_run_timestamp_seconds',
      'murder_check_status',
      'murder_check_figure_bytes',
      'murder_check_figure_seconds',
      'murder_check_figure',
      'murder_check_result_duration_seconds',
    ])
    for (const f of families) {
      expect(f.type).toBe('GAUGE')
      expect(f.help.length).toBeGreaterThan(0)
      expect(text.split('\n').filter((l) => l.startsWith(`# TYPE ${f.name} `))).toHaveLength(1)
      expect(text.split('\n').filter((l) => l.startsWith(`# HELP ${f.name} `))).toHaveLength(1)
      for (const m of f.metrics) expect(m.timestamp_ms).toBeUndefined()
    }
    // Each sample line: a valid metric name, label names, then exactly one value.
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*\{[a-zA-Z_][a-zA-Z0-9_]*=".*"\} [^ ]+$/)
    }
    // A sample never comes apart from its family (the textfile collector rejects that).
    const names = text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.slice(0, l.indexOf('{')))
    expect(names).toEqual([...names].sort((a, b) => families.findIndex((f) => f.name === a) - families.findIndex((f) => f.name === b)))
  })

  it('run-level gauges', () => {
    expect(family('murder_check_up').metrics).toEqual([{labels: {murder: 'prod'}, value: '1'}])
    expect(value('murder_check_overall_status', {murder: 'prod'})).toBe('2')
    expect(value('murder_check_duration_seconds', {murder: 'prod'})).toBe('2.5')
    expect(Number(value('murder_check_last_run_timestamp_seconds', {murder: 'prod'}))).toBe(now.getTime() / 1000)
  })

  it('a status per check with murder, check and host ("" for murder-wide checks), valued 0..3', () => {
    const status = family('murder_check_status').metrics
    expect(status).toHaveLength(7)
    expect(value('murder_check_status', {murder: 'prod', check: 'mupdate-master', host: 'mm'})).toBe('0')
    expect(value('murder_check_status', {murder: 'prod', check: 'master-count', host: ''})).toBe('0')
    expect(value('murder_check_status', {murder: 'prod', check: 'backend-consistency', host: 'b1'})).toBe('2')
    expect(value('murder_check_status', {murder: 'prod', check: 'replication', host: 'b2'})).toBe('1')
    expect(value('murder_check_status', {murder: 'prod', check: 'cyrus-master', host: 'b3'})).toBe('3')
  })

  it('every figure, one unit per metric name: counts, bytes, seconds, ratios apart', () => {
    expect(family('murder_check_figure').metrics).toHaveLength(4)
    expect(value('murder_check_figure', {murder: 'prod', check: 'master-count', host: '', figure: 'master_mailboxes'})).toBe('40')
    expect(value('murder_check_figure', {murder: 'prod', check: 'backend-consistency', host: 'b1', figure: 'mw_changes'})).toBe('3')
    expect(value('murder_check_figure_bytes', {murder: 'prod', check: 'replication', host: 'b2', figure: 'sync_log'})).toBe('2000000')
    expect(value('murder_check_figure_seconds', {murder: 'prod', check: 'replication', host: 'b2', figure: 'sync_log_age'})).toBe('400')
    const drop = formatPrometheus(buildReport('prod', [{...masterCount, figures: {master_mailboxes: 30, master_drop_percent: 25}}], startedAt, 10), now)
    expect(drop).toContain('murder_check_figure_ratio{murder="prod",check="master-count",host="",figure="master_drop"} 0.25')
    expect(drop).not.toMatch(/murder_check_figure\{[^}]*percent/)
  })

  it('escapes backslash, double quote and newline in label values, and the parser reads them back', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd')
    expect(text).toContain('host="fe\\"1\\\\x"')
    expect(value('murder_check_status', {murder: 'prod', check: 'slaves', host: 'fe"1\\x'})).toBe('1')
    expect(value('murder_check_figure', {murder: 'prod', check: 'slaves', host: 'fe"1\\x', figure: 'mailboxes "local"'})).toBe('39')
    // The schema keeps newlines out of hosts and figure names, but the formatter does not rely on it.
    const raw = {...report, murder: 'pr\nod', checks: [{...nasty, host: 'a\nb\\"'}]}
    const out = formatPrometheus(raw, now)
    expect(out).toContain('murder_check_status{murder="pr\\nod",check="slaves",host="a\\nb\\\\\\""} 1')
    expect(parsePrometheusTextFormat(out).find((f) => f.name === 'murder_check_status')!.metrics[0]!.labels).toEqual({
      murder: 'pr\nod',
      check: 'slaves',
      host: 'a\nb\\"',
    })
  })

  it('per-check durations only for checks that measured one', () => {
    expect(family('murder_check_result_duration_seconds').metrics).toEqual([
      {labels: {murder: 'prod', check: 'mupdate-master', host: 'mm'}, value: '0.12'},
      {labels: {murder: 'prod', check: 'backend-consistency', host: 'b1'}, value: '0.85'},
    ])
    const without = formatPrometheus(buildReport('prod', [masterCount], startedAt, 10), now)
    expect(without).not.toContain('murder_check_result_duration_seconds') // no HELP/TYPE for an empty family either
    expect(parsePrometheusTextFormat(without).map((f) => f.name)).toContain('murder_check_figure')
  })

  it('an empty report still says the run happened, and is UNKNOWN', () => {
    const empty = parsePrometheusTextFormat(formatPrometheus(buildReport('prod', [], startedAt, 10), now))
    expect(empty.map((f) => f.name)).toEqual([
      'murder_check_up',
      'murder_check_overall_status',
      'murder_check_duration_seconds',
      'murder_check_last_run_timestamp_seconds',
    ])
    expect(empty[1]!.metrics[0]!.value).toBe('3')
  })

  it('formatPrometheusFailure: up 0 and the time, nothing else', () => {
    const out = formatPrometheusFailure('prod', now)
    const parsed = parsePrometheusTextFormat(out)
    expect(parsed.map((f) => [f.name, f.metrics])).toEqual([
      ['murder_check_up', [{labels: {murder: 'prod'}, value: '0'}]],
      ['murder_check_last_run_timestamp_seconds', [{labels: {murder: 'prod'}, value: '1772366401.5'}]],
    ])
    expect(out.endsWith('\n')).toBe(true)
  })
})

describe('writeTextfileAtomic', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'murderctl-prom-'))
  })
  afterEach(() => rmSync(dir, {recursive: true, force: true}))

  it('creates the file, then replaces it whole, leaving no temp file behind', () => {
    const path = join(dir, 'murder.prom')
    writeTextfileAtomic(path, 'old_metric 1\n')
    expect(readFileSync(path, 'utf8')).toBe('old_metric 1\n')
    const inodeBefore = statSync(path).ino
    writeTextfileAtomic(path, text)
    expect(readFileSync(path, 'utf8')).toBe(text)
    expect(statSync(path).ino).not.toBe(inodeBefore) // replaced by rename, not rewritten in place
    expect(readdirSync(dir)).toEqual(['murder.prom'])
    expect(statSync(path).mode & 0o044).toBe(0o044) // node_exporter, another user, must read it
  })

  it('writes through a temp file named <path>.<pid>.tmp in the same directory', () => {
    const path = join(dir, 'murder.prom')
    // A leftover temp file of this very pid (a crash earlier) is overwritten, not appended to.
    writeFileSync(`${path}.${process.pid}.tmp`, 'garbage from a crash\n'.repeat(100))
    writeTextfileAtomic(path, 'm 1\n')
    expect(readFileSync(path, 'utf8')).toBe('m 1\n')
    expect(readdirSync(dir)).toEqual(['murder.prom'])
  })

  it('on failure removes the temp file, keeps what was there and says which path', () => {
    // The target is a non-empty directory: the temp file is written, the rename fails.
    const path = join(dir, 'murder.prom')
    mkdirSync(path)
    writeFileSync(join(path, 'keep'), 'x')
    expect(() => writeTextfileAtomic(path, text)).toThrow(AbortError)
    expect(() => writeTextfileAtomic(path, text)).toThrow(path)
    expect(readdirSync(dir)).toEqual(['murder.prom'])
    expect(readFileSync(join(path, 'keep'), 'utf8')).toBe('x')

    const missing = join(dir, 'no-such-dir', 'murder.prom')
    expect(() => writeTextfileAtomic(missing, text)).toThrow(/could not write .*no-such-dir/)
    expect(existsSync(join(dir, 'no-such-dir'))).toBe(false)
  })
})
