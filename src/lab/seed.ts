// Seeding the lab: real mailboxes with real messages through IMAP on the backends (so the
// murder learns them the way it does in production), and for large counts, generated entries
// loaded with `ctl_mboxlist -u` and pushed with `ctl_mboxlist -m`, while every host keeps its
// mailboxes.db in memory (recover-master's trick: no entry waits for the disk); the lists then
// go to disk and the murder restarts, as a real one would, and must still agree.
import {randomUUID} from 'node:crypto'
import {join} from 'node:path'
import {readCountOutput} from '../cyrus/mboxlist-count.js'
import {type EntryCounts, localEntry, undumpDocument, undumpLine} from '../cyrus/mboxlist-dump.js'
import {AbortError} from '../errors.js'
import {countScript} from '../host/mboxlist.js'
import {ImapClient, imapString} from '../imap/client.js'
import {type LabState, labExec} from './state.js'
import {LAB_ADMIN, LAB_SEED_DB} from './render.js'

const CTL = '/usr/lib/cyrus/bin/ctl_mboxlist'
/** Above this many mailboxes, all but the named users' are loaded with ctl_mboxlist -u rather than IMAP CREATE. */
const IMAP_SEED_LIMIT = 400

export const NAMED_USERS: {user: string; backend: 'b1' | 'b2'; messages: number}[] = [
  {user: 'alice', backend: 'b1', messages: 3},
  {user: 'bob', backend: 'b2', messages: 2},
  {user: 'carol', backend: 'b1', messages: 1},
  {user: 'dave', backend: 'b2', messages: 0},
]
const FOLDERS = ['', '.Sent', '.Trash']

export function labMessage(user: string, n: number): Buffer {
  return Buffer.from(
    [
      `From: sender${n}@lab.example`,
      `To: ${user}@lab.example`,
      `Subject: lab message ${n} for ${user}`,
      `Message-ID: <lab-${user}-${n}-${randomUUID()}@lab.example>`,
      `Date: ${new Date(Date.UTC(2026, 0, 1 + n)).toUTCString().replace('GMT', '+0000')}`,
      '',
      `Hello ${user}, this is message ${n}.`,
      '',
    ].join('\r\n'),
  )
}

/**
 * Count the entries of a host's mailboxes.db, and how many of them are remote: on the host, so
 * a list of 200,000 entries is not carried over as text.
 */
export async function labCounts(dir: string, host: string): Promise<EntryCounts> {
  const r = await labExec(dir, host, ['sh', '-c', countScript(CTL)])
  return readCountOutput(r.stdout, host)
}

/**
 * A backend command that Cyrus passes on to the mupdate master. On a loaded machine the
 * backend's MUPDATE link can be down for a moment ("no connection to server"); Cyrus then
 * refuses and changes nothing, so the command is sent again. `doneAlready`: the refusal a
 * repeat gets when the first attempt did land.
 */
async function viaMupdate(c: ImapClient, cmd: string, doneAlready?: RegExp): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const r = await c.command(cmd)
    if (r.status === 'OK' || (attempt > 1 && doneAlready?.test(r.text))) return
    if (attempt >= 20 || !/no connection to server|unavailable/i.test(r.text)) throw new AbortError(`IMAP ${cmd.split(' ')[0]} failed: ${r.status} ${r.text}`)
    await new Promise((res) => setTimeout(res, 500))
  }
}

/**
 * One backend after the other: Cyrus 3.6's master, taking CREATEs from two backends at once,
 * now and then holds one for 5 s (seen as `mailbox: longlock ... for 5.0 seconds` on the
 * backend, about one CREATE in 25), which made seeding 400 mailboxes take two minutes.
 */
async function imapSeed(state: LabState, password: string, plan: Map<string, string[]>, log: (m: string) => void) {
  for (const [backend, names] of plan) {
    const h = state.hosts.find((x) => x.name === backend)!
    const c = await ImapClient.open(h.address, 143, {label: backend})
    try {
      await c.login(LAB_ADMIN, password)
      for (const name of names) {
        await viaMupdate(c, `CREATE ${imapString(name)}`, /already exists/i)
        await viaMupdate(c, `SETACL ${imapString(name)} ${LAB_ADMIN} lrswipkxtecda`)
      }
      for (const u of NAMED_USERS.filter((x) => x.backend === backend))
        for (let i = 1; i <= u.messages; i++) await c.append(`user.${u.user}`, labMessage(u.user, i))
    } finally {
      await c.logout()
    }
    log(`seeded ${names.length} mailboxes on ${backend} through IMAP`)
  }
}

function generatedEntry(name: string, user: string): string {
  return undumpLine(localEntry(name, user, {admin: LAB_ADMIN, uniqueid: randomUUID()}))
}

/**
 * The frontends are stopped first and left so (listsToDisk's restart starts them): a connected
 * slave takes the push one entry (one commit) at a time, a starting one copies the whole list
 * in one transaction.
 */
async function bulkSeed(state: LabState, plan: Map<string, string[]>, log: (m: string) => void) {
  const service = join(state.dir, 'bin', 'cyrus-service')
  const frontends = state.hosts.filter((h) => h.role === 'frontend')
  await Promise.all(frontends.map((f) => labExec(state.dir, f.name, [service, 'stop'])))
  await Promise.all(
    [...plan].map(async ([backend, names]) => {
      const input = undumpDocument(names.map((n) => generatedEntry(n, n.split('.')[1])))
      const u = await labExec(state.dir, backend, [CTL, '-u'], {input})
      if (u.stderr.trim()) throw new AbortError(`ctl_mboxlist -u on ${backend}: ${u.stderr.split('\n')[0]}`, {host: backend})
      const m = await labExec(state.dir, backend, [CTL, '-m'], {reject: false})
      if (m.exitCode !== 0) throw new AbortError(`ctl_mboxlist -m on ${backend}: ${m.stderr.split('\n')[0]}`, {host: backend})
      log(`loaded ${names.length} generated mailboxes on ${backend} and pushed them to the master`)
    }),
  )
}

/** Wait until the master and every slave (unified backends too, unless told), or only `hosts`, hold `expected` entries. */
export async function waitConverged(
  state: LabState,
  expected: number,
  opts: {timeoutMs?: number; unifiedSlaves?: boolean; hosts?: string[]} = {},
): Promise<void> {
  const {timeoutMs = Math.max(120_000, expected * 5), unifiedSlaves = true} = opts
  const watchers = state.hosts.filter((h) =>
    opts.hosts
      ? opts.hosts.includes(h.name)
      : h.role === 'mupdate-master' || h.role === 'frontend' || (unifiedSlaves && state.topology === 'unified' && h.role === 'backend'),
  )
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const counts = await Promise.all(watchers.map(async (h) => [h.name, (await labCounts(state.dir, h.name)).total] as const))
    if (counts.every(([, n]) => n === expected)) return
    if (Date.now() > deadline) throw new AbortError(`the murder did not converge on ${expected} mailboxes: ${counts.map(([h, n]) => `${h}=${n}`).join(', ')}`)
    await new Promise((r) => setTimeout(r, 500))
  }
}

export interface SeedPlan {
  /** Mailboxes created through IMAP, per backend (the named users' first, then generated ones). */
  imap: Map<'b1' | 'b2', string[]>
  /** Generated mailboxes loaded with ctl_mboxlist -u, per backend. */
  bulk: Map<'b1' | 'b2', string[]>
  total: number
}

/**
 * Which mailboxes go where: the named users' folders, then `user.uNNNNNN` alternately on b1
 * and b2. Up to IMAP_SEED_LIMIT mailboxes, all through IMAP; above, only the named users'
 * (Cyrus's master holds about one CREATE in 25 for 5 s, so 400 took minutes) and the rest in bulk.
 */
export function planSeed(mailboxes: number): SeedPlan {
  const named = NAMED_USERS.flatMap((u) => FOLDERS.map((f) => ({name: `user.${u.user}${f}`, backend: u.backend})))
  const extra = Math.max(0, mailboxes - named.length)
  const imapExtra = named.length + extra <= IMAP_SEED_LIMIT ? extra : 0
  const imap = new Map<'b1' | 'b2', string[]>([
    ['b1', []],
    ['b2', []],
  ])
  const bulk = new Map<'b1' | 'b2', string[]>([
    ['b1', []],
    ['b2', []],
  ])
  for (const n of named) imap.get(n.backend)!.push(n.name)
  for (let i = 0; i < extra; i++) (i < imapExtra ? imap : bulk).get(i % 2 === 0 ? 'b1' : 'b2')!.push(`user.u${String(i).padStart(6, '0')}`)
  return {imap, bulk, total: named.length + extra}
}

/** Whether a lab of this size is seeded in bulk (and so with every mailboxes.db in memory meanwhile). */
export const seedsInBulk = (mailboxes: number) => [...planSeed(mailboxes).bulk.values()].some((names) => names.length > 0)

/**
 * Wait until every replica holds the mailboxes its backend got through IMAP (the rolling
 * sync_client's work; bulk entries never reach it): a lab is up when the replica has caught up
 * too, else a test's "nothing changed" checksums see replication still arriving.
 */
export async function waitReplicated(state: LabState, mailboxes: number, timeoutMs = 120_000): Promise<void> {
  const plan = planSeed(mailboxes)
  const replicas = state.hosts.filter((h) => h.role === 'replica' && h.replicaOf && plan.imap.has(h.replicaOf as 'b1' | 'b2'))
  const deadline = Date.now() + timeoutMs
  for (const r of replicas) {
    const want = plan.imap.get(r.replicaOf as 'b1' | 'b2')!.length
    for (;;) {
      const have = (await labCounts(state.dir, r.name)).liveLocal
      if (have === want) break
      if (Date.now() > deadline)
        throw new AbortError(`replica ${r.name} holds ${have} of the ${want} mailboxes of ${r.replicaOf}: rolling replication did not catch up`, {
          host: r.name,
          step: 'lab up',
        })
      await new Promise((res) => setTimeout(res, 500))
    }
  }
}

/** Seed and wait for the murder to agree; returns the number of mailboxes. */
export async function seedLab(state: LabState, password: string, mailboxes: number, log: (m: string) => void): Promise<number> {
  const plan = planSeed(mailboxes)
  await imapSeed(state, password, plan.imap, log)
  if (seedsInBulk(mailboxes)) {
    await bulkSeed(state, plan.bulk, log)
    // The frontends are down: they take the list when the murder restarts on disk.
    log(`waiting for the master to hold ${plan.total} mailboxes`)
    await waitConverged(state, plan.total, {hosts: state.hosts.filter((h) => h.role === 'mupdate-master').map((h) => h.name)})
  } else {
    log(`waiting for the master and every slave to hold ${plan.total} mailboxes`)
    await waitConverged(state, plan.total, {unifiedSlaves: false})
  }
  return plan.total
}

/**
 * A bulk-seeded lab's lists, moved from memory (every host's /run) to their real place:
 * every cyrus-master stopped, mailboxes.db copied to configdirectory (cyrus:mail, 0600,
 * fsync'd, renamed into place), imapd.conf replaced by `files(host).imapdConf` (without the
 * key) and cyrus.conf by `files(host).cyrusConf`, the copy in memory removed. The caller
 * starts Cyrus again.
 */
export async function listsToDisk(state: LabState, service: string, files: (host: string) => {imapdConf: string; cyrusConf: string}): Promise<void> {
  await Promise.all(state.hosts.map((h) => labExec(state.dir, h.name, [service, 'stop'])))
  const lists = [
    'set -e',
    `src=${LAB_SEED_DB}; dest=/var/lib/cyrus/mailboxes.db`,
    'cp -- "$src" "$dest.lab-new" && chown cyrus:mail "$dest.lab-new" && chmod 0600 "$dest.lab-new" && sync -- "$dest.lab-new"',
    'mv -- "$dest.lab-new" "$dest" && sync -- /var/lib/cyrus',
    'rm -f -- "$src"',
  ].join('\n')
  // /etc is an overlay: written beside, then renamed, as on a real host.
  const replace = (file: string) => `cat > ${file}.lab-new && mv -- ${file}.lab-new ${file}`
  await Promise.all(
    state.hosts.map(async (h) => {
      const {imapdConf, cyrusConf} = files(h.name)
      await labExec(state.dir, h.name, ['sh', '-c', lists])
      await labExec(state.dir, h.name, ['sh', '-c', replace('/etc/imapd.conf')], {input: imapdConf})
      await labExec(state.dir, h.name, ['sh', '-c', replace('/etc/cyrus.conf')], {input: cyrusConf})
    }),
  )
}

/** `ctl_mboxlist -m -w` on every backend: what each would still change on the master (nothing, in a converged murder). */
export async function pendingPushes(state: LabState): Promise<{backend: string; lines: string[]}[]> {
  return Promise.all(
    state.hosts
      .filter((h) => h.role === 'backend')
      .map(async (h) => {
        const r = await labExec(state.dir, h.name, [CTL, '-m', '-w'])
        return {backend: h.name, lines: `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.trim())}
      }),
  )
}
