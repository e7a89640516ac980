// Disasters on purpose, for rehearsing on the lab (never on a real murder: they go through
// nsenter on this machine, not SSH).
import {randomUUID} from 'node:crypto'
import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {localEntry, undumpDocument, undumpLine} from '../cyrus/mboxlist-dump.js'
import {AbortError} from '../errors.js'
import {alive, hostDir, labExec, processesInNamespace, readLabState} from './state.js'
import {splitBrain} from './split-brain.js'

const CTL = '/usr/lib/cyrus/bin/ctl_mboxlist'

export const DISASTERS = {
  'lost-master': "the master's mailboxes.db is deleted and the master restarted empty (its slaves resync against it)",
  'lost-master-down': "the master's mailboxes.db is deleted and the master stays down",
  diverge: "three mailboxes appear on b1 behind the master's back (as after changes during a master outage)",
  'backend-crash':
    'the active member of pair b1 (whichever holds mupdate_server) dies: every process in it killed, cyrus-master and sshd included, so it is unreachable',
  'backend-return':
    'the crashed member is back: sshd runs again, its files as they were (old config); Cyrus is NOT started, as the README tells operators to arrange',
  'split-brain':
    'rolling replication on b1 stopped, mail written to b1 only (a folder created too), b1 crashes, failover --hard promotes b1r, mail written to b1r in the same mailboxes (UIDs collide), a mailbox holding b1-only mail deleted on b1r, b1 back and fenced (what went where: <dir>/split-brain.json)',
} as const
export type Disaster = keyof typeof DISASTERS

export async function breakLab(dir: string, what: Disaster): Promise<string> {
  const state = readLabState(dir)
  if (!state) throw new AbortError(`no lab is running in ${dir}`, {hint: 'murderctl lab up --dir DIR'})
  const svc = join(state.dir, 'bin', 'cyrus-service')
  switch (what) {
    case 'lost-master':
    case 'lost-master-down':
      await labExec(state.dir, 'mupdate', ['sh', '-c', `${svc} stop && rm -f /var/lib/cyrus/mailboxes.db${what === 'lost-master' ? ` && ${svc} start` : ''}`])
      break
    case 'diverge': {
      const entries = ['user.zoe', 'user.zoe.Sent', 'user.zoe.Drafts'].map((name) => undumpLine(localEntry(name, 'zoe', {uniqueid: randomUUID()})))
      await labExec(state.dir, 'b1', [CTL, '-u'], {input: undumpDocument(entries)})
      break
    }
    case 'backend-crash': {
      const members = state.hosts.filter((h) => h.name === 'b1' || h.replicaOf === 'b1')
      const active = []
      for (const m of members) {
        const r = await labExec(state.dir, m.name, ['grep', '-q', '^mupdate_server:', '/etc/imapd.conf'], {reject: false})
        if (r.exitCode === 0) active.push(m)
      }
      if (active.length !== 1) throw new AbortError(`pair b1 has ${active.length} members configured for the murder; cannot tell which one to crash`)
      const victim = active[0]!
      for (const p of processesInNamespace(victim.pid).filter((p) => p !== victim.pid && p !== process.pid)) {
        try {
          process.kill(p, 'SIGKILL')
        } catch {}
      }
      writeFileSync(join(state.dir, 'crashed-backend'), victim.name)
      return `${DISASTERS[what]} (crashed: ${victim.name})`
    }
    case 'backend-return': {
      const file = join(state.dir, 'crashed-backend')
      if (!existsSync(file)) throw new AbortError('no crashed backend to bring back', {hint: 'murderctl lab break backend-crash first'})
      const name = readFileSync(file, 'utf8').trim()
      const h = state.hosts.find((x) => x.name === name)!
      if (!alive(h.pid)) throw new AbortError(`lab host ${name} is gone entirely`)
      await labExec(state.dir, name, ['sh', '-c', `rm -f /run/sshd.pid /run/cyrus-master.pid; /usr/sbin/sshd -f ${hostDir(state.dir, name)}/sshd_config`])
      rmSync(file)
      return `${DISASTERS[what]} (back: ${name})`
    }
    case 'split-brain': {
      const r = await splitBrain(
        state,
        () => breakLab(dir, 'backend-crash'),
        () => breakLab(dir, 'backend-return'),
      )
      return `${DISASTERS[what]}: ${r.messages.filter((m) => m.member === 'b1').length} messages on b1 only, ${r.messages.filter((m) => m.member === 'b1r').length} on b1r only`
    }
  }
  return DISASTERS[what]
}
