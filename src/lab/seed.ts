// Seeding the lab: real mailboxes with real messages through IMAP on the backends (so the
// murder learns them the way it does in production), and for large counts, generated entries
// loaded with `ctl_mboxlist -u` and pushed with `ctl_mboxlist -m`, which is fast.
import {randomUUID} from 'node:crypto'
import {localEntry, undumpDocument, undumpLine} from '../cyrus/mboxlist-dump.js'
import {AbortError} from '../errors.js'
import {ImapClient, imapString} from '../imap/client.js'
import {type LabState, labExec} from './state.js'
import {LAB_ADMIN} from './render.js'

const CTL = '/usr/lib/cyrus/bin/ctl_mboxlist'
/** Above this many mailboxes, the rest are loaded with ctl_mboxlist -u rather than IMAP CREATE. */
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

/** Count the entries of a host's mailboxes.db, and how many of them are remote. */
export async function labCounts(dir: string, host: string): Promise<{total: number; remote: number}> {
  const r = await labExec(dir, host, [CTL, '-d'])
  let total = 0
  let remote = 0
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('"')) continue
    total++
    if (/"mbtype": "[a-z]*r/.test(line) || line.includes('"server":')) remote++
  }
  return {total, remote}
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

async function imapSeed(state: LabState, password: string, plan: Map<string, string[]>, log: (m: string) => void) {
  await Promise.all(
    [...plan].map(async ([backend, names]) => {
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
    }),
  )
}

function generatedEntry(name: string, user: string): string {
  return undumpLine(localEntry(name, user, {admin: LAB_ADMIN, uniqueid: randomUUID()}))
}

async function bulkSeed(state: LabState, plan: Map<string, string[]>, log: (m: string) => void) {
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

/** Wait until the master and every slave (unified backends too, unless told) hold `expected` entries. */
export async function waitConverged(state: LabState, expected: number, timeoutMs = 120_000, unifiedSlaves = true): Promise<void> {
  const watchers = state.hosts.filter(
    (h) => h.role === 'mupdate-master' || h.role === 'frontend' || (unifiedSlaves && state.topology === 'unified' && h.role === 'backend'),
  )
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const counts = await Promise.all(watchers.map(async (h) => [h.name, (await labCounts(state.dir, h.name)).total] as const))
    if (counts.every(([, n]) => n === expected)) return
    if (Date.now() > deadline) throw new AbortError(`the murder did not converge on ${expected} mailboxes: ${counts.map(([h, n]) => `${h}=${n}`).join(', ')}`)
    await new Promise((r) => setTimeout(r, 500))
  }
}

/** Seed and wait for the murder to agree; returns the number of mailboxes. */
export async function seedLab(state: LabState, password: string, mailboxes: number, log: (m: string) => void): Promise<number> {
  const named = NAMED_USERS.flatMap((u) => FOLDERS.map((f) => ({name: `user.${u.user}${f}`, backend: u.backend})))
  const extra = Math.max(0, mailboxes - named.length)
  const imapExtra = Math.min(extra, Math.max(0, IMAP_SEED_LIMIT - named.length))
  const imapPlan = new Map<string, string[]>([
    ['b1', []],
    ['b2', []],
  ])
  for (const n of named) imapPlan.get(n.backend)!.push(n.name)
  const bulkPlan = new Map<string, string[]>([
    ['b1', []],
    ['b2', []],
  ])
  for (let i = 0; i < extra; i++) {
    const name = `user.u${String(i).padStart(6, '0')}`
    ;(i < imapExtra ? imapPlan : bulkPlan).get(i % 2 === 0 ? 'b1' : 'b2')!.push(name)
  }
  await imapSeed(state, password, imapPlan, log)
  if (extra > imapExtra) await bulkSeed(state, bulkPlan, log)
  const total = named.length + extra
  log(`waiting for the master and every slave to hold ${total} mailboxes`)
  await waitConverged(state, total, Math.max(120_000, total * 5), false)
  return total
}
