// What an action is: whether it changes a host (a dry run does not run those), the parameters
// it takes (checked when a playbook loads, so a misspelt one is refused, not ignored), what it
// will send (for the plan), and doing it.
import type {z} from 'zod'
import {AbortError} from '../../errors.js'
import type {Host} from '../../inventory/schema.js'
import type {RunContext} from '../context.js'
import type {Step} from '../schema.js'

export type Params = z.ZodObject
export interface Action<P extends Params = Params> {
  mutating: boolean
  /** A read-only action that only makes sense after the mutating ones: planned, not run, in a dry run. */
  planOnly?: boolean
  /** Its parameters (a strict object schema: unknown keys are refused). */
  params: P
  /** What it will do on this host, in words and commands, for the plan. */
  describe: (rc: RunContext, params: z.infer<P>, host?: Host) => string
  run: (rc: RunContext, step: Step, params: z.infer<P>, host?: Host) => Promise<Record<string, unknown> | void>
  /** The condition that holds once it is done: a rollback running it as an undo skips it when that already holds, and checks it after. */
  proves?: string
  /**
   * As an undo, it puts back the files its step changed itself (from the journal, in an order
   * only it knows): a rollback runs it before the plain restores of that step's copies, which
   * then find the files as journaled. Else the restores come first.
   */
  restoresOwnFiles?: boolean
  /**
   * A read-only check run on its hosts before the first step of a new run (and in a dry run):
   * what would refuse this step later (a lock another run holds) refuses the run up front,
   * with nothing done and for the right reason. Throws to refuse.
   */
  precheck?: (rc: RunContext, step: Step, host?: Host) => Promise<void>
}

/** Declares an action with its params' type inferred from its schema. */
export const defineAction = <P extends Params>(a: Action<P>): Action<P> => a

export const need = (host: Host | undefined, step: Step): Host => {
  if (!host) throw new AbortError(`step ${step.id} needs a host`, {step: step.id})
  return host
}
