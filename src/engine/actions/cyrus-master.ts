// Stopping and starting cyrus-master with the inventory's commands.
import {z} from 'zod'
import {AbortError} from '../../errors.js'
import type {Host} from '../../inventory/schema.js'
import type {RunContext} from '../context.js'
import type {Step} from '../schema.js'
import {defineAction, need} from './types.js'

/** The inventory's stop or start command on a host, journaled; a non-zero exit stops the step. */
export async function runServiceCommand(rc: RunContext, step: Step, host: Host | undefined, which: 'stop' | 'start') {
  const h = need(host, step)
  const r = await rc.murder.pool.exec(h, {shell: h.cyrus[which]})
  rc.journal.command(step.id, h.name, r)
  if (r.exitCode !== 0)
    throw new AbortError(`${which} command failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n')[0] ?? ''}`, {
      host: h.name,
      step: step.id,
      hint: `check: ${h.cyrus[which]}`,
    })
  return {command: h.cyrus[which]}
}

export const stopCyrus = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  describe: (_rc, _p, h) => `${h?.cyrus.stop}`,
  proves: 'cyrus-stopped',
  run: (rc, s, _p, h) => runServiceCommand(rc, s, h, 'stop'),
})

export const startCyrus = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  describe: (_rc, _p, h) => `${h?.cyrus.start}`,
  proves: 'cyrus-running',
  run: (rc, s, _p, h) => runServiceCommand(rc, s, h, 'start'),
})
