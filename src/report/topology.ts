// The murder as a diagram (Mermaid flowchart or Graphviz dot), derived from `murderctl status`'s
// facts: master, frontends, backends, replication pairs, coloured by health; each mupdate
// slave's link to the master; each backend's push link; which member of a pair is active.
import type {Inventory} from '../inventory/schema.js'
import type {HostStatus, MurderStatus} from '../services/status.js'

export type Health = 'ok' | 'warn' | 'down'

export interface TopoNode {
  id: string
  name: string
  role: HostStatus['role']
  health: Health
  lines: string[]
}

export interface TopoEdge {
  from: string
  to: string
  label: string
  kind: 'slave' | 'push' | 'replication'
  /** A link that should be up and is not. */
  broken: boolean
}

export interface Topology {
  title: string
  nodes: TopoNode[]
  edges: TopoEdge[]
  pairs: {id: string; label: string; members: string[]; active: string[]}[]
}

const nodeId = (name: string) => `h_${name.replace(/[^A-Za-z0-9]/g, '_')}`

export function health(h: HostStatus): Health {
  if (!h.reachable || h.error || !h.cyrusMaster.running) return 'down'
  if (h.notes.length || h.mupdate.slaveConnected === false || (h.mupdate.banner && h.mupdate.banner !== 'master' && h.mupdate.banner !== 'slave')) return 'warn'
  return 'ok'
}

/** A pair member takes part in the murder when it points at the master or pushes at start. */
const participates = (h: HostStatus) => h.reachable && h.cyrusMaster.running && (Boolean(h.mupdateServer) || h.mupdatePush)

export function topology(status: MurderStatus, inv: Pick<Inventory, 'hosts'>): Topology {
  const byName = new Map(status.hosts.map((h) => [h.name, h]))
  const master = status.hosts.find((h) => h.role === 'mupdate-master')
  const pairs = inv.hosts
    .filter((h) => h.role === 'replica' && h.replicaOf && byName.has(h.replicaOf))
    .map((r) => {
      const members = [r.replicaOf!, r.name]
      return {id: `pair_${nodeId(r.replicaOf!)}`, label: `pair ${r.servername}`, members, active: members.filter((m) => participates(byName.get(m)!))}
    })
  const activeIn = (name: string) => pairs.find((p) => p.members.includes(name))
  const nodes: TopoNode[] = status.hosts.map((h) => {
    const pair = activeIn(h.name)
    const lines = [`${h.role} ${h.address}`]
    if (!h.reachable) lines.push(`UNREACHABLE`)
    else if (!h.cyrusMaster.running) lines.push('cyrus-master STOPPED')
    if (h.mailboxes) lines.push(`${h.mailboxes.total} mailboxes`)
    if (pair) lines.push(pair.active.includes(h.name) ? (pair.active.length > 1 ? 'ACTIVE (both members are!)' : 'active') : 'standby')
    const bothActive = pair && pair.active.length > 1 && pair.active.includes(h.name)
    const hh = health(h)
    return {id: nodeId(h.name), name: h.name, role: h.role, health: bothActive && hh === 'ok' ? 'warn' : hh, lines}
  })
  const edges: TopoEdge[] = []
  if (master) {
    for (const h of status.hosts) {
      if (h === master) continue
      if (h.mupdate.service === 'slave' || h.mupdate.slaveConnected !== null)
        edges.push({
          from: nodeId(h.name),
          to: nodeId(master.name),
          kind: 'slave',
          label: h.mupdate.slaveConnected ? 'mupdate slave' : 'slave DISCONNECTED',
          broken: !h.mupdate.slaveConnected,
        })
      else if ((h.role === 'backend' || h.role === 'replica') && participates(h))
        edges.push({from: nodeId(h.name), to: nodeId(master.name), kind: 'push', label: 'pushes mailboxes', broken: false})
    }
  }
  for (const h of status.hosts) {
    const target = h.replication.syncHost ? (status.hosts.find((x) => x.name === h.replication.syncHost || x.address === h.replication.syncHost) ?? null) : null
    if (target)
      edges.push({
        from: nodeId(h.name),
        to: nodeId(target.name),
        kind: 'replication',
        label: `sync_client ${h.replication.rollingClient}`,
        broken: h.replication.rollingClient !== 'running',
      })
  }
  return {title: `${status.mode} murder ${status.murder}`, nodes, edges, pairs}
}

const COLOURS: Record<Health, {fill: string; stroke: string}> = {
  ok: {fill: '#c8e6c9', stroke: '#2e7d32'},
  warn: {fill: '#ffe0b2', stroke: '#ef6c00'},
  down: {fill: '#ffcdd2', stroke: '#c62828'},
}

/** Mermaid label text: entity codes for what would end or break the quoted label. */
const mmd = (s: string) => s.replace(/[#"<>&]/g, (c) => `#${c.charCodeAt(0)};`)

export function renderMermaid(t: Topology): string {
  const out = ['flowchart LR', `  %% ${t.title.replace(/[\r\n]/g, ' ')}`]
  const node = (n: TopoNode) => `${n.id}["${[`<b>${mmd(n.name)}</b>`, ...n.lines.map(mmd)].join('<br/>')}"]`
  const inPair = new Set(t.pairs.flatMap((p) => p.members))
  for (const n of t.nodes) if (!inPair.has(n.name)) out.push(`  ${node(n)}`)
  for (const p of t.pairs) {
    out.push(`  subgraph ${p.id}["${mmd(p.label)}"]`)
    for (const m of p.members) out.push(`    ${node(t.nodes.find((n) => n.name === m)!)}`)
    out.push('  end')
  }
  t.edges.forEach((e) => {
    const arrow = e.kind === 'replication' ? '==>' : e.broken || e.kind === 'push' ? '-.->' : '-->'
    out.push(`  ${e.from} ${arrow}|"${mmd(e.label)}"| ${e.to}`)
  })
  t.edges.forEach((e, i) => {
    if (e.broken) out.push(`  linkStyle ${i} stroke:#c62828,stroke-width:2px`)
  })
  for (const [h, c] of Object.entries(COLOURS)) out.push(`  classDef ${h} fill:${c.fill},stroke:${c.stroke},color:#000`)
  for (const h of Object.keys(COLOURS) as Health[]) {
    const ids = t.nodes.filter((n) => n.health === h).map((n) => n.id)
    if (ids.length) out.push(`  class ${ids.join(',')} ${h}`)
  }
  return `${out.join('\n')}\n`
}

/** A dot string literal. */
const dq = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r?\n/g, '\\n')}"`

export function renderDot(t: Topology): string {
  const out = [
    'digraph murder {',
    `  label=${dq(t.title)};`,
    '  rankdir=LR;',
    '  node [shape=box, style="rounded,filled", fontname="sans-serif"];',
    '  edge [fontname="sans-serif", fontsize=10];',
  ]
  const node = (n: TopoNode) =>
    `${n.id} [label=${dq([n.name, ...n.lines].join('\n'))}, fillcolor=${dq(COLOURS[n.health].fill)}, color=${dq(COLOURS[n.health].stroke)}];`
  const inPair = new Set(t.pairs.flatMap((p) => p.members))
  for (const n of t.nodes) if (!inPair.has(n.name)) out.push(`  ${node(n)}`)
  for (const p of t.pairs) {
    out.push(`  subgraph cluster_${p.id} {`, `    label=${dq(p.label)};`, '    style=dashed;')
    for (const m of p.members) out.push(`    ${node(t.nodes.find((n) => n.name === m)!)}`)
    out.push('  }')
  }
  for (const e of t.edges)
    out.push(
      `  ${e.from} -> ${e.to} [label=${dq(e.label)}${e.broken ? ', color="#c62828", style=dashed' : e.kind === 'push' ? ', style=dashed' : e.kind === 'replication' ? ', penwidth=2' : ''}];`,
    )
  out.push('}')
  return `${out.join('\n')}\n`
}
