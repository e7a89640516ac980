// How a sync plan and its outcome read on a terminal: a summary per backend, then the first
// lines of each kind of change; the full list goes to a file.
import type {PushDiff} from '../engine/context.js'
import type {ApplyResult, BackendDiff, SyncPlan} from '../services/sync.js'
import {changeCount} from '../services/sync.js'
import {table} from './table.js'

const FIRST = 5

type Row = Pick<BackendDiff, 'backend' | 'ok' | 'error' | 'warn' | 'conflicts'> & {localMailboxes?: number}

function renderBackends(rows: Row[]): string[] {
  const out = [
    table(
      ['backend', 'state', 'local', 'activate', 'remove from mupdate', 'unflag remote', 'DELETE LOCAL', 'conflicts'],
      rows.map((b) =>
        b.ok
          ? [
              b.backend,
              changeCount(b as BackendDiff) + b.conflicts.length ? 'diverged' : 'in sync',
              b.localMailboxes ?? null,
              b.warn!.activate.length,
              b.warn!.removeFromMupdate.length,
              b.warn!.removeRemoteFlag.length,
              b.warn!.removeLocal.length,
              b.conflicts.length,
            ]
          : [b.backend, 'FAILED', null, null, null, null, null, null],
      ),
    ),
  ]
  for (const b of rows) {
    if (!b.ok) {
      out.push(`\n${b.backend}: ${b.error?.message}${b.error?.hint ? `\n  what to do: ${b.error.hint}` : ''}`)
      continue
    }
    const kinds: [string, string[]][] = [
      ['Force Activate', b.warn!.activate],
      ['Remove from MUPDATE', b.warn!.removeFromMupdate],
      ['Remove remote flag on', b.warn!.removeRemoteFlag],
      ['Remove Local Mailbox', b.warn!.removeLocal],
      ['Conflict (master places it elsewhere)', b.conflicts.map((c) => `${c.mailbox} -> ${c.masterSays}`)],
    ]
    const shown = kinds.filter(([, xs]) => xs.length)
    if (!shown.length) continue
    out.push(`\n${b.backend}:`)
    for (const [label, xs] of shown) {
      for (const x of xs.slice(0, FIRST)) out.push(`  ${label}: ${x}`)
      if (xs.length > FIRST) out.push(`  ... and ${xs.length - FIRST} more ${label}`)
    }
  }
  return out
}

export function renderPlan(plan: SyncPlan, fullPath?: string): string {
  const out = [`master ${plan.master.host}: ${plan.master.entries} mailboxes`, ...renderBackends(plan.backends)]
  if (fullPath) out.push(`\nfull plan: ${fullPath}`)
  return out.join('\n')
}

/** The diff gate: what the push will do on each backend that diffed, with the full diff's path. */
export function renderSyncDiffs(diffs: PushDiff[], fullPath: string): string {
  const rows = [...diffs]
    .sort((a, b) => a.backend.localeCompare(b.backend))
    .map((d): Row => ({backend: d.backend, ok: true, warn: d, conflicts: d.conflicts ?? []}))
  return [...renderBackends(rows), `\nfull diff: ${fullPath}`].join('\n')
}

export function renderOutcome(result: ApplyResult): string {
  const out = [
    table(
      ['backend', 'pushed', 'verified (-m -w empty)', 'note'],
      result.backends.map((b) => [b.backend, b.applied ? 'yes' : 'no', b.verified ? 'yes' : 'NO', b.skipped ?? '']),
    ),
    '',
    `${result.agreed ? 'agree' : 'DISAGREE'}: ${result.agreement.map((a) => `${a.host}=${a.entries}`).join(', ')}`,
  ]
  const copies = [...result.savedCopies, ...result.backends.flatMap((b) => b.savedCopies)]
  if (copies.length) out.push(`copies kept: ${copies.map((c) => `${c.host}:${c.copy}`).join(', ')}`)
  return out.join('\n')
}
