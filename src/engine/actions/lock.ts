// The run lock on the master: one run at a time, with its owner recorded (host/lock.ts).
import {z} from 'zod'
import {acquireLock, assertLockFree, ownerHere, releaseLock} from '../../host/lock.js'
import {defineAction, need} from './types.js'

const NoParams = z.object({}).strict()

export const lock = defineAction({
  mutating: true,
  params: NoParams,
  describe: () => 'mkdir <configdirectory>/murderctl-recovery.lock with the run, this machine, pid and start time (refused if another run holds it)',
  async run(rc, step, _p, host) {
    const got = await acquireLock(rc.murder, need(host, step), ownerHere(rc.runId, rc.runId.split('-').slice(1, -1).join('-')), step.id)
    return {lock: got.dir, takenOver: got.resumed}
  },
  // A second operator is told about the first run before a preflight reads a murder that run is changing.
  precheck: (rc, step, host) => assertLockFree(rc.murder, need(host, step), rc.runId, step.id),
})

export const unlock = defineAction({
  mutating: true,
  params: NoParams,
  describe: () => 'remove the run lock',
  async run(rc, step, _p, host) {
    return {released: await releaseLock(rc.murder, need(host, step), rc.runId)}
  },
})
