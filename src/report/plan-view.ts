// The plan a person reads before the first change: each mutating step, on which hosts, doing what.
import type {PlannedStep} from '../engine/engine.js'

export function renderPlan(plan: PlannedStep[]): string {
  const lines = ['The plan: these steps change hosts, in this order.']
  for (const [i, s] of plan.entries()) {
    lines.push(`${String(i + 1).padStart(2)}. ${s.title}${s.confirm ? '  (shows its diff and asks again)' : ''}${s.undo ? `  [undo: ${s.undo}]` : ''}`)
    // Hosts doing the same thing are listed on one line.
    const byDoes = new Map<string, string[]>()
    for (const h of s.hosts) byDoes.set(h.does, [...(byDoes.get(h.does) ?? []), h.host ?? '-'])
    for (const [does, hosts] of byDoes) lines.push(`      ${hosts.join(', ')}: ${does}`)
  }
  return lines.join('\n')
}
