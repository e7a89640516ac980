// The parsers against outputs captured from the lab murder (Cyrus 3.6.1 from Debian).
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {hasMupdatePush, mupdateService, parseCyrusConf, serializeCyrusConf, syncClientDaemon} from '../../../src/cyrus/cyrus-conf.js'
import {murderRole, parseImapdConf} from '../../../src/cyrus/imapd-conf.js'
import {countEntries, isRemote, parseDump} from '../../../src/cyrus/mboxlist-dump.js'
import {classifyMupdateStderr, parseMupdateWarn} from '../../../src/cyrus/mboxlist-warn.js'
import {parseMupdateBanner} from '../../../src/cyrus/mupdate-banner.js'

const fx = (name: string) => readFileSync(join(import.meta.dirname, '../../fixtures/lab', name), 'utf8')

describe('outputs captured from the lab', () => {
  it('ctl_mboxlist -d of the master, a frontend, a backend and its replica', () => {
    const master = parseDump(fx('dump-mupdate.txt'))
    expect(countEntries(master)).toMatchObject({total: 40, remote: 40, local: 0})
    expect(master.every((e) => isRemote(e) && !e.uniqueid)).toBe(true)
    expect(parseDump(fx('dump-fe1.txt')).map((e) => e.name)).toEqual(master.map((e) => e.name))
    const b1 = parseDump(fx('dump-b1.txt'))
    expect(countEntries(b1)).toMatchObject({total: 20, local: 20, withoutUniqueid: 0})
    // The replica holds the same mailboxes under the same uniqueids.
    expect(parseDump(fx('dump-b1r.txt')).map((e) => [e.name, e.uniqueid])).toEqual(b1.map((e) => [e.name, e.uniqueid]))
  })

  it('ctl_mboxlist -m -w: a change, a clean run, and the master down', () => {
    expect(parseMupdateWarn(fx('mw-b1-activate.txt')).activate).toEqual(['user.zed'])
    expect(parseMupdateWarn(fx('mw-b2-clean.txt'))).toEqual({activate: [], removeFromMupdate: [], removeRemoteFlag: [], removeLocal: []})
    expect(fx('mw-b1-nomaster.txt')).toBe('')
    expect(classifyMupdateStderr(fx('mw-b1-nomaster.stderr'))?.kind).toBe('connect')
  })

  it('MUPDATE banners of the master and a slave (also with its master down)', () => {
    expect(parseMupdateBanner(fx('banner-master.txt'))).toMatchObject({role: 'master', servername: 'mupdate', version: expect.stringMatching(/^3\.6\.1/)})
    expect(parseMupdateBanner(fx('banner-slave.txt'))).toMatchObject({role: 'slave', servername: 'fe1', master: 'mupdate'})
    // A slave whose master died keeps greeting as before: the banner cannot tell.
    expect(parseMupdateBanner(fx('banner-slave-nomaster.txt'))).toEqual(parseMupdateBanner(fx('banner-slave.txt')))
  })

  it('the lab configs: roles, services, round trip', () => {
    for (const h of ['mupdate', 'fe1', 'b1', 'b1r']) {
      const text = fx(`cyrus.conf-${h}`)
      expect(serializeCyrusConf(parseCyrusConf(text))).toBe(text)
    }
    expect(mupdateService(parseCyrusConf(fx('cyrus.conf-mupdate')))?.mode).toBe('master')
    expect(mupdateService(parseCyrusConf(fx('cyrus.conf-fe1')))).toMatchObject({mode: 'slave', enabled: true})
    expect(hasMupdatePush(parseCyrusConf(fx('cyrus.conf-b1')))).toBe(true)
    expect(syncClientDaemon(parseCyrusConf(fx('cyrus.conf-b1')))?.enabled).toBe(true)
    expect(hasMupdatePush(parseCyrusConf(fx('cyrus.conf-b1r')))).toBe(false)
    expect(murderRole(parseImapdConf(fx('imapd.conf-fe1'))).role).toBe('frontend')
    expect(murderRole(parseImapdConf(fx('imapd.conf-b1'))).role).toBe('backend')
    expect(murderRole(parseImapdConf(fx('imapd.conf-b1r'))).role).toBe('standalone')
    expect(parseImapdConf(fx('imapd.conf-b1r')).get('servername')).toBe('b1')
  })
})
