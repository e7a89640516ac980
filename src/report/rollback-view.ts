// What a --rollback RUN prints, whichever command's run it undoes: the plan of a dry run, the
// copies kept rather than put back, and each check after.
import type {RollbackResult} from '../services/runs.js'
import {renderPlan} from './plan-view.js'

export function renderRollback(r: RollbackResult): string {
  const lines: string[] = []
  if (r.dryRun) lines.push('', renderPlan(r.plan))
  for (const n of r.notRestored) lines.push(`kept, not restored: ${n.host}:${n.copy} (${n.reason})`)
  for (const v of r.verified) lines.push(`${v.ok ? 'ok' : 'NOT OK'}  ${v.host}: ${v.check}: ${v.detail}`)
  lines.push('', `${r.dryRun ? 'dry run: nothing was changed' : `run ${r.run} rolled back and verified`}; journal: ${r.journal}`)
  return lines.join('\n')
}
