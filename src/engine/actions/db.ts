// A host's mailboxes.db moved or copied aside before anything changes it, with its checksum,
// under a name of its own (run id + step id), never over another file.
import {z} from 'zod'
import {dbInfo} from '../../host/db.js'
import {moveAside} from '../../host/remote.js'
import {saveDbAside} from '../journal.js'
import {defineAction, need} from './types.js'

export const setAsideDb = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  describe: (rc, _p) => `sha256sum mailboxes.db; mv -n it to mailboxes.db.murderctl-${rc.runId}-<step>, checked`,
  async run(rc, step, _p, host) {
    const h = need(host, step)
    const {path} = await dbInfo(rc.murder, h)
    const moved = await moveAside(rc.murder, h, path, rc.runId, step.id)
    if (!moved) return {note: `${path} was not there`}
    rc.journal.saved(step.id, moved)
    return {path, movedTo: moved.copy, sha256: moved.sha256}
  },
})

/** Nothing lost: a checksummed copy of the db beside it before a step changes it in place. */
export const copyAsideDb = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  describe: (rc) => `cp -n -p mailboxes.db mailboxes.db.murderctl-${rc.runId}-<step>, sha256 of both checked`,
  async run(rc, step, _p, host) {
    const h = need(host, step)
    const saved = await saveDbAside(rc.murder, h, rc.journal, step.id)
    return {copy: saved.copy, sha256: saved.sha256}
  },
})
