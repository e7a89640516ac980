// Runbooks as data: the shape of a playbook and its steps. Which actions, conditions and host
// selectors a step may name is checked when a playbook is loaded (playbook.ts), against the
// registries and the selectors the running command provides.
import {z} from 'zod'
import {refineUnique} from '../util/zod.js'

/** Host selectors every run has, from the inventory's roles; a command may add its own (e.g. a pair's members). */
export const BUILTIN_SELECTORS = ['master', 'frontends', 'backends', 'slaves', 'none'] as const

const Name = z.string().regex(/^[a-z][a-z0-9-]*$/, 'lower-case letters, digits and dashes')

export const Step = z
  .object({
    id: Name,
    title: z.string(),
    /** Which hosts it runs on: a built-in selector or one the command provides. */
    hosts: Name,
    action: Name,
    /** Must hold on each host before the action runs. */
    pre: Name.optional(),
    /** Proves the action done on each host; when it already holds, the action is skipped. */
    post: Name.optional(),
    /** The action that reverses this one (read by rollback and shown in the plan). */
    undo: Name.optional(),
    /**
     * Once this step has started, --rollback is refused, with this as the reason and what to do
     * instead (a new master that may have taken mail since cannot be put back as a replica).
     * `{option}` stands for the run's option of that name (e.g. `{pair}`), filled in when journaled.
     */
    irreversible: z.string().optional(),
    /**
     * On resume, run it again if its post-condition no longer holds although the journal says
     * it was done (the master it started has crashed since): what later steps need is restored.
     */
    recheck: z.boolean().default(false),
    /** Show the collected diff and ask before going on (a second gate after the plan's). */
    confirm: z.boolean().default(false),
    /**
     * Runs at the same time as the step before it: the playbook says their hosts, and what each
     * reads and writes, are independent. Such steps form a batch, done when all of them are; an
     * interrupt stops before or after a batch, never inside it. Not beside a step that asks.
     */
    alongside: z.boolean().default(false),
    /** The action's parameters; each action declares and checks its own. */
    params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  })
  .strict()
export type Step = z.infer<typeof Step>

export const MurderMode = z.enum(['standard', 'unified'])

export const Playbook = z
  .object({
    name: z.string(),
    summary: z.string(),
    /** The command that runs it (older playbooks, all recover-master's, did not say). */
    command: Name.default('recover-master'),
    /** The murder mode it is written for; absent: any. */
    mode: MurderMode.optional(),
    /** recover-master: where the master's list comes from; a run refuses a playbook for another source. */
    source: z.string().optional(),
    steps: z.array(Step).min(1),
    /**
     * A read-only action run on no host after a rollback, beside the generic checks (files,
     * services): what the whole runbook's state must be again (a pair's roles, for a failover).
     */
    rollbackVerify: Name.optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    refineUnique(
      ctx,
      p.steps,
      (s) => s.id,
      (i) => ['steps', i, 'id'],
      'step id',
    )
    p.steps.forEach((s, i) => {
      if (!s.alongside) return
      const before = p.steps[i - 1]
      if (!before) ctx.addIssue({code: 'custom', path: ['steps', i, 'alongside'], message: 'the first step has no step before it to run alongside'})
      // A question between two steps must come after the first and before the second.
      else if (s.confirm || before.confirm)
        ctx.addIssue({
          code: 'custom',
          path: ['steps', i, 'alongside'],
          message: `runs alongside ${before.id}, but ${s.confirm ? s.id : before.id} asks for confirmation`,
        })
    })
  })
export type Playbook = z.infer<typeof Playbook>

/** The playbook's steps in batches: each step with the steps after it that run alongside it. */
export function batchesOf(steps: readonly Step[]): {index: number; steps: Step[]}[] {
  const out: {index: number; steps: Step[]}[] = []
  steps.forEach((s, i) => (s.alongside && out.length ? out.at(-1)!.steps.push(s) : out.push({index: i, steps: [s]})))
  return out
}
