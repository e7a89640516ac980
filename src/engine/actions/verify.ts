// The murder is whole again: every backend's -m -w empty, the master holds exactly the union
// of the backends' local mailboxes, and the slaves are connected and agree with it.
import {z} from 'zod'
import {AbortError} from '../../errors.js'
import {countEntriesOnHost, mailboxLocations, mupdateWarn} from '../../host/mboxlist.js'
import {hostsByRole, master, slaveHosts} from '../../inventory/load.js'
import {mapLimit} from '../../util/limit.js'
import {checkCondition} from '../conditions.js'
import type {RunContext} from '../context.js'
import type {Step} from '../schema.js'
import {localMailboxes} from './local-lists.js'
import {defineAction} from './types.js'

async function verifyMurder(rc: RunContext, step: Step) {
  const ctx = rc.murder
  const m = master(ctx.inv)
  const backends = hostsByRole(ctx.inv, 'backend')
  const slaves = slaveHosts(ctx.inv)
  const problems: string[] = []
  // The checks read different hosts (or the same ones read-only): all at once, so the run waits
  // for the slowest of them (the slaves catching up) rather than their sum.
  // The master must hold exactly the union of the backends' local mailboxes, each where it lives.
  // Each backend's list as the preflight read it, unless its mailboxes.db changed since.
  const expected = new Map<string, string>()
  const expectedP = Promise.all(
    backends.map(async (b) => {
      const {names, reread} = await localMailboxes(rc, b, step.id)
      for (const n of names) expected.set(n, b.servername)
      return {host: b.name, reread}
    }),
  )
  const masterP = mailboxLocations(ctx, m, step.id)
  // Slaves take a moment to hear the last pushes: wait for them to agree, up to a minute. The
  // first round is read while the master's list is (only its count is compared: counted on the
  // slave's host, no dump crosses SSH).
  let finished = false
  const slavesP = (async () => {
    const deadline = Date.now() + 60_000
    for (;;) {
      const round = mapLimit(slaves, ctx.concurrency, async (s) => {
        const [counts, connected] = await Promise.all([countEntriesOnHost(ctx, s, step.id), checkCondition(rc, 'slave-connected', s)])
        return {host: s.name, entries: counts.total, connected: connected.ok}
      })
      const [agreement, want] = await Promise.all([round, masterP.then((x) => x.locations.size)])
      if (finished || agreement.every((a) => a.entries === want && a.connected) || Date.now() > deadline) return agreement
      await new Promise((r) => setTimeout(r, 250))
    }
  })()
  // A unified backend's -m -w also reads its remote entries, which its slave may still be
  // bringing up to date: a non-empty answer there counts once the slaves agree.
  const mwP = mapLimit(backends, ctx.concurrency, async (b) => {
    let changes = (await mupdateWarn(ctx, b, step.id)).changes
    if (changes && ctx.inv.mode === 'unified') {
      await slavesP.catch(() => {})
      changes = (await mupdateWarn(ctx, b, step.id)).changes
    }
    return {host: b.name, changes}
  })
  // A check that fails ends the wait of the others.
  const [mw, lists, {locations}, slavesAgree] = await Promise.all([mwP, expectedP, masterP, slavesP]).finally(() => (finished = true))
  for (const x of mw) if (x.changes) problems.push(`${x.host}: ctl_mboxlist -m -w still prints ${x.changes} changes`)
  let misplaced = 0
  let missing = 0
  for (const [name, server] of expected) {
    const at = locations.get(name)
    if (!at) missing++
    else if (at.split('!')[0] !== server) misplaced++
  }
  let extra = 0
  for (const name of locations.keys()) if (!expected.has(name)) extra++
  if (missing) problems.push(`the master lacks ${missing} of the backends' mailboxes`)
  if (misplaced) problems.push(`the master places ${misplaced} mailboxes on the wrong server`)
  if (extra > 0) problems.push(`the master holds ${extra} entries no backend has`)
  for (const a of slavesAgree) {
    if (a.entries !== locations.size) problems.push(`${a.host} holds ${a.entries} entries, the master ${locations.size}`)
    if (!a.connected) problems.push(`${a.host}'s mupdate slave is not connected`)
  }
  const figures = {
    master: locations.size,
    unionOfBackendsLocal: expected.size,
    before: rc.facts.get('before'),
    backendsMw: mw,
    slaves: slavesAgree,
    backendListsReread: lists.filter((l) => l.reread).map((l) => l.host),
  }
  if (problems.length)
    throw new AbortError(`verification failed: ${problems.join('; ')}`, {
      step: step.id,
      hint: 'read the figures in the journal; murderctl sync-backends --dry-run shows what differs',
    })
  return figures
}

export const verifyMurderAction = defineAction({
  mutating: false,
  planOnly: true,
  params: z.object({}).strict(),
  describe: () => "every backend -m -w empty; master = union of the backends' local mailboxes; slaves connected and agreeing",
  run: (rc, s) => verifyMurder(rc, s),
})
