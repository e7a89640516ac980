// The lab's seeding plan (which mailboxes through IMAP, which in bulk) and the imapd.conf key
// that keeps a large lab's lists in memory while it seeds.
import {describe, expect, it} from 'vitest'
import {parseImapdConf} from '../../../src/cyrus/imapd-conf.js'
import {LAB_SEED_DB, type RenderContext, renderImapdConf} from '../../../src/lab/render.js'
import {planSeed, seedsInBulk} from '../../../src/lab/seed.js'
import {labHosts} from '../../../src/lab/topology.js'

const all = (m: Map<string, string[]>) => [...m.values()].flat()

describe('planSeed', () => {
  it('seeds a test lab (40) entirely through IMAP, the named users on their backends', () => {
    const p = planSeed(40)
    expect(p.total).toBe(40)
    expect(all(p.bulk)).toEqual([])
    expect(seedsInBulk(40)).toBe(false)
    expect(p.imap.get('b1')).toContain('user.alice.Sent')
    expect(p.imap.get('b2')).toContain('user.bob')
    expect(p.imap.get('b1')!.length + p.imap.get('b2')!.length).toBe(40)
  })

  it('keeps 400 mailboxes on IMAP and puts everything but the named users in bulk above', () => {
    expect(seedsInBulk(400)).toBe(false)
    expect(all(planSeed(400).imap)).toHaveLength(400)
    const p = planSeed(401)
    expect(seedsInBulk(401)).toBe(true)
    expect(all(p.imap)).toHaveLength(12)
    expect(all(p.imap).every((n) => !n.startsWith('user.u'))).toBe(true)
    expect(all(p.bulk)).toHaveLength(389)
  })

  it('splits 2 x 100,000 evenly, every name once', () => {
    const p = planSeed(200_000)
    expect(p.total).toBe(200_000)
    const b1 = [...p.imap.get('b1')!, ...p.bulk.get('b1')!]
    const b2 = [...p.imap.get('b2')!, ...p.bulk.get('b2')!]
    expect(b1).toHaveLength(100_000)
    expect(b2).toHaveLength(100_000)
    expect(new Set([...b1, ...b2]).size).toBe(200_000)
    expect(p.bulk.get('b2')!.at(-1)).toBe('user.u199987')
  })

  it('never seeds fewer than the named users', () => {
    expect(planSeed(12).total).toBe(12)
    expect(planSeed(0).total).toBe(12)
  })
})

describe('renderImapdConf memoryDb', () => {
  const ctx: RenderContext = {dir: '/tmp/lab', topology: 'standard', hosts: labHosts('standard', '127.0.10'), password: 'pw'}
  it('points mailboxes.db at the host’s /run while seeding, and the handed-over file has no such key', () => {
    for (const h of ctx.hosts) {
      expect(parseImapdConf(renderImapdConf(h, ctx, {memoryDb: true})).get('mboxlist_db_path')).toBe(LAB_SEED_DB)
      expect(parseImapdConf(renderImapdConf(h, ctx)).has('mboxlist_db_path')).toBe(false)
    }
    expect(LAB_SEED_DB.startsWith('/run/')).toBe(true)
  })
})
