// The run's timeline as a Gantt chart in inline SVG: the hosts one under the other (and the
// steps that run on no single host), a row per step on each, a bar per attempt of the step. Long idle gaps (a run stopped for the
// night and resumed) are drawn as a short break, so seconds-long steps stay visible.
import {html} from './escape.js'
import {formatDuration, type TimelineUnit, type UnitStatus} from './run-report.js'

export const STATUS_COLOURS: Record<UnitStatus, string> = {
  done: '#2e7d32',
  ended: '#66bb6a',
  skipped: '#9e9e9e',
  failed: '#c62828',
  unfinished: '#ef6c00',
}

const WIDTH = 1100
const LABEL = 250
const LANE = 22
const TOP = 34
const BREAK = 28
const MIN_BAR = 4

interface Piece {
  from: number
  to: number
  /** Drawn as a fixed-width break instead of to scale. */
  gap: boolean
}

/** Busy spans and the idle gaps between them; gaps longer than `minGap` become breaks. */
function pieces(units: TimelineUnit[], minGap: number): Piece[] {
  const spans = units.map((u) => [u.start, Math.max(u.end, u.start)] as const).sort((a, b) => a[0] - b[0])
  const out: Piece[] = []
  for (const [s, e] of spans) {
    const last = out[out.length - 1]
    if (last && s <= last.to + minGap) last.to = Math.max(last.to, e)
    else {
      if (last) out.push({from: last.to, to: s, gap: true})
      out.push({from: s, to: e, gap: false})
    }
  }
  return out
}

/** 1, 2 or 5 times a power of ten milliseconds, at least `ms`. */
function niceStep(ms: number): number {
  const p = 10 ** Math.floor(Math.log10(Math.max(1, ms)))
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= ms) ?? 10 * p
}

/** A moment to mark across every row (a consent), with a label. */
export interface Mark {
  at: number
  label: string
}

/** An offset from the run's start, as precise as the tick spacing needs: 1.5 s, 2:00:01. */
function tickLabel(ms: number, every: number): string {
  if (ms < 60_000) return formatDuration(ms)
  const s = ms / 1000
  const sec = (s % 60).toFixed(every < 1000 ? 1 : 0).padStart(every < 1000 ? 4 : 2, '0')
  const min = Math.floor(s / 60) % 60
  const h = Math.floor(s / 3600)
  return h ? `${h}:${String(min).padStart(2, '0')}:${sec}` : `${min}:${sec}`
}

export function ganttSvg(units: TimelineUnit[], marks: Mark[] = []): string {
  if (!units.length) return ''
  // Rows grouped by host in order of first appearance, steps in order within each host.
  const hosts = [...new Set(units.map((u) => u.host ?? ''))]
  const lanes = hosts.flatMap((h) => [...new Set(units.filter((u) => (u.host ?? '') === h).map((u) => u.step))].map((step) => ({host: h, step})))
  const laneOf = (u: TimelineUnit) => lanes.findIndex((l) => l.host === (u.host ?? '') && l.step === u.step)
  const total = Math.max(...units.map((u) => u.end)) - Math.min(...units.map((u) => u.start))
  const ps = pieces(units, Math.max(10_000, total * 0.05))
  const breaks = ps.filter((p) => p.gap).length
  const scaled = ps.filter((p) => !p.gap).reduce((n, p) => n + (p.to - p.from), 0) || 1
  const plot = WIDTH - LABEL - 20 - breaks * BREAK
  // Where each piece starts on the x axis.
  let x = LABEL
  const placed = ps.map((p) => {
    const w = p.gap ? BREAK : ((p.to - p.from) / scaled) * plot
    const r = {...p, x, w}
    x += w
    return r
  })
  const xOf = (time: number) => {
    // A time on the edge of a break belongs to the busy piece beside it.
    const p =
      placed.find((q) => !q.gap && time >= q.from && time <= q.to) ??
      placed.find((q) => time >= q.from && time <= q.to) ??
      (time < placed[0].from ? placed[0] : placed[placed.length - 1])
    if (p.gap) return p.x + p.w / 2
    return p.x + (p.to === p.from ? 0 : ((Math.min(Math.max(time, p.from), p.to) - p.from) / (p.to - p.from)) * p.w)
  }
  const t0 = placed[0].from
  const height = TOP + lanes.length * LANE + (marks.length || breaks ? 22 : 8)
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="gantt" role="img" aria-label="timeline of steps per host" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>Timeline of steps per host</title>`,
  ]
  lanes.forEach((lane, i) => {
    const y = TOP + i * LANE
    const first = i === 0 || lanes[i - 1].host !== lane.host
    out.push(`<rect x="0" y="${y}" width="${WIDTH}" height="${LANE}" fill="${hosts.indexOf(lane.host) % 2 ? '#ffffff' : '#eef3f8'}"/>`)
    if (first) {
      out.push(`<line x1="0" y1="${y}" x2="${WIDTH}" y2="${y}" stroke="#9ab"/>`)
      out.push(`<text x="6" y="${y + 15}" font-weight="bold">${html(lane.host || 'murder-wide')}</text>`)
    }
    out.push(`<text x="${LABEL - 8}" y="${y + 15}" text-anchor="end" class="step-label">${html(lane.step)}</text>`)
  })
  let lastLabel = -Infinity
  // Time ticks at round offsets from the run's first event; breaks labelled with the pause.
  for (const p of placed) {
    if (p.gap) {
      out.push(`<rect x="${p.x.toFixed(1)}" y="${TOP - 6}" width="${p.w.toFixed(1)}" height="${lanes.length * LANE + 12}" fill="url(#gap)" opacity="0.6"/>`)
      out.push(
        `<text x="${(p.x + p.w / 2).toFixed(1)}" y="${TOP + lanes.length * LANE + 14}" text-anchor="middle" fill="#555">+${html(formatDuration(p.to - p.from))}</text>`,
      )
      continue
    }
    // Ticks at round offsets from the run's start, about one per 110 px.
    const every = niceStep(((p.to - p.from) / Math.max(1, p.w)) * 110)
    for (let time = Math.ceil((p.from - t0) / every) * every + t0; time <= p.to; time += every) {
      const tx = xOf(time)
      out.push(`<line x1="${tx.toFixed(1)}" y1="${TOP - 4}" x2="${tx.toFixed(1)}" y2="${TOP + lanes.length * LANE}" stroke="#ccc"/>`)
      // Labels on either side of a break would overlap: the later one gives way.
      if (tx - lastLabel < 60) continue
      lastLabel = tx
      out.push(`<text x="${tx.toFixed(1)}" y="${TOP - 8}" text-anchor="middle" fill="#555">${html(tickLabel(time - t0, every))}</text>`)
    }
  }
  out.splice(
    2,
    0,
    '<defs><pattern id="gap" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#bbb"/></pattern></defs>',
  )
  for (const u of units) {
    const x1 = xOf(u.start)
    const w = Math.max(MIN_BAR, xOf(u.end) - x1)
    const y = TOP + laneOf(u) * LANE + 4
    const tip = `${u.step}${u.host ? ` on ${u.host}` : ''}: ${u.status}, ${formatDuration(u.end - u.start)}${u.detail ? ` (${u.detail})` : ''}`
    out.push(
      `<g class="bar ${u.status}"><title>${html(tip)}</title><rect x="${x1.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${LANE - 8}" rx="3" fill="${STATUS_COLOURS[u.status]}"/></g>`,
    )
  }
  for (const m of marks) {
    const mx = xOf(m.at).toFixed(1)
    out.push(
      `<g class="mark"><title>${html(m.label)}</title><line x1="${mx}" y1="${TOP}" x2="${mx}" y2="${TOP + lanes.length * LANE}" stroke="#1565c0" stroke-width="2" stroke-dasharray="4 3"/>` +
        `<text x="${mx}" y="${TOP + lanes.length * LANE + 14}" text-anchor="middle" fill="#1565c0">${html(m.label.split(':')[0])}</text></g>`,
    )
  }
  out.push('</svg>')
  return out.join('\n')
}
