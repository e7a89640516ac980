// The post-mortem as Markdown: renders on code-hosting sites and in a terminal pager alike.
// Long lists are folded in <details>; every journal value is escaped (mailbox names are user data).
import {html, md, mdCode, mdFence} from './escape.js'
import {type Cell, formatDuration, rollbackTables, type RunReport} from './run-report.js'

const row = (cells: string[]) => `| ${cells.map((c) => c || '—').join(' | ')} |`
const tableMd = (headers: string[], rows: string[][]) => [row(headers), row(headers.map(() => '---')), ...rows.map(row)].join('\n')
const offset = (r: RunReport, ms: number) => `+${formatDuration(Math.max(0, ms - Date.parse(r.start)))}`

export const changes = (n: number) => `${n} change${n === 1 ? '' : 's'}`

const NOW: Record<string, string> = {present: 'yes, same sha256', changed: 'CHANGED (sha256 differs)', missing: 'MISSING', unchecked: 'not checked'}

export function copyState(c: RunReport['copies'][number]): string {
  return `${NOW[c.now] ?? c.now}${c.now === 'unchecked' && c.reason ? ` (${c.reason})` : ''}`
}

export function renderRunMarkdown(r: RunReport): string {
  const out: string[] = []
  out.push(`# Run report: ${md(r.command)} ${md(r.run)}`)
  out.push('## Summary')
  out.push(
    tableMd(
      ['field', 'value'],
      [
        ['command', md(r.command)],
        ['murder', md(r.murder)],
        ['operator', md(r.operator)],
        ['start', md(r.start)],
        ['end', md(r.end)],
        ['duration', md(formatDuration(r.durationMs))],
        ['outcome', `**${md(r.outcome)}**`],
        ...r.facts.map(([k, v]) => [md(k), md(v)]),
      ],
    ),
  )
  if (r.unreadableLines) out.push(`${r.unreadableLines} journal lines could not be read (cut short or not JSON) and are left out.`)
  if (r.stop) {
    out.push('## Where it stopped')
    out.push(`Stopped ${md(r.stop.where)}: ${md(r.stop.reason)}`)
    out.push(`To continue: ${mdCode(r.stop.resume)}`)
    if (r.stop.rollback) out.push(`To roll back what it did: ${mdCode(r.stop.rollback)}`)
    else if (r.stop.noRollback) out.push(`It cannot be rolled back: ${r.stop.noRollback}`)
  }
  if (r.rollback) out.push(...rollbackMarkdown(r.rollback))
  out.push('## Timeline')
  out.push(
    r.timeline.length
      ? tableMd(
          ['step', 'host', 'start', 'took', 'status', 'detail'],
          r.timeline.map((u) => [
            md(u.step),
            md(u.host ?? 'murder-wide'),
            md(offset(r, u.start)),
            md(formatDuration(u.end - u.start)),
            md(u.status),
            md(u.detail ?? ''),
          ]),
        )
      : 'No step ran.',
  )
  out.push('## Consent')
  out.push(
    r.consents.length
      ? tableMd(
          ['at', 'step', 'question', 'given by', 'who'],
          r.consents.map((c) => [md(c.at), md(c.step ?? ''), md(c.gate ?? ''), md(c.by), md(c.who ?? 'not recorded')]),
        )
      : 'No consent was given in this run.',
  )
  if (r.refusals.length)
    out.push(
      `Not given:\n\n${tableMd(
        ['at', 'step', 'question', 'why'],
        r.refusals.map((c) => [md(c.at), md(c.step ?? ''), md(c.gate ?? ''), md(c.reason)]),
      )}`,
    )
  out.push('## Diff')
  if (!r.diffs.length) out.push('No diff was kept for this run.')
  for (const d of r.diffs) {
    out.push(`### ${md(d.step ? `step ${d.step}` : 'plan')}: ${changes(d.total)}`)
    out.push(
      `File: ${mdCode(d.file)}. ${d.consent ? `Confirmed at ${md(d.consent.at)} (${md(d.consent.by)}).` : d.pushed ? 'Pushed (this journal has no consent record).' : '**Not confirmed: not pushed.**'}`,
    )
    const kinds = [...new Set(d.targets.flatMap((t) => t.kinds.map((k) => k.label)))]
    out.push(
      tableMd(
        ['target', ...kinds.map(md)],
        d.targets.map((t) => [md(t.target), ...kinds.map((k) => String(t.kinds.find((x) => x.label === k)?.items.length ?? 0))]),
      ),
    )
    for (const t of d.targets) {
      const lines = t.kinds.flatMap((k) => k.items.map((i) => `${k.label}: ${i}`))
      if (!lines.length) continue
      out.push(`<details><summary>${html(t.target)}: all ${changes(lines.length)}</summary>\n\n${mdFence(lines)}\n\n</details>`)
    }
  }
  out.push('## Copies kept')
  out.push(
    r.copies.length
      ? `${r.copiesChecked.offline ? 'Not checked on the hosts (--offline).' : `Checked on their hosts at ${md(r.copiesChecked.at)}.`}\n\n${tableMd(
          ['host', 'original', 'copy', 'sha256', 'kind', 'exists now'],
          r.copies.map((c) => [md(c.host), mdCode(c.path ?? ''), mdCode(c.copy), mdCode(c.sha256 ?? ''), c.moved ? 'moved aside' : 'copied', md(copyState(c))]),
        )}`
      : 'No copy was recorded.',
  )
  out.push('## Verification')
  if (!r.figures.length) out.push('No verification figures in the journal.')
  for (const f of r.figures) {
    out.push(`### ${md(f.step)}${f.host ? ` on ${md(f.host)}` : ''}`)
    out.push(
      tableMd(
        ['figure', 'value'],
        f.rows.map(([k, v]) => [md(k), md(v)]),
      ),
    )
  }
  if (r.commands.length) {
    out.push('## Commands')
    out.push(
      `<details><summary>${r.commands.length} remote commands</summary>\n\n${tableMd(
        ['at', 'step', 'host', 'command', 'exit', 'took', 'stdout sha256'],
        r.commands.map((c) => [
          md(offset(r, Date.parse(c.at))),
          md(c.step ?? ''),
          md(c.host ?? ''),
          mdCode(c.command),
          md(c.exitCode ?? 'none'),
          md(c.durationMs === undefined ? '' : formatDuration(c.durationMs)),
          mdCode((c.stdoutSha256 ?? '').slice(0, 16)),
        ]),
      )}\n\n</details>`,
    )
  }
  return `${out.join('\n\n')}\n`
}

const cellMd = (c: Cell) => ('code' in c ? mdCode(c.code) : 'strong' in c ? `**${md(c.strong)}**` : md(c.text))

function rollbackMarkdown(b: NonNullable<RunReport['rollback']>): string[] {
  const out = ['## Rollback']
  out.push(
    `Started ${md(b.start)}${b.end ? `, ended ${md(b.end)}` : ''}: **${b.completed ? 'rolled back and verified' : 'not finished'}**${b.consent ? ` (consent: ${md(b.consent.by)})` : ''}.`,
  )
  for (const t of rollbackTables(b))
    out.push(
      `${t.caption ? `${md(t.caption)}\n\n` : ''}${tableMd(
        t.headers,
        t.rows.map((r) => r.map(cellMd)),
      )}`,
    )
  return out
}
