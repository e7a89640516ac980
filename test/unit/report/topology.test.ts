// status --format mermaid|dot: the structure of the diagrams, from the lab's real status facts.
import {readFileSync} from 'node:fs'
import {resolve} from 'node:path'
import {describe, expect, it} from 'vitest'
import {renderDot, renderMermaid, topology} from '../../../src/report/topology.js'
import type {MurderStatus} from '../../../src/services/status.js'
import {degraded, inventoryOf} from './status-fixture.js'

const status = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../fixtures/status/standard-lab.json'), 'utf8')) as MurderStatus

describe('murder topology', () => {
  it('healthy lab: every host, slave links, backend pushes, the pair with its active member', () => {
    const t = topology(status, inventoryOf(status))
    expect(t.nodes.map((n) => [n.name, n.health])).toEqual(['mupdate', 'fe1', 'fe2', 'b1', 'b2', 'b1r'].map((n) => [n, 'ok']))
    expect(t.edges.map((e) => `${e.from} ${e.kind} ${e.to}${e.broken ? ' broken' : ''}`)).toEqual([
      'h_fe1 slave h_mupdate',
      'h_fe2 slave h_mupdate',
      'h_b1 push h_mupdate',
      'h_b2 push h_mupdate',
      'h_b1 replication h_b1r',
    ])
    expect(t.pairs).toEqual([{id: 'pair_h_b1', label: 'pair b1', members: ['b1', 'b1r'], active: ['b1']}])
    expect(t.nodes.find((n) => n.name === 'b1r')!.lines).toContain('standby')
  })

  it('the lab with its master stopped (real status facts): master red, both slaves orange with red links', () => {
    const down = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../fixtures/status/master-down-lab.json'), 'utf8')) as MurderStatus
    const t = topology(down, inventoryOf(down))
    expect(Object.fromEntries(t.nodes.map((n) => [n.name, n.health]))).toEqual({mupdate: 'down', fe1: 'warn', fe2: 'warn', b1: 'ok', b2: 'ok', b1r: 'ok'})
    expect(t.nodes[0].lines).toContain('cyrus-master STOPPED')
    expect(t.edges.filter((e) => e.broken).map((e) => e.from)).toEqual(['h_fe1', 'h_fe2'])
    const text = renderMermaid(t)
    expect(text).toContain('linkStyle 0 stroke:#c62828')
    expect(text).toContain('class h_mupdate down')
  })

  it('degraded: colours and broken links follow the facts', () => {
    const t = topology(degraded(status), inventoryOf(status))
    const healthOf = Object.fromEntries(t.nodes.map((n) => [n.name, n.health]))
    expect(healthOf).toMatchObject({fe1: 'warn', b2: 'down', b1: 'warn', b1r: 'warn', mupdate: 'ok'})
    expect(t.edges.filter((e) => e.broken).map((e) => `${e.from} ${e.label}`)).toEqual(['h_fe1 slave DISCONNECTED', 'h_b1 sync_client stopped'])
    expect(t.pairs[0].active).toEqual(['b1', 'b1r'])
  })

  it('Mermaid: a flowchart whose every line is a statement Mermaid knows, ids declared before use', () => {
    const text = renderMermaid(topology(degraded(status), inventoryOf(status)))
    const lines = text.trim().split('\n')
    expect(lines[0]).toBe('flowchart LR')
    const declared = new Set<string>()
    let depth = 0
    let edges = 0
    for (const l of lines.slice(1).map((x) => x.trim())) {
      let m: RegExpExecArray | null
      if (l.startsWith('%%')) continue
      if ((m = /^(h_\w+)\["([^"]*)"\]$/.exec(l))) declared.add(m[1])
      else if (/^subgraph \w+\["[^"]*"\]$/.test(l)) depth++
      else if (l === 'end') depth--
      else if ((m = /^(h_\w+) (-->|-\.->|==>)\|"([^"]*)"\| (h_\w+)$/.exec(l))) {
        expect(declared.has(m[1]) && declared.has(m[4]), l).toBe(true)
        edges++
      } else if ((m = /^linkStyle (\d+) stroke:#[0-9a-f]{6},stroke-width:\dpx$/.exec(l))) expect(Number(m[1])).toBeLessThan(edges)
      else if (/^classDef (ok|warn|down) fill:#[0-9a-f]{6},stroke:#[0-9a-f]{6},color:#000$/.test(l)) continue
      else if ((m = /^class ([\w,]+) (ok|warn|down)$/.exec(l))) for (const id of m[1].split(',')) expect(declared.has(id), l).toBe(true)
      else throw new Error(`not a Mermaid statement this renderer writes: ${l}`)
    }
    expect(depth).toBe(0)
    expect(edges).toBe(5)
    expect(text).toContain('class h_b2 down')
  })

  it('Mermaid and dot escape labels', () => {
    const s = structuredClone(status)
    s.murder = 'lab "x" <y>'
    s.hosts[0].notes.push('n')
    const t = topology(s, inventoryOf(s))
    t.nodes[0].lines.push('a "quoted" <b> & #c')
    const mmd = renderMermaid(t)
    expect(mmd).toContain('a #34;quoted#34; #60;b#62; #38; #35;c')
    const dot = renderDot(t)
    expect(dot).toContain('label="standard murder lab \\"x\\" <y>"')
    expect(dot).toContain('\\na \\"quoted\\" <b> & #c"')
  })

  it('dot: a digraph with a cluster per pair and balanced braces', () => {
    const dot = renderDot(topology(status, inventoryOf(status)))
    expect(dot.startsWith('digraph murder {')).toBe(true)
    expect(dot.split('{').length).toBe(dot.split('}').length)
    expect(dot).toMatch(/subgraph cluster_pair_h_b1 \{\n\s+label="pair b1";/)
    expect(dot).toContain('h_fe1 -> h_mupdate [label="mupdate slave"];')
    expect(dot).toContain('h_b1 -> h_b1r [label="sync_client running", penwidth=2];')
  })
})
