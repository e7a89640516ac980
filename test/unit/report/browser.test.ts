// The report's HTML and the status diagram in a real browser: Debian's Chromium, headless and
// offline. The screenshot must be a real picture; the DOM Chromium built must hold the timeline
// chart and the diff. The Mermaid diagram is parsed and drawn by Mermaid itself in that browser.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {describe, expect, it} from 'vitest'
import {renderRunHtml} from '../../../src/report/run-html.js'
import {buildRunReport} from '../../../src/report/run-report.js'
import {renderMermaid, topology} from '../../../src/report/topology.js'
import type {MurderStatus} from '../../../src/services/status.js'
import {CHROMIUM, dumpDom, screenshot} from '../../chromium.js'
import {gathered} from './fixtures.js'
import {degraded, inventoryOf} from './status-fixture.js'

const MERMAID = resolve(import.meta.dirname, '../../../node_modules/mermaid/dist/mermaid.min.js')

// CI installs Chromium (.ci/run): there its absence fails; elsewhere these tests are skipped.
describe.runIf(CHROMIUM || process.env.CI)('in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'murderctl-report-browser-'))

  for (const name of ['recover-master-completed', 'recover-master-stopped-at-diff', 'sync-backends-completed']) {
    it(`${name}: the page renders, with the timeline and the diff`, {timeout: 120_000}, async () => {
      const file = join(dir, `${name}.html`)
      writeFileSync(file, renderRunHtml(buildRunReport(gathered(name))))
      const png = join(dir, `${name}.png`)
      // A blank 1200x2000 page compresses to a few KB; text, tables and a chart do not.
      expect(await screenshot(file, png)).toBeGreaterThan(40_000)
      expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG')
      const dom = await dumpDom(file)
      expect(dom).toMatch(/<svg [^>]*class="gantt"/)
      expect(dom.match(/<g class="bar /g)!.length).toBeGreaterThan(3)
      expect(dom).toMatch(/<details class="diff-list"><summary>b1: all \d+ changes<\/summary><pre>/)
      expect(dom).toContain('Force Activate: user.')
      // The mailbox named <script> stayed text: no script element made it into the DOM.
      expect(dom).not.toMatch(/<script/i)
    })
  }

  it('the status diagram parses and draws in Mermaid (healthy and degraded murders, the README example)', {timeout: 180_000}, async () => {
    const status = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../fixtures/status/standard-lab.json'), 'utf8')) as MurderStatus
    const masterDown = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../fixtures/status/master-down-lab.json'), 'utf8')) as MurderStatus
    const readme = /```mermaid\n([\s\S]*?)```/.exec(readFileSync(resolve(import.meta.dirname, '../../../README.md'), 'utf8'))![1]
    for (const [label, text] of [
      ['healthy', renderMermaid(topology(status, inventoryOf(status)))],
      ['degraded', renderMermaid(topology(degraded(status), inventoryOf(status)))],
      ['master down (lab)', renderMermaid(topology(masterDown, inventoryOf(masterDown)))],
      ['README example', readme],
    ] as const) {
      const page = join(dir, `mermaid-${label}.html`)
      writeFileSync(
        page,
        `<!DOCTYPE html><html><body><div id="out">pending</div><script src="file://${MERMAID}"></script><script>
mermaid.initialize({startOnLoad: false, securityLevel: 'strict'});
const text = ${JSON.stringify(text).replace(/</g, '\\u003c')};
mermaid.parse(text).then(() => mermaid.render('murder', text)).then(({svg}) => { document.getElementById('out').innerHTML = svg })
  .catch((e) => { document.getElementById('out').textContent = ['MERMAID', 'FAILED'].join('_') + ': ' + (e && e.message) });
</script></body></html>`,
      )
      const dom = await dumpDom(page, ['--virtual-time-budget=15000'])
      expect(dom, label).not.toContain('MERMAID_FAILED')
      expect(dom, label).not.toContain('>pending<')
      expect(dom, label).toMatch(/<svg[^>]*id="murder"/)
      for (const host of ['mupdate', 'fe1', 'fe2', 'b1', 'b2', 'b1r']) expect(dom, `${label} ${host}`).toContain(`>${host}<`)
      expect(dom, label).toContain('pair b1')
    }
  })
})
