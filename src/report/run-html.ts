// The post-mortem as one self-contained HTML page: inline CSS and SVG, no script, no external
// asset, nothing fetched when it is opened (a strict Content-Security-Policy says so too).
import {html} from './escape.js'
import {ganttSvg, STATUS_COLOURS} from './gantt-svg.js'
import {changes, copyState} from './run-markdown.js'
import {type Cell, formatDuration, rollbackTables, type RunReport} from './run-report.js'

const table = (headers: string[], rows: string[][], cls = '') =>
  `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${headers.map((h) => `<th>${html(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`
const code = (s: unknown) => `<code>${html(s)}</code>`
const offset = (r: RunReport, ms: number) => `+${formatDuration(Math.max(0, ms - Date.parse(r.start)))}`

const OUTCOME_CLASS: Record<string, string> = {completed: 'good', 'dry run': 'info', 'rolled back': 'info'}

const CSS = `
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1160px}
h1{font-size:22px;margin-bottom:4px}h2{margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}code,pre{font-family:ui-monospace,monospace;font-size:12px}code{word-break:break-all}
pre{background:#f7f7f7;padding:8px;max-height:480px;overflow:auto;white-space:pre-wrap}
.outcome{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;background:#c62828;font-weight:bold}
.outcome.good{background:#2e7d32}.outcome.info{background:#1565c0}
.stop{border-left:4px solid #c62828;background:#fff3f3;padding:8px 12px}
.bad{color:#c62828;font-weight:bold}.ok{color:#2e7d32}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
details{margin:6px 0}summary{cursor:pointer}
`

const cellHtml = (c: Cell) => ('code' in c ? code(c.code) : 'strong' in c ? `<b>${html(c.strong)}</b>` : html(c.text))

function rollbackHtml(b: NonNullable<RunReport['rollback']>): string {
  const out = [
    `<h2 id="rollback">Rollback</h2><p>Started ${html(b.start)}${b.end ? `, ended ${html(b.end)}` : ''}: <b>${b.completed ? 'rolled back and verified' : 'not finished'}</b>${
      b.consent ? ` (consent: ${html(b.consent.by)})` : ''
    }.</p>`,
  ]
  for (const t of rollbackTables(b))
    out.push(
      `${t.caption ? `<p>${html(t.caption)}</p>` : ''}${table(
        t.headers,
        t.rows.map((r) => r.map(cellHtml)),
      )}`,
    )
  return out.join('\n')
}

export function renderRunHtml(r: RunReport): string {
  const s: string[] = []
  s.push(`<h1>Run report: ${html(r.command)}</h1><p>${code(r.run)}</p>`)
  s.push('<h2 id="summary">Summary</h2>')
  s.push(
    table(
      ['field', 'value'],
      [
        ['command', html(r.command)],
        ['murder', html(r.murder)],
        ['operator', html(r.operator)],
        ['start', html(r.start)],
        ['end', html(r.end)],
        ['duration', html(formatDuration(r.durationMs))],
        ['outcome', `<span class="outcome ${OUTCOME_CLASS[r.outcome] ?? ''}">${html(r.outcome)}</span>`],
        ...r.facts.map(([k, v]) => [html(k), html(v)]),
      ],
      'summary',
    ),
  )
  if (r.unreadableLines) s.push(`<p>${r.unreadableLines} journal lines could not be read and are left out.</p>`)
  if (r.stop)
    s.push(
      `<h2 id="stop">Where it stopped</h2><div class="stop"><p>Stopped ${html(r.stop.where)}: ${html(r.stop.reason)}</p><p>To continue: ${code(r.stop.resume)}</p>${
        r.stop.rollback
          ? `<p>To roll back what it did: ${code(r.stop.rollback)}</p>`
          : r.stop.noRollback
            ? `<p>It cannot be rolled back: ${html(r.stop.noRollback)}</p>`
            : ''
      }</div>`,
    )
  if (r.rollback) s.push(rollbackHtml(r.rollback))
  s.push('<h2 id="timeline">Timeline</h2>')
  if (r.timeline.length) {
    s.push(
      `<div class="legend">${Object.entries(STATUS_COLOURS)
        .map(([k, c]) => `<span><i style="background:${c}"></i>${html(k)}</span>`)
        .join('')}${r.consents.length ? '<span><i style="background:#1565c0;height:2px"></i>consent</span>' : ''}</div>`,
    )
    s.push(
      ganttSvg(
        r.timeline,
        r.consents.map((c) => ({at: Date.parse(c.at), label: `consent: ${c.step ? `step ${c.step}, ` : ''}${c.by}${c.who ? ` (${c.who})` : ''}`})),
      ),
    )
    s.push(
      `<details><summary>Every step on every host (${r.timeline.length})</summary>${table(
        ['step', 'host', 'start', 'took', 'status', 'detail'],
        r.timeline.map((u) => [
          html(u.step),
          html(u.host ?? 'murder-wide'),
          html(offset(r, u.start)),
          html(formatDuration(u.end - u.start)),
          `<span class="${u.status === 'failed' ? 'bad' : ''}">${html(u.status)}</span>`,
          html(u.detail ?? ''),
        ]),
      )}</details>`,
    )
  } else s.push('<p>No step ran.</p>')
  s.push('<h2 id="consent">Consent</h2>')
  s.push(
    r.consents.length
      ? table(
          ['at', 'step', 'question', 'given by', 'who'],
          r.consents.map((c) => [html(c.at), html(c.step ?? ''), html(c.gate ?? ''), html(c.by), html(c.who ?? 'not recorded')]),
        )
      : '<p>No consent was given in this run.</p>',
  )
  if (r.refusals.length)
    s.push(
      `<p class="bad">Not given:</p>${table(
        ['at', 'step', 'question', 'why'],
        r.refusals.map((c) => [html(c.at), html(c.step ?? ''), html(c.gate ?? ''), html(c.reason)]),
      )}`,
    )
  s.push('<h2 id="diff">Diff</h2>')
  if (!r.diffs.length) s.push('<p>No diff was kept for this run.</p>')
  for (const d of r.diffs) {
    s.push(`<h3>${html(d.step ? `step ${d.step}` : 'plan')}: ${changes(d.total)}</h3>`)
    s.push(
      `<p>${code(d.file)} &mdash; ${d.consent ? `<span class="ok">confirmed at ${html(d.consent.at)} (${html(d.consent.by)})</span>` : d.pushed ? 'pushed (this journal has no consent record)' : '<span class="bad">not confirmed: not pushed</span>'}</p>`,
    )
    const kinds = [...new Set(d.targets.flatMap((t) => t.kinds.map((k) => k.label)))]
    s.push(
      table(
        ['target', ...kinds],
        d.targets.map((t) => [html(t.target), ...kinds.map((k) => String(t.kinds.find((x) => x.label === k)?.items.length ?? 0))]),
        'diff-counts',
      ),
    )
    for (const t of d.targets) {
      const lines = t.kinds.flatMap((k) => k.items.map((i) => `${k.label}: ${i}`))
      if (lines.length)
        s.push(
          `<details class="diff-list"><summary>${html(t.target)}: all ${changes(lines.length)}</summary><pre>${lines.map(html).join('\n')}</pre></details>`,
        )
    }
  }
  s.push('<h2 id="copies">Copies kept</h2>')
  if (r.copies.length) {
    s.push(`<p>${r.copiesChecked.offline ? 'Not checked on the hosts (--offline).' : `Checked on their hosts at ${html(r.copiesChecked.at)}.`}</p>`)
    s.push(
      table(
        ['host', 'original', 'copy', 'sha256', 'kind', 'exists now'],
        r.copies.map((c) => [
          html(c.host),
          code(c.path ?? ''),
          code(c.copy),
          code(c.sha256 ?? ''),
          c.moved ? 'moved aside' : 'copied',
          `<span class="${c.now === 'present' ? 'ok' : c.now === 'unchecked' ? '' : 'bad'}">${html(copyState(c))}</span>`,
        ]),
        'copies',
      ),
    )
  } else s.push('<p>No copy was recorded.</p>')
  s.push('<h2 id="verification">Verification</h2>')
  if (!r.figures.length) s.push('<p>No verification figures in the journal.</p>')
  for (const f of r.figures)
    s.push(
      `<h3>${html(f.step)}${f.host ? ` on ${html(f.host)}` : ''}</h3>${table(
        ['figure', 'value'],
        f.rows.map(([k, v]) => [html(k), html(v)]),
      )}`,
    )
  if (r.commands.length)
    s.push(
      `<h2 id="commands">Commands</h2><details><summary>${r.commands.length} remote commands</summary>${table(
        ['at', 'step', 'host', 'command', 'exit', 'took', 'stdout sha256'],
        r.commands.map((c) => [
          html(offset(r, Date.parse(c.at))),
          html(c.step ?? ''),
          html(c.host ?? ''),
          code(c.command),
          html(c.exitCode ?? 'none'),
          html(c.durationMs === undefined ? '' : formatDuration(c.durationMs)),
          code((c.stdoutSha256 ?? '').slice(0, 16)),
        ]),
      )}</details>`,
    )
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(`murderctl ${r.command} ${r.run}: ${r.outcome}`)}</title>
<style>${CSS}</style>
</head>
<body>
${s.join('\n')}
<footer><p>murderctl report, made ${html(r.copiesChecked.at)}</p></footer>
</body>
</html>
`
}
