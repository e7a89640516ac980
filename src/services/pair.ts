// `pair status`: each replication pair as it is now (which member is master, configs, processes,
// sync log backlog, last replication error, FENCED marks) and its failover history from the
// run journals. Read-only.
import {existsSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {z} from 'zod'
import {Journal} from '../engine/journal.js'
import type {MurderContext} from '../host/context.js'
import {activeOf, findPair, MemberState, type Pair, pairsOf, readMember} from '../host/pair.js'
import {listFences} from '../store/fence.js'
import {FenceMark} from '../store/fence.js'
import {mapLimit} from '../util/limit.js'

export const FailoverRecord = z.object({
  run: z.string(),
  pair: z.string(),
  kind: z.enum(['controlled', 'hard', 'fence']),
  from: z.string(),
  to: z.string(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  outcome: z.enum(['done', 'failed', 'refused', 'incomplete', 'dry-run']),
  serviceGapMs: z.number().nullable(),
})
export type FailoverRecord = z.infer<typeof FailoverRecord>

export const PairStatus = z.object({
  pair: z.string(),
  servername: z.string(),
  active: z.string().nullable(),
  conflict: z.string().nullable(),
  members: z.array(MemberState.extend({fenced: FenceMark.nullable()})),
  history: z.array(FailoverRecord),
})
export type PairStatus = z.infer<typeof PairStatus>

/** Every failover (and fence) run of this pair, oldest first, from the journals' run-start and run-end events. */
export function failoverHistory(stateDir: string, pair: string): FailoverRecord[] {
  const runs = join(stateDir, 'runs')
  if (!existsSync(runs)) return []
  const out: FailoverRecord[] = []
  for (const run of readdirSync(runs).sort()) {
    if (!/-(failover|fence)-/.test(run)) continue
    let events
    try {
      events = Journal.open(stateDir, run).events()
    } catch {
      continue
    }
    const start = events.find((e) => e.event === 'run-start')
    const d = start?.data as {pair?: string; kind?: string; from?: string; to?: string; dryRun?: boolean} | undefined
    if (!start || !d || d.pair !== pair) continue
    const end = [...events].reverse().find((e) => e.event === 'run-end')
    const ed = end?.data as {outcome?: string; serviceGapMs?: number} | undefined
    out.push({
      run,
      pair,
      kind: (d.kind as FailoverRecord['kind']) ?? 'controlled',
      from: d.from ?? '?',
      to: d.to ?? '?',
      startedAt: start.at,
      endedAt: end?.at ?? null,
      outcome: d.dryRun ? 'dry-run' : ed?.outcome === 'done' || ed?.outcome === 'failed' || ed?.outcome === 'refused' ? ed.outcome : 'incomplete',
      serviceGapMs: ed?.serviceGapMs ?? null,
    })
  }
  return out
}

export async function onePairStatus(ctx: MurderContext, pair: Pair): Promise<PairStatus> {
  const reads = await Promise.all(pair.members.map((m) => readMember(ctx, m)))
  const fences = listFences(ctx.inv.stateDir)
  const {active, conflict} = activeOf(reads.map((r) => r.state))
  return {
    pair: pair.name,
    servername: pair.servername,
    active,
    conflict,
    members: reads.map((r) => ({...r.state, fenced: fences.find((f) => f.member === r.state.name) ?? null})),
    history: failoverHistory(ctx.inv.stateDir, pair.name),
  }
}

export async function pairStatus(ctx: MurderContext, name?: string): Promise<PairStatus[]> {
  const pairs = name ? [findPair(ctx.inv, name)] : pairsOf(ctx.inv)
  return mapLimit(pairs, ctx.concurrency, (p) => onePairStatus(ctx, p))
}
