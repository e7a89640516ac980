// The recover-master diff as a person reads it before confirming.
import type {PushDiff} from '../engine/context.js'
import {table} from './table.js'

const FIRST = 5

export function renderPushDiffs(diffs: PushDiff[]): string {
  const out = [
    table(
      ['backend', 'activate', 'remove from mupdate', 'unflag remote', 'delete local', 'remote entries left out'],
      diffs.map((d) => [d.backend, d.activate.length, d.removeFromMupdate.length, d.removeRemoteFlag.length, d.removeLocal.length, d.claimsAvoided.length]),
    ),
  ]
  for (const d of diffs) {
    const kinds: [string, string[]][] = [
      ['Force Activate', d.activate],
      ['Remove from MUPDATE', d.removeFromMupdate],
      ['Remove remote flag on', d.removeRemoteFlag],
      ['Remove Local Mailbox', d.removeLocal],
    ]
    for (const [label, xs] of kinds) {
      for (const x of xs.slice(0, FIRST)) out.push(`  ${d.backend}: ${label}: ${x}`)
      if (xs.length > FIRST) out.push(`  ${d.backend}: ... and ${xs.length - FIRST} more ${label}`)
    }
  }
  return out.join('\n')
}
