// A replication pair's failover history, read from the run journals (every failover and fence
// run journals its pair, direction and outcome).
import {existsSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {z} from 'zod'
import {Journal} from './journal.js'

export const FailoverRecord = z.object({
  run: z.string(),
  pair: z.string(),
  kind: z.enum(['controlled', 'hard', 'fence', 'replicate']),
  from: z.string(),
  to: z.string(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  outcome: z.enum(['done', 'failed', 'refused', 'incomplete', 'dry-run']),
  /** From the old master stopping (hard: the first change) until a frontend served the pair again. */
  serviceGapMs: z.number().nullable(),
})
export type FailoverRecord = z.infer<typeof FailoverRecord>

/** Every failover, fence and replicate run of this pair, oldest first. */
export function failoverHistory(stateDir: string, pair: string): FailoverRecord[] {
  const runs = join(stateDir, 'runs')
  if (!existsSync(runs)) return []
  const out: FailoverRecord[] = []
  for (const run of readdirSync(runs).sort()) {
    if (!/-(failover|failover-dry|fence|replicate)-/.test(run)) continue
    let events
    try {
      events = Journal.open(stateDir, run).events()
    } catch {
      continue
    }
    const start = events.find((e) => e.event === 'run-start')
    const raw = start?.data as ({options?: Record<string, unknown>; dryRun?: boolean} & Record<string, unknown>) | undefined
    const d = (raw?.options ?? raw) as {pair?: string; kind?: string; from?: string; to?: string} | undefined
    if (!start || !d || d.pair !== pair) continue
    const end = [...events].reverse().find((e) => e.event === 'run-end')
    const ed = end?.data as {outcome?: string; completed?: boolean} | undefined
    const mark = (name: string) => (events.find((e) => e.event === 'note' && (e.data as {mark?: string})?.mark === name)?.data as {at?: number} | undefined)?.at
    const begin = mark('stopStartedAt') ?? mark('firstChangeAt')
    const served = mark('servedAt')
    // Not confirmed, or a precondition said no (anti-flapping, lag, FENCED): refused, not failed.
    const refused = events.some(
      (e) =>
        (e.event === 'note' && (e.data as {confirmed?: boolean})?.confirmed === false) ||
        (e.event === 'step-failed' && ['refused', 'needsConfirmation'].includes((e.data as {code?: string})?.code ?? '')),
    )
    const failed = events.some((e) => e.event === 'step-failed')
    const outcome: FailoverRecord['outcome'] = raw?.dryRun
      ? 'dry-run'
      : ed?.completed === true || ed?.outcome === 'done'
        ? 'done'
        : ed?.outcome === 'refused' || refused
          ? 'refused'
          : failed || ed?.outcome === 'failed'
            ? 'failed'
            : 'incomplete'
    out.push({
      run,
      pair,
      kind: (d.kind as FailoverRecord['kind']) ?? 'controlled',
      from: d.from ?? '?',
      to: d.to ?? '?',
      startedAt: start.at,
      endedAt: end?.at ?? null,
      outcome,
      serviceGapMs: begin && served ? served - begin : null,
    })
  }
  return out
}
