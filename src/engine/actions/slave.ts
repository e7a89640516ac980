// A unified backend's (or a frontend's) mupdate slave, switched off and on in cyrus.conf.
import {z} from 'zod'
import {disableService, enableService, mupdateService, parseCyrusConf} from '../../cyrus/cyrus-conf.js'
import {AbortError} from '../../errors.js'
import type {Host} from '../../inventory/schema.js'
import {copyAside, hupMaster} from '../../host/remote.js'
import type {RunContext} from '../context.js'
import type {Step} from '../schema.js'
import {defineAction, need} from './types.js'

async function setSlave(rc: RunContext, step: Step, host: Host | undefined, enable: boolean) {
  const h = need(host, step)
  const text = (await rc.murder.pool.readFile(h, h.cyrus.cyrusConf)).toString('utf8')
  const svc = mupdateService(parseCyrusConf(text))
  if (!svc || svc.mode === 'master')
    throw new AbortError(`no mupdate slave service in ${h.cyrus.cyrusConf}`, {host: h.name, step: step.id, hint: 'is this a unified backend?'})
  const next = enable ? enableService(text, 'SERVICES', svc.entry.name) : disableService(text, 'SERVICES', svc.entry.name)
  let saved
  if (next !== text) {
    saved = rc.journal.saved(step.id, await copyAside(rc.murder, h, h.cyrus.cyrusConf, rc.runId, step.id))
    await rc.murder.pool.writeFileAtomic(h, h.cyrus.cyrusConf, Buffer.from(next))
  }
  const pid = await hupMaster(rc.murder, h, step.id)
  return {service: svc.entry.name, changed: next !== text, hup: pid, copy: saved?.copy}
}

export const disableMupdateSlave = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  describe: (_rc, _p, h) => `copy ${h?.cyrus.cyrusConf} aside, comment out the mupdate slave service, kill -HUP cyrus-master`,
  proves: 'slave-stopped',
  run: (rc, s, _p, h) => setSlave(rc, s, h, false),
})

export const enableMupdateSlave = defineAction({
  mutating: true,
  params: z.object({}).strict(),
  describe: (_rc, _p, h) => `copy ${h?.cyrus.cyrusConf} aside, restore the mupdate slave service line, kill -HUP cyrus-master`,
  proves: 'slave-connected',
  run: (rc, s, _p, h) => setSlave(rc, s, h, true),
})
