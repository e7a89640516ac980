// Disasters on purpose, for rehearsing on the lab (never on a real murder: they go through
// nsenter on this machine, not SSH).
import {randomUUID} from 'node:crypto'
import {join} from 'node:path'
import {localEntry, undumpDocument, undumpLine} from '../cyrus/mboxlist-dump.js'
import {AbortError} from '../errors.js'
import {labExec, readLabState} from './state.js'

const CTL = '/usr/lib/cyrus/bin/ctl_mboxlist'

export const DISASTERS = {
  'lost-master': "the master's mailboxes.db is deleted and the master restarted empty (its slaves resync against it)",
  'lost-master-down': "the master's mailboxes.db is deleted and the master stays down",
  diverge: 'three mailboxes appear on b1 behind the master\'s back (as after changes during a master outage)',
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
  }
  return DISASTERS[what]
}
