// The timeline chart: rows per host and step, long pauses drawn as breaks, text escaped.
import {describe, expect, it} from 'vitest'
import {ganttSvg} from '../../../src/report/gantt-svg.js'
import type {TimelineUnit} from '../../../src/report/run-report.js'

const u = (step: string, host: string | null, start: number, end: number, status: TimelineUnit['status'] = 'done'): TimelineUnit => ({
  step,
  host,
  start,
  end,
  status,
})

describe('ganttSvg', () => {
  it('a run stopped for two hours and resumed: a break, not two hours to scale', () => {
    const t = Date.parse('2026-11-28T10:00:00Z')
    const svg = ganttSvg(
      [u('diff', 'b1', t, t + 2000), u('push', 'b1', t + 7_200_000, t + 7_203_000), u('verify', null, t + 7_203_000, t + 7_204_000)],
      [{at: t + 7_199_000, label: 'consent: step diff, prompt'}],
    )
    expect(svg).toContain('+120 min')
    expect(svg).toContain('>2:00:01<')
    const widths = [...svg.matchAll(/<g class="bar done"><title>[^<]*<\/title><rect x="[\d.]+" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]))
    // Seconds-long steps stay wide: the pause does not squash them.
    expect(Math.min(...widths)).toBeGreaterThan(100)
    expect(svg.match(/class="step-label"/g)).toHaveLength(3)
    expect(svg).toContain('>murder-wide<')
    expect(svg).toContain('<g class="mark"><title>consent: step diff, prompt</title>')
  })

  it('escapes host and step names and details', () => {
    const svg = ganttSvg([{...u('<x>&', 'h"1', 0, 10, 'failed'), detail: 'mailbox <script>'}])
    expect(svg).not.toMatch(/<x>|<script>/)
    expect(svg).toContain('&lt;x&gt;&amp;')
    expect(svg).toContain('h&quot;1')
  })

  it('nothing to draw without units', () => {
    expect(ganttSvg([])).toBe('')
  })
})
