// The master <-> replica config switch on the lab's own configs: both ways, idempotent, never a
// duplicate imapd.conf key, and the switch of a rendered pair gives back what it started from.
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {lintImapdConf, parseImapdConf} from '../../../src/cyrus/imapd-conf.js'
import {parseCyrusConf, serializeCyrusConf} from '../../../src/cyrus/cyrus-conf.js'
import {markedImapdOptions, masterSettings, pairConfigFacts, toMasterConfig, toReplicaConfig} from '../../../src/cyrus/pair-config.js'
import {renderCyrusConf, renderImapdConf, type RenderContext} from '../../../src/lab/render.js'
import {labHosts} from '../../../src/lab/topology.js'

const fx = (name: string) => readFileSync(join(import.meta.dirname, '../../fixtures/lab', name), 'utf8')
const b1 = {imapd: fx('imapd.conf-b1'), cyrus: fx('cyrus.conf-b1')}
const b1r = {imapd: fx('imapd.conf-b1r'), cyrus: fx('cyrus.conf-b1r')}
const noFatal = (t: string) => expect(lintImapdConf(t).filter((p) => p.fatal)).toEqual([])

describe('pair configs on the captured lab files', () => {
  it('reads b1 as master and b1r as replica', () => {
    expect(pairConfigFacts(b1.imapd, b1.cyrus)).toMatchObject({
      role: 'master',
      mupdateServer: 'mupdate',
      syncLog: true,
      syncHost: 'b1r',
      mupdatePush: true,
      syncClient: true,
      syncServer: false,
    })
    expect(pairConfigFacts(b1r.imapd, b1r.cyrus)).toMatchObject({role: 'replica', mupdateServer: null, syncLog: false, syncServer: true})
  })

  it('demotes the master: out of the murder, no log, no client, no push, sync_server added; idempotent', () => {
    const r = toReplicaConfig(b1)
    noFatal(r.imapd)
    expect(pairConfigFacts(r.imapd, r.cyrus)).toMatchObject({role: 'replica', syncServer: true, mupdatePush: false, syncClient: false})
    // The values stay in the file, marked, for the way back; credentials stay active.
    expect(markedImapdOptions(r.imapd)).toEqual(
      new Map([
        ['mupdate_server', 'mupdate'],
        ['sync_log', '1'],
        ['sync_host', 'b1r'],
      ]),
    )
    expect(parseImapdConf(r.imapd).get('mupdate_password')).toBe('REDACTED')
    expect(toReplicaConfig(r)).toEqual(r)
    // b1's captured cyrus.conf had no sync_server at all: one is added, once.
    expect(r.cyrus.match(/sync_server/g)).toHaveLength(1)
    expect(serializeCyrusConf(parseCyrusConf(r.cyrus))).toBe(r.cyrus)
  })

  it("promotes the replica from the master's settings, naming the OLD member's own address; idempotent", () => {
    const m = toMasterConfig(b1r, {settings: masterSettings(b1r.imapd, b1.imapd), syncHost: '127.0.31.13'})
    noFatal(m.imapd)
    const conf = parseImapdConf(m.imapd)
    expect(conf.get('mupdate_server')).toBe('mupdate')
    expect(conf.get('sync_host')).toBe('127.0.31.13')
    expect(conf.get('sync_log')).toBe('1')
    expect(conf.get('mupdate_authname')).toBe('cyrus')
    expect(conf.get('proxyservers')).toBe('cyrus')
    expect(conf.get('servername')).toBe('b1')
    expect(pairConfigFacts(m.imapd, m.cyrus)).toMatchObject({role: 'master', mupdatePush: true, syncClient: true, syncServer: false})
    expect(toMasterConfig(m, {settings: masterSettings(m.imapd), syncHost: '127.0.31.13'})).toEqual(m)
  })

  it('master -> replica -> master gives back the master config key for key, with no key twice', () => {
    const back = toMasterConfig(toReplicaConfig(b1), {settings: masterSettings(toReplicaConfig(b1).imapd), syncHost: 'b1r'})
    noFatal(back.imapd)
    expect(parseImapdConf(back.imapd)).toEqual(parseImapdConf(b1.imapd))
    expect(pairConfigFacts(back.imapd, back.cyrus)).toEqual(pairConfigFacts(b1.imapd, b1.cyrus))
    // Many round trips do not stack comment marks (the keepalived script's "##" defect).
    let x = b1
    for (let i = 0; i < 5; i++) x = toMasterConfig(toReplicaConfig(x), {settings: masterSettings(toReplicaConfig(x).imapd), syncHost: 'b1r'})
    expect(x).toEqual(back)
    expect(x.imapd).not.toMatch(/##/)
    expect(x.cyrus).not.toMatch(/##/)
  })

  it('holds the push at start and the rolling client when asked, then releases them', () => {
    const held = toMasterConfig(b1r, {settings: masterSettings(b1r.imapd, b1.imapd), syncHost: 'x', hold: {mupdatePush: true, syncClient: true}})
    expect(pairConfigFacts(held.imapd, held.cyrus)).toMatchObject({role: 'master', mupdatePush: false, syncClient: false})
    const released = toMasterConfig(held, {settings: masterSettings(held.imapd), syncHost: 'x'})
    expect(pairConfigFacts(released.imapd, released.cyrus)).toMatchObject({mupdatePush: true, syncClient: true})
  })

  it('refuses to promote without a mupdate_server value anywhere', () => {
    expect(() => toMasterConfig(b1r, {settings: masterSettings(b1r.imapd), syncHost: 'x'})).toThrow(/no mupdate_server value/)
  })
})

describe('pair configs as the lab renders them (both members can switch, either way)', () => {
  for (const topology of ['standard', 'unified'] as const) {
    it(`${topology}: the replica promotes from its own marked lines alone (hard failover), the master demotes, and back`, () => {
      const hosts = labHosts(topology, '127.0.99')
      const ctx: RenderContext = {dir: '/tmp/x', topology, hosts, password: 'pw'}
      const render = (n: string) => {
        const h = hosts.find((x) => x.name === n)!
        return {imapd: renderImapdConf(h, ctx), cyrus: renderCyrusConf(h, ctx)}
      }
      const unified = topology === 'unified'
      const m = render('b1')
      const r = render('b1r')
      const promoted = toMasterConfig(r, {settings: masterSettings(r.imapd), syncHost: '127.0.99.13', unified})
      noFatal(promoted.imapd)
      expect(pairConfigFacts(promoted.imapd, promoted.cyrus)).toMatchObject({role: 'master', mupdatePush: true, syncClient: true, syncServer: false})
      // Enabling a disabled entry gives back the line the master has, not a second one.
      expect(promoted.cyrus.match(/ctl_mboxlist -m/g)).toHaveLength(1)
      const demoted = toReplicaConfig(m, {unified})
      expect(pairConfigFacts(demoted.imapd, demoted.cyrus)).toMatchObject({role: 'replica', syncServer: true})
      expect(demoted.cyrus).toContain('listen="127.0.99.13:2005"')
      // Back again: each is its original.
      const again = toReplicaConfig(promoted, {unified})
      expect(again.cyrus).toBe(r.cyrus)
      expect(parseImapdConf(again.imapd)).toEqual(parseImapdConf(r.imapd))
      const remastered = toMasterConfig(demoted, {settings: masterSettings(demoted.imapd), syncHost: 'b1r', unified})
      expect(remastered).toEqual(m)
    })
  }
})
