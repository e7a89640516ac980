// What a running playbook carries from step to step.
import type {MurderContext} from '../host/context.js'
import type {Journal} from './journal.js'
import type {ConditionName} from './playbook.js'

export interface RecoverOptions {
  source: 'backends' | 'frontend' | 'backup'
  /** A backup folder, for source backup (else the newest verified one of the master). */
  backupPath?: string
  /** Which frontend to copy, for source frontend (else the one holding the most entries). */
  frontend?: string
  /** Go on although the master does not look lost. */
  force: boolean
}

export interface PushDiff {
  backend: string
  activate: string[]
  removeFromMupdate: string[]
  removeRemoteFlag: string[]
  removeLocal: string[]
  /** Remote entries a plain -m would have pushed as this backend's own (left out). */
  claimsAvoided: string[]
}

export interface RunContext {
  murder: MurderContext
  journal: Journal
  runId: string
  dryRun: boolean
  /** A resumed run already decided the master was lost; its preflight only re-reads the hosts. */
  resumed: boolean
  options: RecoverOptions
  /** Filled by the preflight: what the hosts held before the recovery. */
  before?: {masterEntries: number | null; backendsLocal: Record<string, number>; unionLocal: number}
  diffs: Map<string, PushDiff>
  /**
   * Conditions a read-only step of this run found NOT to hold, by `condition@host` (the diff
   * step finds the pending changes that make mw-empty false). The next mutating step trusts
   * them instead of asking the host again; only negatives are kept: acting on a stale one just
   * does an idempotent step whose post-condition is checked afresh anyway.
   */
  pending: Map<`${ConditionName}@${string}`, string>
}
