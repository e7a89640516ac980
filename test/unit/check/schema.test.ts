import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {z} from 'zod'
import {buildReport, CheckReport, checkReportJsonSchema} from '../../../src/check/model.js'
import {CHECK_REPORT_SCHEMA_PATH, renderCheckReportSchema} from '../../../src/check/write-schema.js'
import {evaluateMasterCount, DEFAULT_MASTER_COUNT_THRESHOLDS} from '../../../src/check/state-file.js'
import {b1Diverged, b2Consistent, cyrusUnknown, okMaster, replicationLag} from './fixtures.js'

const schemaFile = fileURLToPath(new URL(`../../../${CHECK_REPORT_SCHEMA_PATH}`, import.meta.url))
const committed = JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<string, unknown>
// The published JSON Schema turned back into a validator: checks the file itself, not the zod model.
const published = z.fromJSONSchema(committed as Parameters<typeof z.fromJSONSchema>[0])

const report = buildReport(
  'prod',
  [
    okMaster,
    b1Diverged,
    b2Consistent,
    replicationLag,
    cyrusUnknown,
    evaluateMasterCount({
      count: 0,
      previous: {murder: 'prod', masterCount: 40, at: '2026-01-01T00:00:00.000Z'},
      thresholds: DEFAULT_MASTER_COUNT_THRESHOLDS,
      unifiedSlavesEnabled: true,
    }),
  ],
  new Date('2026-03-01T12:00:00.000Z'),
  2500,
)
// What `--format json` prints, read back as a consumer would.
const json = JSON.parse(JSON.stringify(report)) as unknown

describe('check report JSON schema', () => {
  it('the committed schemas/check-report.schema.json is the one the model generates (run src/check/write-schema.ts)', () => {
    expect(readFileSync(schemaFile, 'utf8')).toBe(renderCheckReportSchema())
    expect(committed).toEqual(checkReportJsonSchema())
    expect(committed).toMatchObject({$schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', additionalProperties: false})
  })

  it('a real report validates against the zod model and against the published schema', () => {
    expect(CheckReport.parse(json)).toEqual(report)
    const r = published.safeParse(json)
    expect(r.success, r.success ? '' : z.prettifyError(r.error)).toBe(true)
  })

  it('the schema says what every check carries: state, message, figures, and the fix', () => {
    const item = (committed.properties as Record<string, {items?: {properties: Record<string, unknown>; required: string[]}}>).checks!.items!
    expect(item.required).toEqual(['name', 'state', 'message', 'figures'])
    expect(Object.keys(item.properties)).toEqual(expect.arrayContaining(['host', 'fix', 'durationMs', 'perf']))
  })

  // Each broken report must be refused by both, so the published schema is as strict as the model.
  const broken: Array<[string, (r: any) => void]> = [
    ['unknown state', (r) => (r.state = 'DEGRADED')],
    ['wrong version', (r) => (r.version = 2)],
    ['startedAt not ISO', (r) => (r.startedAt = '1 March 2026')],
    ['negative duration', (r) => (r.durationMs = -1)],
    ['missing summary', (r) => delete r.summary],
    ['extra top-level field', (r) => (r.extra = true)],
    ['check without figures', (r) => delete r.checks[0].figures],
    ['figure not a number', (r) => (r.checks[1].figures.mw_changes = '3')],
    ['two-line message', (r) => (r.checks[1].message = 'a\nb')],
    ['fix that is not a murderctl command', (r) => (r.checks[1].fix = 'rm -rf /var/lib/cyrus')],
    ['bad check name', (r) => (r.checks[1].name = 'Backend_Consistency')],
    ['bad Nagios range', (r) => (r.checks[1].perf.mw_changes.crit = '>1')],
    ['unknown field in a check', (r) => (r.checks[1].hint = 'x')],
  ]
  for (const [what, breakIt] of broken) {
    it(`rejects: ${what}`, () => {
      const bad = structuredClone(json) as any
      breakIt(bad)
      expect(CheckReport.safeParse(bad).success).toBe(false)
      expect(published.safeParse(bad).success).toBe(false)
    })
  }
})
