// Mail flowing through a frontend while something happens to the murder (a failover): APPENDs
// one after another, each with its own Message-ID, recording which ones got OK. Afterwards
// messageIds() says what a member really holds, so "every OK'd APPEND is there, none twice"
// can be checked. Used by the failover lab test and the bench.
import {ImapClient, imapString} from '../imap/client.js'

export interface MailFlow {
  /** Message-IDs of every APPEND that got OK, in order. */
  readonly ok: string[]
  /** APPENDs refused or cut off (the service gap). */
  readonly failed: number
  stop: () => Promise<void>
}

export function startMailFlow(opts: {address: string; user: string; password: string; mailbox: string; label?: string; pauseMs?: number}): MailFlow {
  const ok: string[] = []
  let failed = 0
  let stop = false
  const run = (async () => {
    let c: ImapClient | null = null
    let n = 0
    while (!stop) {
      try {
        if (!c) {
          c = await ImapClient.open(opts.address, 143, {timeoutMs: 3000, label: opts.label})
          await c.login(opts.user, opts.password)
        }
        const id = `<flow-${Date.now()}-${n++}@murderctl.lab>`
        const msg = Buffer.from(`From: flow@murderctl.lab\r\nTo: ${opts.user}@murderctl.lab\r\nSubject: flow ${n}\r\nMessage-ID: ${id}\r\n\r\nflowing\r\n`)
        const r = await c.command(`APPEND ${imapString(opts.mailbox)} \x00LIT\x00`, [msg])
        if (r.status === 'OK') ok.push(id)
        else failed++
      } catch {
        failed++
        await c?.logout().catch(() => {})
        c = null
        await new Promise((r) => setTimeout(r, 200))
      }
      await new Promise((r) => setTimeout(r, opts.pauseMs ?? 30))
    }
    await c?.logout().catch(() => {})
  })()
  return {
    ok,
    get failed() {
      return failed
    },
    stop: async () => {
      stop = true
      await run
    },
  }
}

/** Message-IDs in a mailbox on one host, read from its own imapd (duplicates kept). */
export async function messageIds(address: string, user: string, password: string, mailbox: string): Promise<string[]> {
  const c = await ImapClient.open(address, 143, {label: address})
  try {
    await c.login(user, password)
    await c.ok(`EXAMINE ${imapString(mailbox)}`)
    const r = await c.ok('UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
    return r.literals.map((l) => /Message-ID:\s*(\S+)/i.exec(l.toString())?.[1]).filter((x): x is string => !!x)
  } finally {
    await c.logout()
  }
}

/** What a flow lost and doubled on a member: OK'd but missing, and present more than once. */
export function flowLosses(ok: readonly string[], held: readonly string[]): {missing: string[]; twice: string[]} {
  const count = new Map<string, number>()
  for (const id of held) count.set(id, (count.get(id) ?? 0) + 1)
  return {missing: ok.filter((id) => !count.has(id)), twice: ok.filter((id) => (count.get(id) ?? 0) > 1)}
}
