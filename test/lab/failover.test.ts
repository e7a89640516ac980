// failover on the real lab, through SSH: controlled switchover and failback, hard failover of a
// crashed master then fence, and mail flowing through a frontend during a switchover. The file
// leaves the lab as it found it: b1 the active member, b1r its replica.
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'
import {labDown, labPassword, labUp} from '../../src/lab/lab.js'
import {flowLosses, messageIds, startMailFlow} from '../../src/lab/mail-flow.js'
import {liftFence} from '../../src/store/fence.js'
import {
  assertAllJournalCopiesIntact,
  assertJournalCopiesIntact,
  rollbackPlan,
  lab,
  labChecksums,
  labHost,
  murderctl,
  onHost,
  spareLabBase,
  waitLabHealthy,
} from './helpers.js'

const inv = () => lab().inventory
const pairStatus = async () => {
  const r = await murderctl(['pair', 'status', 'b1', '-i', inv(), '--json'])
  expect(r.exitCode, r.stderr).toBe(0)
  return r.json.pairs[0]
}
const checkOk = async () => {
  const r = await murderctl(['check', '-i', inv()])
  expect(r.exitCode, r.stdout).toBe(0)
}
/** What each frontend resolves the pair's servername to. */
const resolved = async (host: string) => (await onHost(host, 'awk \'$2 == "b1" { print $1 }\' /etc/hosts')).stdout.trim()

async function failover(args: string[]) {
  const r = await murderctl(['failover', 'b1', '-i', inv(), '--yes', '--json', ...args])
  expect(r.exitCode, JSON.stringify(r.json?.error ?? r.stderr)).toBe(0)
  const copies = await assertJournalCopiesIntact(r.json.journal)
  return {...r.json, copies}
}

const flowTo = (mailbox: string) => startMailFlow({address: labHost('fe1').address, user: 'cyrus', password: labPassword(lab().dir), mailbox, label: 'fe1'})
const idsOn = (host: string, mailbox: string) => messageIds(labHost(host).address, 'cyrus', labPassword(lab().dir), mailbox)

describe('failover on a unified murder (its own lab)', () => {
  let dir: string
  let inventory: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'murderctl-failover-unified-'))
    inventory = (await labUp({dir, topology: 'unified', base: spareLabBase(1), mailboxes: 40})).inventory
  })
  afterEach(async () => {
    // Every copy any run's journal records is still on its host with its sha256.
    if (inventory) await assertAllJournalCopiesIntact(inventory, dir)
  })
  afterAll(async () => {
    if (dir) await labDown({dir, purge: true})
  })

  it('fails over to b1r and back; the unified slave moves with the master role; check OK both ways', async () => {
    for (const to of ['b1r', 'b1']) {
      const r = await murderctl(['failover', 'b1', '-i', inventory, '--to', to, '--yes', '--json'])
      expect(r.exitCode, JSON.stringify(r.json?.error ?? r.stderr)).toBe(0)
      expect(r.json.verify).toMatchObject({appendedThrough: 'b2', inMurder: [to]})
      expect(await assertJournalCopiesIntact(r.json.journal, dir)).toBeGreaterThanOrEqual(4)
      const status = await murderctl(['status', '-i', inventory, '--json'])
      const hosts = Object.fromEntries(status.json.hosts.map((h: any) => [h.name, h]))
      expect(hosts[to].mupdate).toMatchObject({service: 'slave', enabled: true, slaveConnected: true})
      expect(hosts[to === 'b1' ? 'b1r' : 'b1'].mupdate.enabled).toBe(false)
      const check = await murderctl(['check', '-i', inventory])
      expect(check.exitCode, check.stdout).toBe(0)
    }
  })
})

describe('failover of the replicated backend b1/b1r', () => {
  afterEach(async () => {
    await assertAllJournalCopiesIntact()
  })
  afterAll(async () => {
    // Whatever happened above, hand the next file b1 as master.
    const p = await pairStatus().catch(() => null)
    if (p && p.active !== 'b1') await murderctl(['failover', 'b1', '-i', inv(), '--to', 'b1', '--yes', '--force'])
    await waitLabHealthy()
  })

  it('pair status reads the pair from the hosts; dry run and a run without consent change nothing', async () => {
    const p = await pairStatus()
    expect(p).toMatchObject({pair: 'b1', servername: 'b1', active: 'b1', conflict: null})
    const [b1, b1r] = p.members
    expect(b1).toMatchObject({name: 'b1', config: 'master', rollingClient: 'running', fenced: null})
    expect(b1r).toMatchObject({name: 'b1r', config: 'replica', rollingClient: 'none', syncServer: true})
    expect(b1.backlog.files).toEqual(expect.any(Array))
    const sums = await labChecksums()
    const dry = await murderctl(['failover', 'b1', '-i', inv(), '--dry-run', '--json'])
    expect(dry.exitCode, dry.stderr).toBe(0)
    expect(dry.json.plan.length).toBeGreaterThan(10)
    expect(dry.json.plan.find((s: any) => s.step === 'switch-new').hosts[0].does).toMatch(/\+ mupdate_server: mupdate/)
    const noConsent = await murderctl(['failover', 'b1', '-i', inv(), '--json'])
    expect(noConsent.exitCode).toBe(6)
    expect(await labChecksums()).toEqual(sums)
    expect((await murderctl(['failover', 'b1', '-i', inv(), '--to', 'b1', '--json'])).json.error.message).toMatch(/already the active member/)
  })

  it('controlled failover to b1r and failback to b1, each verified through a frontend', async () => {
    const there = await failover(['--to', 'b1r'])
    expect(there).toMatchObject({kind: 'controlled', from: 'b1', to: 'b1r'})
    expect(there.copies).toBeGreaterThanOrEqual(4)
    expect(there.serviceGapMs).toBeGreaterThan(0)
    expect(there.verify.appendedThrough).toBe('fe1')
    expect(there.verify.replicatedInMs).toEqual(expect.any(Number))
    for (const fe of ['fe1', 'fe2']) expect(await resolved(fe)).toBe(labHost('b1r').address)
    let p = await pairStatus()
    expect(p).toMatchObject({active: 'b1r', conflict: null})
    expect(p.members[0]).toMatchObject({config: 'replica', cyrusMaster: {running: true}})
    expect(p.members[1]).toMatchObject({config: 'master', rollingClient: 'running', syncHost: labHost('b1').address})
    await checkOk()

    const back = await failover(['--to', 'b1'])
    expect(back).toMatchObject({from: 'b1r', to: 'b1'})
    p = await pairStatus()
    expect(p).toMatchObject({active: 'b1', conflict: null})
    expect(
      p.history
        .filter((h: any) => h.outcome === 'done')
        .slice(-2)
        .map((h: any) => `${h.from}>${h.to}`),
    ).toEqual(['b1>b1r', 'b1r>b1'])
    for (const fe of ['fe1', 'fe2']) expect(await resolved(fe)).toBe(labHost('b1').address)
    await checkOk()
  })

  it('a controlled failover stopped after the address moved is rolled back: both configs back byte for byte, the address at b1, both members as they ran', async () => {
    const configs = async () => Object.fromEntries(Object.entries(await labChecksums()).filter(([k]) => /^b1r?:.*\.conf$/.test(k)))
    const before = await configs()
    expect(Object.keys(before)).toHaveLength(4)
    // Ctrl-C while the address moves: the run stops before the new master starts.
    const stopped = await murderctl(['failover', 'b1', '-i', inv(), '--to', 'b1r', '--yes'], {interruptWhen: /\[11\/20\] /})
    expect(stopped.exitCode, stopped.stderr).toBe(130)
    expect(stopped.stderr).toMatch(/stopped before step start-new/)
    const run = /--rollback (\S+)/.exec(stopped.stderr)?.[1]
    expect(run, stopped.stderr).toBeTruthy()
    for (const fe of ['fe1', 'fe2']) expect(await resolved(fe)).toBe(labHost('b1r').address)
    const afterStop = await labChecksums()
    expect(await configs()).not.toEqual(before)

    expect(await rollbackPlan(['failover', 'b1', '-i', inv(), '--rollback', run!])).toEqual([
      'undo-move-address@local',
      'restore-switch-new-imapd-conf@b1r',
      'restore-switch-new-cyrus-conf@b1r',
      'restore-switch-old-imapd-conf@b1',
      'restore-switch-old-cyrus-conf@b1',
      'undo-stop-new@b1r',
      'undo-stop-old@b1',
      'undo-lock@b1r',
    ])
    // Neither the dry run nor a rollback without a terminal and without --yes (exit 6) changes anything.
    expect((await murderctl(['failover', 'b1', '-i', inv(), '--rollback', run!])).exitCode).toBe(6)
    expect(await labChecksums()).toEqual(afterStop)
    for (const fe of ['fe1', 'fe2']) expect(await resolved(fe)).toBe(labHost('b1r').address)
    const rolled = await murderctl(['failover', 'b1', '-i', inv(), '--rollback', run!, '--yes', '--json'])
    expect(rolled.exitCode, JSON.stringify(rolled.json?.error ?? rolled.json?.verified)).toBe(0)
    expect(rolled.json.verified.every((v: {ok: boolean}) => v.ok)).toBe(true)
    expect(rolled.json.verified.map((v: any) => `${v.host} ${v.check}`)).toEqual(
      expect.arrayContaining(['b1 running as before the run', 'b1r running as before the run', 'local verify-pair-restored']),
    )
    expect(rolled.json.verified.find((v: any) => v.check === 'verify-pair-restored').detail).toMatch(/b1 master with its rolling client, b1r replica/)
    expect(await configs()).toEqual(before)
    for (const fe of ['fe1', 'fe2']) expect(await resolved(fe)).toBe(labHost('b1').address)
    const p = await pairStatus()
    expect(p).toMatchObject({active: 'b1', conflict: null})
    expect(p.members[0]).toMatchObject({name: 'b1', config: 'master', rollingClient: 'running'})
    expect(p.members[1]).toMatchObject({name: 'b1r', config: 'replica', syncServer: true})
    await assertJournalCopiesIntact(rolled.json.journal)
    await waitLabHealthy()
    await checkOk()
  })

  it('every APPEND that got OK through a frontend during a failover is on the new master, none twice', async () => {
    const flow = flowTo('user.carol')
    await new Promise((r) => setTimeout(r, 1500))
    const r = await failover(['--to', 'b1r'])
    await new Promise((r) => setTimeout(r, 1500))
    await flow.stop()
    expect(flow.ok.length).toBeGreaterThan(10)
    expect(flowLosses(flow.ok, await idsOn('b1r', 'user.carol'))).toEqual({missing: [], twice: []})
    process.stderr.write(`[failover] ${flow.ok.length} appends OK, ${flow.failed} refused during the gap, service gap ${r.serviceGapMs} ms\n`)
    await failover(['--to', 'b1'])
    // And the failback lost nothing either: b1 holds them all.
    expect(flowLosses(flow.ok, await idsOn('b1', 'user.carol'))).toEqual({missing: [], twice: []})
  })

  it('anti-flapping refuses without --force; a failing pre-hook stops before any change; the run resumes; the post-hook gets the placeholders', async () => {
    const doc = parse(readFileSync(inv(), 'utf8'))
    const hooksInv = join(lab().dir, 'inventory-hooks.yaml')
    const out = join(lab().dir, 'post-hook.out')
    rmSync(out, {force: true})
    const write = (pre: string) => {
      doc.pairs[0] = {...doc.pairs[0], minIntervalSeconds: 3600, preFailover: pre, postFailover: `echo {old} {new} {servername} > ${out}`}
      writeFileSync(hooksInv, stringify(doc))
    }
    write('echo no >&2; exit 3')
    const sums = await labChecksums()
    // The earlier tests failed over minutes ago.
    const flap = await murderctl(['failover', 'b1', '-i', hooksInv, '--yes', '--json'])
    expect(flap.exitCode).toBe(7)
    expect(flap.json.error.message).toMatch(/anti-flapping/)
    const hook = await murderctl(['failover', 'b1', '-i', hooksInv, '--yes', '--force', '--json'])
    expect(hook.exitCode).toBe(1)
    expect(hook.json.error.message).toMatch(/pre-hook command failed \(exit 3\)/)
    expect(await labChecksums()).toEqual(sums)
    const run = /--resume (\S+)/.exec(hook.json.error.hint)![1]
    write('true')
    const resumed = await murderctl(['failover', 'b1', '-i', hooksInv, '--resume', run, '--yes', '--json'])
    expect(resumed.exitCode, JSON.stringify(resumed.json?.error)).toBe(0)
    expect(resumed.json).toMatchObject({run, from: 'b1', to: 'b1r'})
    await assertJournalCopiesIntact(resumed.json.journal)
    expect(readFileSync(out, 'utf8').trim()).toBe('b1 b1r b1')
    const back = await murderctl(['failover', 'b1', '-i', hooksInv, '--to', 'b1', '--yes', '--force', '--json'])
    expect(back.exitCode, JSON.stringify(back.json?.error)).toBe(0)
    await assertJournalCopiesIntact(back.json.journal)
    await checkOk()
  })

  it('hard failover of a crashed master, then fence it when it returns; nothing replicates to it until reconcile', async () => {
    expect((await murderctl(['lab', 'break', 'backend-crash', '--dir', lab().dir])).exitCode).toBe(0)
    let p = await pairStatus()
    expect(p.active).toBeNull()
    expect(p.members[0]).toMatchObject({name: 'b1', reachable: false})
    // A controlled failover cannot tell who is master; the hard one needs consent.
    expect((await murderctl(['failover', 'b1', '-i', inv(), '--json'])).exitCode).toBe(7)
    const sums = await labChecksums()
    const noConsent = await murderctl(['failover', 'b1', '-i', inv(), '--hard', '--json'])
    expect(noConsent.exitCode).toBe(6)
    expect(await labChecksums()).toEqual(sums)
    const hard = await failover(['--hard'])
    expect(hard).toMatchObject({kind: 'hard', from: 'b1', to: 'b1r', fenced: 'b1'})
    expect(hard.cutoff).toMatch(/cutoffs\/b1-b1r-/)
    expect(hard.verify.appendedThrough).toBe('fe1')
    p = await pairStatus()
    expect(p.active).toBe('b1r')
    expect(p.members[0].fenced).toMatchObject({member: 'b1', promoted: 'b1r'})
    const check = await murderctl(['check', '-i', inv(), '--format', 'json'])
    expect(check.exitCode).toBe(1)

    // b1 comes back with its old (master) config: both in the murder is CRITICAL.
    expect((await murderctl(['lab', 'break', 'backend-return', '--dir', lab().dir])).exitCode).toBe(0)
    const split = await murderctl(['check', '-i', inv(), '--only', 'replication', '--format', 'json'])
    expect(split.exitCode).toBe(2)
    expect(split.stdout).toMatch(/configured for the murder/)
    const fence = await murderctl(['pair', 'fence', 'b1', '-i', inv(), '--yes', '--json'])
    expect(fence.exitCode, fence.stderr).toBe(0)
    await assertJournalCopiesIntact(fence.json.journal)
    p = await pairStatus()
    expect(p.members[0]).toMatchObject({config: 'replica', cyrusMaster: {running: false}})
    expect(p.conflict).toBeNull()
    // Fenced: no replication towards it, no controlled failover back.
    expect((await murderctl(['pair', 'replicate', 'b1', '-i', inv(), '--yes', '--json'])).json.error.message).toMatch(/FENCED/)
    expect((await murderctl(['failover', 'b1', '-i', inv(), '--yes', '--json'])).json.error.message).toMatch(/FENCED|rolling sync_client/)

    // What reconcile will do (another issue) is stood in for: the mark lifted, then replication and failback.
    liftFence(`${lab().dir}/state`, 'b1', 'test')
    const rep = await murderctl(['pair', 'replicate', 'b1', '-i', inv(), '--yes', '--json'])
    expect(rep.exitCode, rep.stderr).toBe(0)
    await failover(['--to', 'b1'])
    expect((await pairStatus()).active).toBe('b1')
    await checkOk()
  })
})
