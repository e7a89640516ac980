// The run lock on the master: one recovery at a time.
import {z} from 'zod'
import {RefusedError} from '../../errors.js'
import {lockDir} from '../../host/lock.js'
import {shellQuote} from '../../ssh/quote.js'
import {checkCondition} from '../conditions.js'
import {defineAction, need} from './types.js'

const NoParams = z.object({}).strict()

export const lock = defineAction({
  mutating: true,
  params: NoParams,
  describe: () => 'mkdir <configdirectory>/murderctl-recovery.lock (refused if another run holds it)',
  async run(rc, step, _p, host) {
    const h = need(host, step)
    const dir = await lockDir(rc.murder, h)
    const r = await rc.murder.pool.exec(h, {shell: `mkdir -- ${shellQuote(dir)} 2>/dev/null && echo ${shellQuote(rc.runId)} > ${shellQuote(`${dir}/run`)}`})
    if (r.exitCode !== 0) {
      const owner = (await rc.murder.pool.exec(h, ['cat', '--', `${dir}/run`])).stdout.trim()
      throw new RefusedError(`another recovery holds the lock (run ${owner || 'unknown'}, ${dir})`, {
        host: h.name,
        step: step.id,
        hint: `resume that run with --resume ${owner}, or if it is truly dead remove ${dir} on ${h.name}`,
      })
    }
    return {lock: dir}
  },
})

export const unlock = defineAction({
  mutating: true,
  params: NoParams,
  describe: () => 'remove the recovery lock',
  async run(rc, step, _p, host) {
    const h = need(host, step)
    const dir = await lockDir(rc.murder, h)
    const held = await checkCondition(rc, 'locked', h)
    if (held.ok) await rc.murder.pool.execOk(h, ['rm', '-r', '--', dir])
    return {released: held.ok}
  },
})
