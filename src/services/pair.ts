// `pair status`: each replication pair as it is now (which member is master, configs, processes,
// sync log backlog, last replication error, FENCED marks) and its failover history from the
// run journals. Read-only.
import {z} from 'zod'
import {FailoverRecord, failoverHistory} from '../engine/history.js'
import type {MurderContext} from '../host/context.js'
import {activeOf, findPair, MemberState, type Pair, pairsOf, readMember} from '../host/pair.js'
import {listFences} from '../store/fence.js'
import {FenceMark} from '../store/fence.js'
import {mapLimit} from '../util/limit.js'

export {FailoverRecord}

export const PairStatus = z.object({
  pair: z.string(),
  servername: z.string(),
  active: z.string().nullable(),
  conflict: z.string().nullable(),
  members: z.array(MemberState.extend({fenced: FenceMark.nullable()})),
  history: z.array(FailoverRecord),
})
export type PairStatus = z.infer<typeof PairStatus>

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
