// replication audit for people: one block per pair, the mailboxes that differ, then the log events.
import type {AuditReport, MailboxAudit, PairAudit} from '../services/audit.js'
import type {RepairConflict} from '../services/repair.js'
import {table} from './table.js'

const short = (g: string) => g.slice(0, 12)

function mailboxLine(m: MailboxAudit): string {
  const bits: string[] = []
  if (m.status === 'missing-on-replica') bits.push('missing on the replica')
  if (m.status === 'missing-on-master') bits.push('missing on the master')
  for (const c of m.conflicts)
    bits.push(`UID ${c.uid} conflict: master ${short(c.master.guid)} (${c.master.size} B), replica ${short(c.replica.guid)} (${c.replica.size} B)`)
  if (m.onlyOnMaster.length) bits.push(`only on master: UID ${m.onlyOnMaster.join(',')}`)
  if (m.onlyOnReplica.length) bits.push(`only on replica: UID ${m.onlyOnReplica.join(',')}`)
  for (const f of m.flags) bits.push(`UID ${f.uid} flags: master (${f.master.join(' ')}), replica (${f.replica.join(' ')})`)
  for (const d of m.internalDates) bits.push(`UID ${d.uid} internaldate: master ${d.master}, replica ${d.replica}`)
  if (!bits.length && m.fields.length) bits.push(`differs in ${m.fields.join(', ')}`)
  return bits.join('; ') || 'in sync'
}

function pairBlock(p: PairAudit): string {
  const lines = [`${p.state} ${p.summary}`]
  if (p.roles) lines.push(`  master ${p.roles.master}, replica ${p.roles.replica}: decided by ${p.roles.decidedBy}`)
  for (const m of p.members) if (!m.readable) lines.push(`  ! ${m.host} cannot be read: ${m.error ?? 'unknown reason'}`)
  const k = p.counts
  lines.push(
    `  ${k.mailboxes} mailboxes compared, ${k.mailboxesComparedPerMessage} of them message by message (${k.messagesCompared} messages), in ${(p.durationMs / 1000).toFixed(1)}s`,
  )
  if (p.mailboxes.length) {
    lines.push('')
    lines.push(
      table(
        ['mailbox', 'status', 'what differs'],
        p.mailboxes.map((m) => [m.name, m.status, mailboxLine(m)]),
      )
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    )
  }
  if (p.syncErrors.length) {
    lines.push('', '  SYNCERROR guid mismatches in the logs:')
    for (const e of p.syncErrors) lines.push(`  ${e.time} ${e.host} ${e.mailbox} UID ${e.uid}: ${e.outcome.toUpperCase()}: ${e.detail}`)
  }
  if (p.otherSyncErrors.length) lines.push('', '  other SYNCERROR lines (last ones):', ...p.otherSyncErrors.map((l) => `  ${l}`))
  for (const n of p.notes) lines.push(`  note: ${n}`)
  return lines.join('\n')
}

export function renderAudit(r: AuditReport): string {
  return `${r.pairs.map(pairBlock).join('\n\n') || `UNKNOWN ${r.summary}`}\n`
}

/** The conflicts a repair works on: both versions of each, as inspected. */
export function renderConflicts(r: {master: string; replica: string; conflicts: RepairConflict[]}): string {
  const lines = [`${r.master} (master) / ${r.replica} (replica): ${r.conflicts.length} UID conflicts`]
  for (const c of r.conflicts) {
    lines.push(`  ${c.mailbox} UID ${c.uid}`)
    for (const side of ['master', 'replica'] as const) {
      const v = c[side]
      const h = c.inspect?.[side]
      lines.push(
        `    ${side.padEnd(7)} ${v.guid.slice(0, 12)} ${v.size} B flags (${v.flags.join(' ')})${h ? `  From: ${h.from ?? '?'}  Subject: ${h.subject ?? '?'}  Date: ${h.date ?? '?'}` : '  (file not readable)'}`,
      )
    }
  }
  return `${lines.join('\n')}\n`
}
