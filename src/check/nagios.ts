// Nagios/Icinga plugin output (Monitoring Plugins Development Guidelines):
//
//   MURDER CRITICAL: 1 critical of 7 checks: b1 diverged from the master ... | 'master_mailboxes'=40;;;0 'b1_mw_changes'=3;;1;0
//   CRITICAL backend-consistency b1: b1 diverged from the master (3 changes); run `murderctl sync-backends --backend b1`
//   OK mupdate-master mm: ...
//
// Everything goes to stdout; the state is told by the exit code (exitCodeFor in model.ts), the
// text only repeats it. `|` starts performance data wherever it appears, so it never appears in
// the text we print.
import {bySeverity, type CheckReport, type CheckResult, type PerfSpec} from './model.js'

/** Text for a plugin line: one line, no `|`. */
function pluginText(s: string): string {
  return s
    .replace(/\s*[\r\n]+\s*/g, ' ')
    .replace(/\|/g, '/')
    .trim()
}

/**
 * A perfdata label: anything but `'` and `=` is allowed (guidelines), but spaces and `|`
 * would confuse graphing add-ons and our own line, so every character outside a plain set
 * becomes `_`. Always quoted, which the format allows for any label.
 */
export function sanitizePerfLabel(raw: string): string {
  return raw.replace(/[^A-Za-z0-9_.:/@+-]/g, '_')
}

/** A perfdata number: plain decimal (no exponent, which Nagios parsers reject); `U` when not a finite number. */
export function perfNumber(v: number): string {
  if (!Number.isFinite(v)) return 'U'
  const s = String(v)
  if (!/e/i.test(s)) return s
  return v.toLocaleString('en-US', {useGrouping: false, maximumFractionDigits: 20})
}

const threshold = (t: PerfSpec['warn']): string => (t === undefined ? '' : typeof t === 'number' ? perfNumber(t) : t)

/** `'label'=value[UOM];warn;crit;min;max`, trailing empty fields dropped. */
export function perfItem(label: string, value: number, spec: PerfSpec = {}): string {
  const fields = [
    `'${sanitizePerfLabel(label)}'=${perfNumber(value)}${Number.isFinite(value) ? (spec.uom ?? '') : ''}`,
    threshold(spec.warn),
    threshold(spec.crit),
    spec.min === undefined ? '' : perfNumber(spec.min),
    spec.max === undefined ? '' : perfNumber(spec.max),
  ]
  while (fields.length > 1 && fields.at(-1) === '') fields.pop()
  return fields.join(';')
}

/**
 * All figures of all checks as one perfdata string. A figure of a check about one host is
 * labelled `<host>_<figure>` (`b1_mw_changes`); a murder-wide one keeps its name
 * (`master_mailboxes`). Labels must be unique: a clash is resolved by prefixing the check
 * name, then by a counter.
 */
export function formatPerfdata(checks: readonly CheckResult[]): string {
  const used = new Set<string>()
  const items: string[] = []
  for (const c of checks) {
    for (const [figure, value] of Object.entries(c.figures)) {
      const base = c.host ? `${c.host}_${figure}` : figure
      let label = sanitizePerfLabel(base)
      if (used.has(label)) label = sanitizePerfLabel(`${c.name}_${base}`)
      for (let n = 2; used.has(label); n++) label = sanitizePerfLabel(`${c.name}_${base}_${n}`)
      used.add(label)
      items.push(perfItem(label, value, c.perf?.[figure]))
    }
  }
  return items.join(' ')
}

/** `<STATE> <name>[ <host>]: <message>` */
export function nagiosLine(c: CheckResult): string {
  return pluginText(`${c.state} ${c.name}${c.host ? ` ${c.host}` : ''}: ${c.message}`)
}

/**
 * The whole plugin output, ending with a newline: the status line with all perfdata, then
 * the problems (most severe first), then the OK checks.
 */
export function formatNagios(report: CheckReport): string {
  const perf = formatPerfdata(report.checks)
  const first = `MURDER ${report.state}: ${pluginText(report.summary)}${perf ? ` | ${perf}` : ''}`
  const problems = bySeverity(report.checks.filter((c) => c.state !== 'OK'))
  const ok = report.checks.filter((c) => c.state === 'OK')
  return [first, ...problems.map(nagiosLine), ...ok.map(nagiosLine)].join('\n') + '\n'
}

/**
 * The output cut to what NRPE passes on (1 KiB by default in NRPE 4 and older): the status
 * line first (its perfdata trimmed to whole items if need be), then as many detail lines as fit,
 * problems first, and a last line saying how many were left out and where to read them all.
 */
export function fitNagios(text: string, maxBytes: number): string {
  if (maxBytes <= 0 || Buffer.byteLength(text) <= maxBytes) return text
  const [first, ...rest] = text.replace(/\n$/, '').split('\n')
  const budget = maxBytes - 80 // room for the "left out" line
  let head = first
  if (Buffer.byteLength(head) > budget / 2) {
    const [status, perf = ''] = head.split(' | ')
    const kept: string[] = []
    for (const item of perf.split(' ')) {
      if (Buffer.byteLength(`${status} | ${[...kept, item].join(' ')}`) > budget / 2) break
      kept.push(item)
    }
    head = kept.length ? `${status} | ${kept.join(' ')}` : status.slice(0, Math.floor(budget / 2))
  }
  const lines = [head]
  let used = Buffer.byteLength(head) + 1
  let i = 0
  for (; i < rest.length; i++) {
    const n = Buffer.byteLength(rest[i]) + 1
    if (used + n > budget) break
    lines.push(rest[i])
    used += n
  }
  if (i < rest.length) lines.push(`... ${rest.length - i} more lines: murderctl check --format json`)
  return `${lines.join('\n')}\n`
}

/** For bad arguments and internal errors (exit 3): `MURDER UNKNOWN: <reason>`, one line. */
export function formatNagiosUnknown(reason: string): string {
  return `MURDER UNKNOWN: ${pluginText(reason) || 'internal error'}\n`
}
