// `lab break split-brain`: the situation reconcile exists for, made on purpose on the real lab
// (issue 14's Lab section): rolling replication on b1 stopped, mail written to b1 only, b1
// crashes, `failover --hard` promotes b1r, mail written to b1r (same mailboxes, so UIDs collide),
// a mailbox that held b1-only mail deleted on b1r, b1 back and fenced. What was written where is
// kept in <lab>/split-brain.json for tests.
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {AbortError} from '../errors.js'
import {ImapClient, imapString} from '../imap/client.js'
import {LAB_ADMIN} from './render.js'
import {labExec, labPassword, type LabState} from './state.js'

export interface SplitBrainMessage {
  member: 'b1' | 'b1r'
  /** Internal name, e.g. user.alice.Sent. */
  mailbox: string
  messageId: string
  flags: string[]
  /** Unix seconds. */
  internalDate: number
}

export interface SplitBrainRecord {
  messages: SplitBrainMessage[]
  /** Created on b1 after replication stopped: only b1 has it. */
  createdOnOld: string
  /** Deleted on b1r after the failover, while b1 held mail in it b1r never had. */
  deletedOnNew: string
}

const MON = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const imapDate = (s: number) => {
  const d = new Date(s * 1000)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${p(d.getUTCDate())}-${MON[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
}

/** The owner's view of an internal user mailbox name (`user.alice.Sent` -> alice, INBOX.Sent). */
const view = (mailbox: string) => {
  const [, owner, ...rest] = mailbox.split('.')
  return {owner: owner!, name: ['INBOX', ...rest].join('.')}
}

async function asOwner<T>(state: LabState, host: string, owner: string, fn: (c: ImapClient) => Promise<T>): Promise<T> {
  const h = state.hosts.find((x) => x.name === host)!
  const c = await ImapClient.open(h.address, 143, {label: host})
  try {
    await c.authenticatePlain(owner, LAB_ADMIN, labPassword(state.dir))
    return await fn(c)
  } finally {
    await c.logout()
  }
}

function message(m: SplitBrainMessage, n: number): Buffer {
  return Buffer.from(
    [
      `From: sender${n}@lab.example`,
      `To: ${view(m.mailbox).owner}@lab.example`,
      `Subject: split brain ${m.member} ${n}`,
      `Message-ID: ${m.messageId}`,
      `Date: ${new Date(m.internalDate * 1000).toUTCString().replace('GMT', '+0000')}`,
      '',
      `Written to ${m.member} only (${m.mailbox}).`,
      '',
    ].join('\r\n'),
  )
}

async function append(state: LabState, host: 'b1' | 'b1r', msgs: SplitBrainMessage[]) {
  for (const [i, m] of msgs.entries()) {
    const {owner, name} = view(m.mailbox)
    await asOwner(state, host, owner, (c) => c.append(name, message(m, i), {flags: m.flags, internalDate: imapDate(m.internalDate)}))
  }
}

async function cli(state: LabState, args: string[]): Promise<void> {
  // The CLI that runs this (bin/run.js), as an operator would run it.
  const r = await execa(process.execPath, [process.argv[1]!, ...args, '-i', state.inventory, '--yes'], {reject: false, env: {FORCE_COLOR: '0'}})
  if (r.exitCode !== 0) throw new AbortError(`murderctl ${args.join(' ')} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').pop() ?? ''}`)
}

export async function splitBrain(state: LabState, crash: () => Promise<unknown>, back: () => Promise<unknown>): Promise<SplitBrainRecord> {
  const active = await labExec(state.dir, 'b1', ['grep', '-q', '^mupdate_server:', '/etc/imapd.conf'], {reject: false})
  if (active.exitCode !== 0) throw new AbortError('b1 is not the active member of its pair: split-brain starts from b1 as master, b1r replicating')
  // 1. Rolling replication on b1 stops (disabled the way murderctl's editor disables a line, so
  //    the pair tools still read the config), and its sync log keeps filling.
  await labExec(state.dir, 'b1', [
    'sh',
    '-c',
    `sed -i 's/^\\tsyncclient\\t\\(.*\\)$/#\\tsyncclient\\t\\1  # disabled by murderctl/' /etc/cyrus.conf && p=$(cat /run/cyrus-master.pid) && kill -HUP "$p" && sleep 1 && pkill -P "$p" -x sync_client; sleep 1; ! pgrep -P "$p" -x sync_client`,
  ])
  const t0 = Math.floor(Date.now() / 1000) - 86_400
  const id = (who: string, n: number) => `<split-${who}-${n}-${t0}@lab.example>`
  const old: SplitBrainMessage[] = [
    {member: 'b1', mailbox: 'user.alice', messageId: id('b1', 1), flags: ['\\Seen', '\\Flagged'], internalDate: t0 + 1},
    {member: 'b1', mailbox: 'user.alice', messageId: id('b1', 2), flags: [], internalDate: t0 + 2},
    {member: 'b1', mailbox: 'user.alice.Sent', messageId: id('b1', 3), flags: ['\\Seen'], internalDate: t0 + 3},
    {member: 'b1', mailbox: 'user.carol', messageId: id('b1', 4), flags: ['\\Answered', '\\Seen'], internalDate: t0 + 4},
    {member: 'b1', mailbox: 'user.alice.Trash', messageId: id('b1', 5), flags: ['\\Seen'], internalDate: t0 + 5},
    {member: 'b1', mailbox: 'user.alice.Trash', messageId: id('b1', 6), flags: [], internalDate: t0 + 6},
    {member: 'b1', mailbox: 'user.alice.Projects', messageId: id('b1', 7), flags: ['\\Seen', '$Work'], internalDate: t0 + 7},
    {member: 'b1', mailbox: 'user.alice.Projects', messageId: id('b1', 8), flags: ['\\Draft'], internalDate: t0 + 8},
  ]
  // 2. Mail on b1 in several mailboxes, and a folder created there.
  await asOwner(state, 'b1', 'alice', (c) => c.ok(`CREATE ${imapString('INBOX.Projects')}`))
  await append(state, 'b1', old)
  // 3. b1 crashes; the replica is promoted without drain.
  await crash()
  await cli(state, ['failover', 'b1', '--hard'])
  // 4. Mail on b1r, into the same mailboxes (the same UIDs b1 gave out).
  const nu: SplitBrainMessage[] = [
    {member: 'b1r', mailbox: 'user.alice', messageId: id('b1r', 1), flags: [], internalDate: t0 + 11},
    {member: 'b1r', mailbox: 'user.alice', messageId: id('b1r', 2), flags: ['\\Seen'], internalDate: t0 + 12},
    {member: 'b1r', mailbox: 'user.alice.Sent', messageId: id('b1r', 3), flags: ['\\Seen'], internalDate: t0 + 13},
  ]
  await append(state, 'b1r', nu)
  // 5. A mailbox holding b1-only mail deleted on the new master (Carter's trap).
  await asOwner(state, 'b1r', 'alice', (c) => c.ok(`DELETE ${imapString('INBOX.Trash')}`))
  // 6. b1 back, fenced (replica config, Cyrus not started).
  await back()
  await cli(state, ['pair', 'fence', 'b1'])
  const record: SplitBrainRecord = {messages: [...old, ...nu], createdOnOld: 'user.alice.Projects', deletedOnNew: 'user.alice.Trash'}
  writeFileSync(join(state.dir, 'split-brain.json'), `${JSON.stringify(record, null, 1)}\n`)
  return record
}
