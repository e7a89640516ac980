// A host's mailboxes.db moved or copied aside before anything changes it, with its checksum.
import {z} from 'zod'
import {AbortError} from '../../errors.js'
import {dbInfo} from '../../host/db.js'
import {shellQuote} from '../../ssh/quote.js'
import {saveDbAside} from '../journal.js'
import {defineAction, need} from './types.js'

export const setAsideDb = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  describe: () => 'sha256sum mailboxes.db; mv it to mailboxes.db.murderctl-<run>',
  async run(rc, step, _p, host) {
    const h = need(host, step)
    const {path} = await dbInfo(rc.murder, h)
    const aside = `${path}.murderctl-${rc.runId}`
    const q = shellQuote(path)
    const a = shellQuote(aside)
    const r = await rc.murder.pool.exec(h, {shell: `test -e ${q} || exit 3; sha256sum -- ${q} && mv -n -- ${q} ${a} && sha256sum -- ${a}`})
    if (r.exitCode === 3) return {note: `${path} was not there`}
    const sums = r.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0])
    if (r.exitCode !== 0 || sums.length !== 2 || sums[0] !== sums[1]) throw new AbortError(`could not move ${path} aside: ${r.stderr.trim()}`, {host: h.name, step: step.id})
    rc.journal.write({event: 'saved-copy', step: step.id, host: h.name, data: {path, copy: aside, sha256: sums[0], moved: true}})
    return {path, movedTo: aside, sha256: sums[0]}
  },
})

/** Nothing lost: a checksummed copy of the db beside it before a step changes it in place. */
export const copyAsideDb = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  describe: () => 'cp -p mailboxes.db mailboxes.db.murderctl-<run>, sha256 of both checked',
  async run(rc, step, _p, host) {
    const h = need(host, step)
    const saved = await saveDbAside(rc.murder, h, rc.journal, step.id)
    return {copy: saved.copy, sha256: saved.sha256}
  },
})
