// The tmpfs-key check: a recovery's temporary mboxlist_db_path left in a host's imapd.conf.
// While it is there the master's mailbox list lives in memory and is gone at the next reboot;
// the run that set it puts the list on disk and takes the key out when resumed.
import {memoryDbRun} from '../host/memory-db.js'
import type {CheckResult} from './model.js'

export interface DbPathFact {
  host: string
  imapdConf: string
  /** mboxlist_db_path as Cyrus reads it; undefined when the file has none. */
  dbPath?: string
  /** false when the host's imapd.conf could not be read. */
  read: boolean
}

/** One CRITICAL result per host still pointing at a run's list in memory, else one OK (or UNKNOWN) for `master`. */
export function tmpfsKeyCheck(facts: readonly DbPathFact[], master: string): CheckResult[] {
  const left = facts.filter((f) => f.read && memoryDbRun(f.dbPath))
  if (left.length)
    return left.map((f) => {
      const run = memoryDbRun(f.dbPath)!
      return {
        name: 'tmpfs-key',
        host: f.host,
        state: 'CRITICAL',
        message: `${f.host}'s ${f.imapdConf} still names mboxlist_db_path: ${f.dbPath}, run ${run}'s list in memory (lost at reboot): resume that run to put it on disk and take the key out`,
        figures: {},
        fix: `murderctl recover-master --resume ${run}`,
      }
    })
  const m = facts.find((f) => f.host === master)
  if (!m?.read) return [{name: 'tmpfs-key', host: master, state: 'UNKNOWN', message: `cannot read ${master}'s imapd.conf`, figures: {}}]
  return [{name: 'tmpfs-key', host: master, state: 'OK', message: "no recovery's temporary mboxlist_db_path in any imapd.conf", figures: {}}]
}
