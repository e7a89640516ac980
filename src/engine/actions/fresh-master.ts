// A push into the master this run emptied (recover-master from the backends) need not ask the
// master about each mailbox. Without -a, `ctl_mboxlist -m` (and -m -w) sends a FIND for every
// local mailbox missing from the master's LIST: against an empty master that is every mailbox,
// the answer is "not found", and the mailbox is activated (ctl_mboxlist.c, pop_mupdate_cb).
// With -a it is activated straight away: the same lines and the same pushes, without a round
// trip per mailbox (2 x 20,000 on the lab: -m -w 2.8 s -> 0.45 s).
// The answer differs only for a mailbox the master places on another server, and on a master
// that only these backends fill, that is a mailbox live on two of them. Plain -m makes the
// backends race for it and the loser deletes its copy (standard) or is silently left out
// (unified); -a would let the last one win. Either way the operator must decide first, so such
// a name refuses the run before anything is changed.
import {countEntriesOnHost} from '../../host/mboxlist.js'
import {hostsByRole, master} from '../../inventory/load.js'
import {RefusedError} from '../../errors.js'
import {type RunContext, sharedFact} from '../context.js'
import type {Step} from '../schema.js'
import {localMailboxes} from './local-lists.js'

/**
 * Live local mailboxes held by more than one backend, each with the backends holding it. Looked
 * up in the other backends' sets rather than gathered in one map: at 2 x 100,000 that map would
 * be the run's largest object, for what is normally an empty answer.
 */
export function overlaps(lists: ReadonlyMap<string, ReadonlySet<string>>): {mailbox: string; backends: string[]}[] {
  const all = [...lists]
  const found: {mailbox: string; backends: string[]}[] = []
  const reported = new Set<string>()
  for (let i = 0; i < all.length; i++)
    for (const name of all[i][1]) {
      if (reported.has(name)) continue
      const backends = [all[i][0]]
      for (let j = i + 1; j < all.length; j++) if (all[j][1].has(name)) backends.push(all[j][0])
      if (backends.length > 1) {
        found.push({mailbox: name, backends})
        reported.add(name)
      }
    }
  return found
}

/**
 * Refuses when a live local mailbox is on two backends (the backends' lists are read once per
 * run, see local-lists.ts). Answered once per invocation: before a new run's first step (the
 * diff's precheck), else by the first step that asks (a resumed run's diff or push). Not asked
 * again by each host's push: one backend's push must not depend on reading another backend (a
 * backend lost mid-push stops only its own unit). A mailbox made on a second backend since is
 * still caught after the push (the push's post-condition or verify: -m -w prints it on the
 * backend that lost it), and -a deleted nothing.
 */
export function assertBackendsDisjoint(rc: RunContext, step: Step): Promise<void> {
  return sharedFact(rc, 'backends-disjoint', async () => {
    const backends = hostsByRole(rc.murder.inv, 'backend')
    const lists = new Map(await Promise.all(backends.map(async (b) => [b.name, (await localMailboxes(rc, b, step.id)).names] as const)))
    const both = overlaps(lists)
    if (!both.length) return
    const shown = both
      .slice(0, 5)
      .map((o) => `${o.mailbox} on ${o.backends.join(' and ')}`)
      .join(', ')
    throw new RefusedError(`${both.length} mailboxes are live on more than one backend (${shown}${both.length > 5 ? ', ...' : ''})`, {
      step: step.id,
      hint: "pushed into an empty master, one backend's copy would win and the other's be deleted or left out: decide which backend really holds each (compare their messages), rename or remove the other copy, then run again",
    })
  })
}

/** Whether the master's mailbox list holds no entry at all (counted on its host), once per step. */
export function masterIsEmpty(rc: RunContext, step: Step): Promise<boolean> {
  return sharedFact(rc, `master-empty@${step.id}`, async () => (await countEntriesOnHost(rc.murder, master(rc.murder.inv), step.id)).total === 0)
}
