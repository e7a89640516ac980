// Prometheus text exposition (format 0.0.4) for node_exporter's textfile collector: one file,
// e.g. /var/lib/prometheus/node-exporter/murder.prom (Debian's textfile folder), replaced atomically after every run.
// The collector rejects timestamps and a file with a malformed line or a family split in two
// (node_textfile_scrape_error = 1), so every family is written once, whole, without timestamps.
//
// Families (all gauges):
//   murder_check_up{murder}                                  1 if the run completed (0: see formatPrometheusFailure)
//   murder_check_overall_status{murder}                      the report's state, 0 OK 1 WARNING 2 CRITICAL 3 UNKNOWN
//   murder_check_duration_seconds{murder}                    how long the run took
//   murder_check_last_run_timestamp_seconds{murder}          when the file was written
//   murder_check_status{murder,check,host}                   each check's state, same codes
//   murder_check_figure{murder,check,host,figure}            each count a check measured
//   murder_check_figure_bytes{murder,check,host,figure}      each size, in bytes (figure name without _bytes)
//   murder_check_figure_seconds{murder,check,host,figure}    each age or duration, in seconds
//   murder_check_figure_ratio{murder,check,host,figure}      each percentage, as a 0..1 ratio
// One unit per metric name, as Prometheus naming asks: a figure's unit is its name's suffix.
//   murder_check_result_duration_seconds{murder,check,host}  each check's own duration, when it reported one
// `host` is "" for a murder-wide check. Status values are the Nagios exit codes, so
// max(murder_check_status) ranks UNKNOWN above CRITICAL; alert on the exact values
// (== 2, == 3) or on murder_check_overall_status.
import {writeFileAtomic} from './atomic.js'
import {exitCodeFor, type CheckReport} from './model.js'

type Labels = Record<string, string>
interface Family {
  name: string
  help: string
  samples: Array<{labels: Labels; value: number}>
}

/** Label value escaping of the text format: backslash, double quote, line feed. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** HELP text escaping: backslash and line feed. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

/** A sample value as Go's ParseFloat reads it. */
function sampleValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

function render(families: readonly Family[]): string {
  const lines: string[] = []
  for (const f of families) {
    if (f.samples.length === 0) continue
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} gauge`)
    for (const s of f.samples) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
        .join(',')
      lines.push(`${f.name}{${labels}} ${sampleValue(s.value)}`)
    }
  }
  return lines.join('\n') + '\n'
}

const seconds = (ms: number): number => ms / 1000

/** A figure's unit, told by its name's suffix; anything else is a count. */
const FIGURE_UNITS = [
  {nameSuffix: '_bytes', metricSuffix: '_bytes', scale: 1, help: 'A size measured by one check, in bytes (sync log backlog...).'},
  {nameSuffix: '_seconds', metricSuffix: '_seconds', scale: 1, help: 'An age or duration measured by one check, in seconds.'},
  {nameSuffix: '_percent', metricSuffix: '_ratio', scale: 0.01, help: 'A proportion measured by one check, 0 to 1 (e.g. the master count drop).'},
  {nameSuffix: '', metricSuffix: '', scale: 1, help: 'A count measured by one check (mailboxes, changes...).'},
] as const
export const figureUnit = (figure: string) => FIGURE_UNITS.find((u) => figure.endsWith(u.nameSuffix))!

const upFamily = (murder: string, up: 0 | 1): Family => ({
  name: 'murder_check_up',
  help: '1 if the murderctl check run completed, 0 if it failed before it could check.',
  samples: [{labels: {murder}, value: up}],
})

const lastRunFamily = (murder: string, now: Date): Family => ({
  name: 'murder_check_last_run_timestamp_seconds',
  help: 'Unix time the murderctl check run ended.',
  samples: [{labels: {murder}, value: seconds(now.getTime())}],
})

/** The whole textfile for one report; `now` is when the run ended. Ends with a newline. */
export function formatPrometheus(report: CheckReport, now: Date): string {
  const {murder} = report
  const key = (c: CheckReport['checks'][number]): Labels => ({murder, check: c.name, host: c.host ?? ''})
  return render([
    upFamily(murder, 1),
    {
      name: 'murder_check_overall_status',
      help: 'Worst state of all checks of the murder: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.',
      samples: [{labels: {murder}, value: exitCodeFor(report.state)}],
    },
    {name: 'murder_check_duration_seconds', help: 'How long the murderctl check run took.', samples: [{labels: {murder}, value: seconds(report.durationMs)}]},
    lastRunFamily(murder, now),
    {
      name: 'murder_check_status',
      help: 'State of one check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the Nagios exit codes).',
      samples: report.checks.map((c) => ({labels: key(c), value: exitCodeFor(c.state)})),
    },
    ...FIGURE_UNITS.map((u) => ({
      name: `murder_check_figure${u.metricSuffix}`,
      help: u.help,
      samples: report.checks.flatMap((c) =>
        Object.entries(c.figures).flatMap(([figure, value]) => {
          if (figureUnit(figure) !== u) return []
          return [{labels: {...key(c), figure: figure.slice(0, figure.length - u.nameSuffix.length)}, value: value * u.scale}]
        }),
      ),
    })),
    {
      name: 'murder_check_result_duration_seconds',
      help: 'How long one check took.',
      samples: report.checks.flatMap((c) => (c.durationMs === undefined ? [] : [{labels: key(c), value: seconds(c.durationMs)}])),
    },
  ])
}

/**
 * The textfile for a run that could not check anything (bad inventory, internal error):
 * murder_check_up 0 and the run's time, so an alert on `murder_check_up == 0` fires instead
 * of the previous file going quietly stale.
 */
export function formatPrometheusFailure(murder: string, now: Date): string {
  return render([upFamily(murder, 0), lastRunFamily(murder, now)])
}

/**
 * Replace the textfile atomically: `<path>.<pid>.tmp` in the same directory, fsync, rename.
 * On failure the temp file is removed, the old file is left as it was, and an AbortError
 * naming the path is thrown.
 */
export function writeTextfileAtomic(path: string, text: string): void {
  writeFileAtomic(path, text, {mode: 0o644})
}
