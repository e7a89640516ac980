// The reconcile report for the post-mortem: per user, what was recovered and where it went, the
// mailboxes recreated, the cutoff used, and the figures (at risk, recovered, lost).
import type {ReconcileResult} from '../services/reconcile.js'

export interface ReconcileReport {
  pair: string
  run: string
  oldMember: string
  newMember: string
  cutoff: ReconcileResult['plan']['cutoff']
  syncLogFiles: string[]
  figures: {
    atRisk: number
    recovered: number
    alreadyThere: number
    lost: number
    bytes: number
    mailboxesRecreated: number
    mailboxesRecovered: number
    uidCollisions: number
    flagDifferences: number
    durationMs: number
  }
  users: {
    user: string
    recovered: number
    recreated: string[]
    recoveredInto: {from: string; to: string; action: string; messages: number}[]
    flagDifferences: number
  }[]
  verified: boolean
  oldCleanup?: ReconcileResult['oldCleanup']
  replication?: ReconcileResult['replication']
  unfenced: boolean
}

export function reconcileReport(r: ReconcileResult): ReconcileReport {
  const p = r.plan
  const users = [...new Set(p.mailboxes.map((m) => m.owner ?? '(shared)'))].sort()
  const outcome = (src: string) => r.outcomes.find((o) => o.source === src)
  return {
    pair: p.pair,
    run: r.run,
    oldMember: p.oldMember,
    newMember: p.newMember,
    cutoff: p.cutoff,
    syncLogFiles: p.syncLogFiles,
    figures: {
      atRisk: p.totals.messages,
      recovered: r.outcomes.reduce((n, o) => n + o.appended.length, 0),
      alreadyThere: r.outcomes.reduce((n, o) => n + o.alreadyThere, 0),
      lost: r.lost,
      bytes: p.totals.bytes,
      mailboxesRecreated: p.totals.recreate,
      mailboxesRecovered: p.totals.recover,
      uidCollisions: p.totals.uidCollisions,
      flagDifferences: p.totals.flagDifferences,
      durationMs: r.durationMs,
    },
    users: users.map((u) => {
      const mine = p.mailboxes.filter((m) => (m.owner ?? '(shared)') === u)
      return {
        user: u,
        recovered: mine.reduce((n, m) => n + (outcome(m.source)?.appended.length ?? 0), 0),
        recreated: mine.filter((m) => m.action === 'recreate').map((m) => m.target),
        recoveredInto: mine
          .filter((m) => m.messages.length || m.action !== 'reinject')
          .map((m) => ({from: m.source, to: m.target, action: m.action, messages: outcome(m.source)?.appended.length ?? 0})),
        flagDifferences: mine.reduce((n, m) => n + m.flagDifferences.length, 0),
      }
    }),
    verified: r.verified,
    oldCleanup: r.oldCleanup,
    replication: r.replication,
    unfenced: r.unfenced,
  }
}

export function reconcileMarkdown(rep: ReconcileReport): string {
  const f = rep.figures
  const out = [
    `# Reconcile of pair ${rep.pair}: ${rep.oldMember} (old) -> ${rep.newMember} (master)`,
    '',
    `Run \`${rep.run}\`. Cutoff used: ${rep.cutoff ? `${rep.cutoff.at} (hard failover run \`${rep.cutoff.run}\`, ${rep.cutoff.file})` : 'none recorded (every mailbox compared)'}.`,
    `Unreplayed sync log files on ${rep.oldMember}: ${rep.syncLogFiles.length ? rep.syncLogFiles.map((x) => `\`${x}\``).join(', ') : 'none'}.`,
    '',
    '| messages at risk | recovered | already there | lost | bytes | mailboxes recreated | deleted mailboxes recovered | UID collisions | flag differences | time |',
    '|---|---|---|---|---|---|---|---|---|---|',
    `| ${f.atRisk} | ${f.recovered} | ${f.alreadyThere} | ${f.lost} | ${f.bytes} | ${f.mailboxesRecreated} | ${f.mailboxesRecovered} | ${f.uidCollisions} | ${f.flagDifferences} | ${(f.durationMs / 1000).toFixed(1)} s |`,
    '',
    `Verified (every GUID ${rep.oldMember} holds in the affected mailboxes is on ${rep.newMember}): **${rep.verified ? 'yes' : 'NO'}**.`,
  ]
  if (rep.oldCleanup)
    out.push(
      `On ${rep.oldMember} after verification: ${rep.oldCleanup.expunged} records expunged, ${rep.oldCleanup.copiesAside} message files copied aside first.`,
    )
  out.push(`FENCED mark lifted: ${rep.unfenced ? 'yes' : 'no'}.`)
  if (rep.replication)
    out.push(
      `Replication ${rep.newMember} -> ${rep.oldMember} for ${rep.replication.users.join(', ')}; members equal (GUID sets, ${rep.replication.compared} mailboxes): ${rep.replication.equal ? 'yes' : `NO (${rep.replication.differing.join(', ')})`}.`,
    )
  out.push('', '## Per user', '')
  for (const u of rep.users) {
    out.push(
      `### ${u.user}`,
      '',
      `Messages recovered: ${u.recovered}. Mailboxes recreated: ${u.recreated.length ? u.recreated.map((x) => `\`${x}\``).join(', ') : 'none'}. Flag differences (the master's flags stand): ${u.flagDifferences}.`,
      '',
    )
    if (u.recoveredInto.length) {
      out.push('| from (old) | to (master) | how | messages |', '|---|---|---|---|')
      for (const x of u.recoveredInto) out.push(`| \`${x.from}\` | \`${x.to}\` | ${x.action} | ${x.messages} |`)
      out.push('')
    }
  }
  return `${out.join('\n')}\n`
}
