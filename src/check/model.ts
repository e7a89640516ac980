// The health-check model: what every check returns, and the report `murderctl check` builds
// from them. Pure: no SSH, no files. The formatters (nagios.ts, prometheus.ts, --format json)
// and the published JSON Schema (schemas/check-report.schema.json) all derive from these
// zod schemas, so a field added here reaches every output at once.
import {z} from 'zod'
import {BugError} from '../errors.js'

/**
 * The four Nagios/Icinga plugin states. Their exit codes are 0, 1, 2, 3 in this order
 * (Monitoring Plugins Development Guidelines), but that is NOT their severity order:
 * see {@link STATE_SEVERITY}.
 */
export const CheckState = z.enum(['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'])
export type CheckState = z.infer<typeof CheckState>

/**
 * Severity rank used to combine states: OK < WARNING < UNKNOWN < CRITICAL.
 *
 * UNKNOWN outranks WARNING (a check that could not tell may be hiding a failure, so it must
 * not be masked by a mere warning) but not CRITICAL (a known failure is the more useful thing
 * to page about). This is the usual Nagios practice for combining services (check_multi,
 * check_cluster, Icinga's "worst state"), and it differs from the exit-code order, where
 * UNKNOWN is 3.
 */
export const STATE_SEVERITY: Readonly<Record<CheckState, number>> = {OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3}

/** Nagios plugin exit codes. */
const EXIT_CODES: Readonly<Record<CheckState, 0 | 1 | 2 | 3>> = {OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3}

/** The checks the issue defines (a result's `name` may be any kebab-case word; these are the known ones). */
export const KNOWN_CHECKS = [
  'mupdate-master',
  'master-count',
  'slaves',
  'backend-consistency',
  'cyrus-master',
  'replication',
  'uniqueid',
  'lock',
  'replication-consistency',
  'tmpfs-key',
] as const
export type KnownCheck = (typeof KNOWN_CHECKS)[number]

const oneLine = /^[^\r\n]*$/
const number = /-?\d+(?:\.\d+)?/.source
/** Nagios threshold range: `10`, `10:`, `~:10`, `10:20`, `@10:20` (alert outside, or inside with @). */
export const NAGIOS_RANGE = new RegExp(`^@?(?:(?:~|${number}):(?:${number})?|${number})$`)

export const PerfUnit = z.enum(['', 's', 'ms', 'us', '%', 'B', 'KB', 'MB', 'TB', 'c'])
export type PerfUnit = z.infer<typeof PerfUnit>

const Threshold = z.union([z.number(), z.string().regex(NAGIOS_RANGE)])

export const PerfSpec = z
  .strictObject({
    uom: PerfUnit.optional().describe('Nagios unit of measure'),
    warn: Threshold.optional().describe('Nagios warning range, e.g. 10 (outside 0..10), "~:10", "1:"'),
    crit: Threshold.optional().describe('Nagios critical range'),
    min: z.number().optional(),
    max: z.number().optional(),
  })
  .describe('How one figure is shown as Nagios performance data')
export type PerfSpec = z.infer<typeof PerfSpec>

export const CheckResult = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/)
      .describe(`Check name, kebab-case; known checks: ${KNOWN_CHECKS.join(', ')}`),
    host: z.string().min(1).regex(oneLine).optional().describe('The host this result is about, when it is about one host'),
    state: CheckState,
    message: z.string().min(1).regex(oneLine).describe('One line; names the host and the fix'),
    figures: z
      .record(z.string().min(1).regex(oneLine), z.number())
      .describe('Numbers behind the state (Nagios perfdata, Prometheus murder_check_figure), by figure name'),
    perf: z.record(z.string().min(1), PerfSpec).optional().describe('Optional unit and thresholds of some figures, for Nagios perfdata'),
    fix: z
      .string()
      .regex(/^murderctl [^\r\n]+$/)
      .optional()
      .describe('The murderctl command that repairs it, e.g. "murderctl sync-backends --backend b1"'),
    durationMs: z.number().nonnegative().optional().describe('How long this check took'),
  })
  .describe('One check on one murder (or one host of it)')
export type CheckResult = z.infer<typeof CheckResult>

export const CheckReport = z
  .strictObject({
    version: z.literal(1).describe('Format version of this report; bumped on incompatible changes'),
    murder: z.string().min(1).describe('The inventory name of the murder'),
    state: CheckState.describe('Worst state of all checks (CRITICAL > UNKNOWN > WARNING > OK); UNKNOWN if no check ran'),
    summary: z.string().regex(oneLine).describe('One line: counts, then the worst problems first'),
    checks: z.array(CheckResult),
    startedAt: z.iso.datetime().describe('When the run started (ISO 8601, UTC)'),
    durationMs: z.number().nonnegative().describe('How long the whole run took'),
  })
  .meta({
    title: 'murderctl check report',
    description: 'Output of `murderctl check --format json`: the state of each health check of a Cyrus IMAP Murder.',
  })
export type CheckReport = z.infer<typeof CheckReport>

/** Combine states: the most severe one wins (CRITICAL > UNKNOWN > WARNING > OK). An empty list is OK. */
export function worstState(states: Iterable<CheckState>): CheckState {
  let worst: CheckState = 'OK'
  for (const s of states) if (STATE_SEVERITY[s] > STATE_SEVERITY[worst]) worst = s
  return worst
}

/** Nagios plugin exit code of a state: OK 0, WARNING 1, CRITICAL 2, UNKNOWN 3. */
export function exitCodeFor(state: CheckState): 0 | 1 | 2 | 3 {
  return EXIT_CODES[state]
}

/** Most severe first; results of equal state keep their order. Does not modify its argument. */
export function bySeverity<T extends {state: CheckState}>(results: readonly T[]): T[] {
  return results
    .map((r, i) => ({r, i}))
    .sort((a, b) => STATE_SEVERITY[b.r.state] - STATE_SEVERITY[a.r.state] || a.i - b.i)
    .map(({r}) => r)
}

/** Longest summary buildReport writes (Nagios shows the first line in lists; keep it short). */
export const SUMMARY_MAX = 200

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

/** `2 critical, 1 warning of 9 checks: <worst message>; <next>; +3 more`, at most SUMMARY_MAX chars. */
export function summarize(checks: readonly CheckResult[]): string {
  if (checks.length === 0) return 'no checks ran'
  const problems = bySeverity(checks.filter((c) => c.state !== 'OK'))
  if (problems.length === 0) return `${plural(checks.length, 'check')} OK`
  const counts = (['CRITICAL', 'UNKNOWN', 'WARNING'] as const)
    .map((s) => [s, problems.filter((p) => p.state === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s.toLowerCase()}`)
  let out = `${counts.join(', ')} of ${plural(checks.length, 'check')}: `
  const more = (n: number): string => (n > 0 ? `; +${n} more` : '')
  for (const [i, p] of problems.entries()) {
    const piece = (i === 0 ? '' : '; ') + p.message
    const tail = more(problems.length - i - 1)
    if (out.length + piece.length + tail.length <= SUMMARY_MAX) {
      out += piece
      continue
    }
    if (i === 0) {
      // Even the worst problem alone is too long: cut it rather than say nothing.
      out += `${p.message.slice(0, Math.max(0, SUMMARY_MAX - out.length - tail.length - 1)).trimEnd()}…${tail}`
    } else {
      out += more(problems.length - i) // fits: it is the tail reserved when the previous piece went in
    }
    break
  }
  return out
}

/**
 * Assemble the report from the checks' results. Validates every result against the schema
 * (a bad result is a bug in a check, reported as a BugError naming it) after folding
 * multi-line messages onto one line; rejects two results with the same name and host, which
 * would make duplicate Prometheus series. With no results at all the state is UNKNOWN
 * (nothing was checked, e.g. `--only` matched nothing), never OK.
 */
export function buildReport(murder: string, checks: readonly CheckResult[], startedAt: Date | string, durationMs: number): CheckReport {
  const seen = new Set<string>()
  const results = checks.map((c, i) => {
    const parsed = CheckResult.safeParse({...c, message: typeof c.message === 'string' ? c.message.replace(/\s*[\r\n]+\s*/g, ' ').trim() : c.message})
    const label = `${c?.name ?? `#${i}`}${c?.host ? ` on ${c.host}` : ''}`
    if (!parsed.success) throw new BugError(`check ${label} returned an invalid result: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`)
    const key = `${parsed.data.name}\u0000${parsed.data.host ?? ''}`
    if (seen.has(key)) throw new BugError(`check ${label} returned two results for the same host`)
    seen.add(key)
    return parsed.data
  })
  const report = {
    version: 1 as const,
    murder,
    state: results.length === 0 ? ('UNKNOWN' as const) : worstState(results.map((c) => c.state)),
    summary: summarize(results),
    checks: results,
    startedAt: typeof startedAt === 'string' ? startedAt : startedAt.toISOString(),
    durationMs,
  }
  const parsed = CheckReport.safeParse(report)
  if (!parsed.success) throw new BugError(`invalid check report: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`)
  return parsed.data
}

/** The JSON Schema (draft 2020-12) of CheckReport, as published in schemas/check-report.schema.json. */
export function checkReportJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(CheckReport, {target: 'draft-2020-12', io: 'output', unrepresentable: 'throw'}) as Record<string, unknown>
}
