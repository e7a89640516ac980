// reconcile on the real lab: `lab break split-brain` (b1 takes mail while replication is stopped,
// crashes, b1r is promoted hard and takes mail in the same mailboxes, a mailbox holding b1-only
// mail is deleted on b1r, b1 returns fenced), then reconcile puts every b1-only message on b1r
// once, and replication makes b1 an exact replica. The file hands b1 back as master.
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {ImapClient, imapString} from '../../src/imap/client.js'
import {labPassword} from '../../src/lab/lab.js'
import type {SplitBrainRecord} from '../../src/lab/split-brain.js'
import {assertJournalCopiesIntact, lab, labChecksums, labHost, listOf, murderctl, onHost, waitLabHealthy} from './helpers.js'

const inv = () => lab().inventory
const SPOOL = '/var/spool/cyrus/mail'
/** Every file of a host's spool and its checksum, in one digest: "nothing on it changed". */
const spoolDigest = async (host: string) => (await onHost(host, `cd ${SPOOL} && find . -type f | sort | xargs -d '\\n' sha256sum | sha256sum`)).stdout.trim()

interface Seen {
  uid: number
  flags: string[]
  internalDate: number
  messageId: string
}

const MON = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const parseDate = (s: string) => {
  const m = /^\s*(\d+)-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/.exec(s)!
  const utc = Date.UTC(Number(m[3]), MON.indexOf(m[2]!), Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000
  return utc - (m[7] === '+' ? 1 : -1) * (Number(m[8]) * 3600 + Number(m[9]) * 60)
}

/** A mailbox's messages as its owner sees them (EXAMINE: \Seen untouched), on one member. */
async function asOwner(host: string, mailbox: string): Promise<Seen[] | null> {
  const [, owner, ...rest] = mailbox.split('.')
  const c = await ImapClient.open(labHost(host).address, 143, {label: host})
  try {
    await c.authenticatePlain(owner!, 'cyrus', labPassword(lab().dir))
    const sel = await c.command(`EXAMINE ${imapString(['INBOX', ...rest].join('.'))}`)
    if (sel.status !== 'OK') return null
    const r = await c.command('UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
    if (r.status !== 'OK') return []
    return r.untagged
      .filter((l) => / FETCH /.test(l))
      .map((l, i) => ({
        uid: Number(/UID (\d+)/.exec(l)![1]),
        flags: /FLAGS \(([^)]*)\)/
          .exec(l)![1]!
          .split(' ')
          .filter((f) => f && f !== '\\Recent')
          .sort(),
        internalDate: parseDate(/INTERNALDATE "([^"]+)"/.exec(l)![1]!),
        messageId: /Message-ID:\s*(\S+)/i.exec(r.literals[i]!.toString())![1]!,
      }))
  } finally {
    await c.logout()
  }
}

async function reconcile(args: string[]) {
  const r = await murderctl(['reconcile', 'b1', '-i', inv(), '--json', ...args])
  return r
}

describe('reconcile after a hard failover (split brain on b1/b1r)', () => {
  let record: SplitBrainRecord
  const date = new Date().toISOString().slice(0, 10)
  const targetOf = (mailbox: string) => (mailbox === record.deletedOnNew ? `user.alice.Recovered-${date}.Trash` : mailbox)

  afterAll(async () => {
    const p = (await murderctl(['pair', 'status', 'b1', '-i', inv(), '--json'])).json?.pairs?.[0]
    if (p && p.active !== 'b1') {
      const back = await murderctl(['failover', 'b1', '-i', inv(), '--to', 'b1', '--yes', '--force', '--json'])
      expect(back.exitCode, JSON.stringify(back.json?.error ?? back.stderr)).toBe(0)
    }
    await waitLabHealthy()
    expect((await murderctl(['check', '-i', inv()])).exitCode).toBe(0)
  })

  it('lab break split-brain builds the situation; dry run and a run without consent change nothing', async () => {
    const broke = await murderctl(['lab', 'break', 'split-brain', '--dir', lab().dir])
    expect(broke.exitCode, broke.stderr).toBe(0)
    record = JSON.parse(readFileSync(join(lab().dir, 'split-brain.json'), 'utf8'))
    const st = (await murderctl(['pair', 'status', 'b1', '-i', inv(), '--json'])).json.pairs[0]
    expect(st.active).toBe('b1r')
    expect(st.members[0]).toMatchObject({name: 'b1', config: 'replica', cyrusMaster: {running: false}, fenced: {member: 'b1'}})

    const before = {sums: await labChecksums(), b1: await spoolDigest('b1'), b1r: await spoolDigest('b1r')}
    const dry = await reconcile(['--dry-run'])
    expect(dry.exitCode, dry.stderr).toBe(0)
    const plan = dry.json.plan
    const oldOnly = record.messages.filter((m) => m.member === 'b1')
    expect(plan.totals).toMatchObject({messages: oldOnly.length, recreate: 1, recover: 1})
    expect(plan.totals.uidCollisions).toBeGreaterThan(0)
    expect(plan.cutoff.file).toMatch(/cutoffs\/b1-b1r-/)
    expect(plan.mailboxes.find((x: any) => x.source === record.createdOnOld).action).toBe('recreate')
    expect(plan.mailboxes.find((x: any) => x.source === record.deletedOnNew)).toMatchObject({action: 'recover', target: targetOf(record.deletedOnNew)})
    const noConsent = await reconcile([])
    expect(noConsent.exitCode).toBe(6)
    expect({sums: await labChecksums(), b1: await spoolDigest('b1'), b1r: await spoolDigest('b1r')}).toEqual(before)
  })

  it('applies a reviewed plan: every b1-only message on b1r once, with flags and internaldate; nothing on b1 changed', async () => {
    const planFile = join(lab().dir, 'reconcile-plan.json')
    expect((await murderctl(['reconcile', 'b1', '-i', inv(), '--out', planFile])).exitCode).toBe(0)
    const b1Before = await spoolDigest('b1')
    const r = await reconcile(['--apply', planFile, '--yes', '--no-replicate'])
    expect(r.exitCode, JSON.stringify(r.json?.error ?? r.stderr)).toBe(0)
    expect(r.json).toMatchObject({verified: true, lost: 0, unfenced: false})
    expect(r.json.report.figures).toMatchObject({atRisk: 8, recovered: 8, lost: 0})
    expect(await assertJournalCopiesIntact(r.json.journal)).toBeGreaterThan(0)
    const f = r.json.report.figures
    process.stderr.write(
      `[reconcile] messages at risk ${f.atRisk}, recovered ${f.recovered}, lost ${f.lost}, ${f.bytes} bytes, ${f.mailboxesRecreated} recreated, ${f.mailboxesRecovered} recovered, ${f.uidCollisions} UID collisions, ${f.durationMs} ms\n`,
    )
    // Verified before anything on b1: its spool is exactly as it was, and it is still FENCED.
    expect(await spoolDigest('b1')).toBe(b1Before)
    for (const m of record.messages.filter((x) => x.member === 'b1')) {
      const box = await asOwner('b1r', targetOf(m.mailbox))
      const found = box!.filter((x) => x.messageId === m.messageId)
      expect(found, `${m.messageId} in ${targetOf(m.mailbox)}`).toHaveLength(1)
      expect(found[0]!.flags).toEqual([...m.flags].sort())
      expect(found[0]!.internalDate).toBe(m.internalDate)
    }
    // b1r's own messages are still there, once.
    for (const m of record.messages.filter((x) => x.member === 'b1r'))
      expect((await asOwner('b1r', m.mailbox))!.filter((x) => x.messageId === m.messageId)).toHaveLength(1)
    // The recreated mailbox went through the murder: the mupdate master lists it on b1.
    expect((await listOf('mupdate')).get(record.createdOnOld)).toBe('b1')
    // The plan file is stale now (nothing left to reinject): refused.
    const stale = await reconcile(['--apply', planFile, '--yes'])
    expect(stale.exitCode).toBe(7)
    expect(stale.json.error.message).toMatch(/stale/)
  })

  it('a second run reinjects nothing, then replicates: b1 equals b1r mailbox by mailbox', async () => {
    const r = await reconcile(['--yes'])
    expect(r.exitCode, JSON.stringify(r.json?.error ?? r.stderr)).toBe(0)
    expect(r.json.report.figures).toMatchObject({atRisk: 0, recovered: 0, lost: 0})
    expect(r.json).toMatchObject({verified: true, unfenced: true, replication: {equal: true}})
    expect(r.json.oldCleanup.expunged).toBeGreaterThan(0)
    expect(await assertJournalCopiesIntact(r.json.journal)).toBeGreaterThan(0)
    // Nothing on b1 changed before the recovery was verified: the journal's order.
    const events = readFileSync(r.json.journal, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    const verified = events.findIndex((e) => e.event === 'step-done' && e.step === 'verify')
    const firstOnOld = events.findIndex((e) => e.event === 'step-start' && e.host === 'b1' && e.step !== 'start-old')
    expect(verified).toBeGreaterThan(0)
    expect(firstOnOld).toBeGreaterThan(verified)
    for (const m of record.messages)
      expect(
        (await asOwner('b1r', targetOf(m.mailbox)))!.filter((x) => x.messageId === m.messageId),
        m.messageId,
      ).toHaveLength(1)
    // Independently of reconcile's own comparison: the same messages, mailbox by mailbox, on both.
    for (const name of [...new Set(record.messages.map((m) => targetOf(m.mailbox)))]) {
      const [a, b] = [await asOwner('b1r', name), await asOwner('b1', name)]
      expect(b?.map((x) => x.messageId).sort(), name).toEqual(a?.map((x) => x.messageId).sort())
    }
    expect(await asOwner('b1', record.deletedOnNew)).toBeNull()
    const st = (await murderctl(['pair', 'status', 'b1', '-i', inv(), '--json'])).json.pairs[0]
    expect(st.members[0].fenced).toBeNull()
    expect(st.members[1]).toMatchObject({config: 'master', rollingClient: 'running'})
    const report = readFileSync(join(r.json.journal, '..', 'report.md'), 'utf8')
    expect(report).toMatch(/Cutoff used: /)
    process.stderr.write(`[reconcile] second run (cleanup on b1, unfence, sync_client -u, rolling, compare): ${r.json.durationMs} ms\n`)
  })

  it('a third run finds nothing to reconcile and writes nothing (not even a journal)', async () => {
    const r = await reconcile(['--yes'])
    expect(r.exitCode, JSON.stringify(r.json?.error ?? r.stderr)).toBe(0)
    expect(r.json.plan.totals).toMatchObject({messages: 0, recreate: 0, recover: 0})
    expect(r.json.journal).toMatch(/nothing to reconcile/)
  })
})
