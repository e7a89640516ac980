// What a running playbook carries from step to step. The engine knows no command: a command's
// service fills `options` (read by the actions that need them, through their own schemas) and
// `selectors` (hosts its playbook names beyond the built-in roles).
import type {MurderContext} from '../host/context.js'
import type {Host} from '../inventory/schema.js'
import type {Journal} from './journal.js'

export interface PushDiff {
  backend: string
  activate: string[]
  removeFromMupdate: string[]
  removeRemoteFlag: string[]
  removeLocal: string[]
  /** Remote entries a plain -m would have pushed as this backend's own (left out). */
  claimsAvoided: string[]
  /** Local mailboxes the master places on another server (murderctl's own check; -w hides them in a unified murder). */
  conflicts?: {mailbox: string; masterSays: string}[]
}

export interface RunContext {
  murder: MurderContext
  journal: Journal
  runId: string
  dryRun: boolean
  /** A resumed run: decisions its first invocation made are in the journal. */
  resumed: boolean
  /** The command's own options for this run, as journaled at its start. */
  options: Readonly<Record<string, unknown>>
  /**
   * Host selectors the command provides, by name (e.g. a pair's old and new master). A function
   * is asked when its step starts: hosts an earlier read-only step chose (the backends whose
   * diff found changes).
   */
  selectors: Readonly<Record<string, Host[] | ((rc: RunContext) => Host[])>>
  /** Figures a read-only step recorded for a later one (the preflight's "before", read by verify). */
  facts: Map<string, unknown>
  diffs: Map<string, PushDiff>
  /**
   * Conditions a read-only step of this run found NOT to hold, by `condition@host` (the diff
   * step finds the pending changes that make mw-empty false). The next mutating step trusts
   * them instead of asking the host again; only negatives are kept: acting on a stale one just
   * does an idempotent step whose post-condition is checked afresh anyway.
   */
  pending: Map<string, string>
  /**
   * Scratch a step left on a host for a later one (a unified backend's local-only list, built
   * by the diff for the push), by name: the later step takes it out; the engine removes what is
   * left when the run stops first.
   */
  cleanups: Map<string, () => Promise<void>>
}

/** A run's context: the run's own settings; what steps hand on to later ones starts empty. */
export function newRunContext(
  murder: MurderContext,
  journal: Journal,
  run: {dryRun?: boolean; resumed?: boolean; options?: RunContext['options']; selectors?: RunContext['selectors']} = {},
): RunContext {
  return {
    murder,
    journal,
    runId: journal.run,
    dryRun: run.dryRun ?? false,
    resumed: run.resumed ?? false,
    options: run.options ?? {},
    selectors: run.selectors ?? {},
    facts: new Map(),
    diffs: new Map(),
    pending: new Map(),
    cleanups: new Map(),
  }
}

/**
 * A figure read once per run (or per step, by its key) and shared by the units asking for it at
 * the same time: the first one's promise is kept in the run's facts. Each asker handles a
 * failure itself; the kept promise never raises an unhandled rejection.
 */
export function sharedFact<T>(rc: RunContext, key: string, read: () => Promise<T>): Promise<T> {
  const kept = rc.facts.get(key) as Promise<T> | undefined
  if (kept) return kept
  const p = read()
  p.catch(() => {})
  rc.facts.set(key, p)
  return p
}
