// What a command works with: the inventory, the SSH pool and where to say what is happening.
import type {Inventory} from '../inventory/schema.js'
import {SshPool} from '../ssh/pool.js'
import type {RemoteShell} from '../ssh/types.js'

export interface MurderContext {
  inv: Inventory
  pool: RemoteShell
  /** Hosts worked on at once. */
  concurrency: number
  log: (msg: string) => void
  /**
   * Each host's imapd.conf as read once in this invocation, by host name, so a run need not
   * re-read it for every condition it checks. The one step that edits it (a recovery's list in
   * memory) drops its host's entry.
   */
  imapdConf: Map<string, Promise<Map<string, string>>>
}

export interface ContextOptions {
  concurrency?: number
  acceptNewHostKeys?: boolean
  log?: (msg: string) => void
}

/** Run fn with an open SSH pool that is always closed afterwards. */
export async function withMurder<T>(inv: Inventory, opts: ContextOptions, fn: (ctx: MurderContext) => Promise<T>): Promise<T> {
  const pool = new SshPool({knownHostsPath: inv.knownHosts, acceptNewHostKeys: opts.acceptNewHostKeys})
  try {
    return await fn({inv, pool, concurrency: opts.concurrency ?? 8, log: opts.log ?? (() => {}), imapdConf: new Map()})
  } finally {
    await pool.close()
  }
}
