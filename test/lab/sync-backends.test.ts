// sync-backends against divergences made on purpose in the real lab, through SSH.
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, afterEach, describe, expect, it} from 'vitest'
import {ImapClient} from '../../src/imap/client.js'
import {labPassword} from '../../src/lab/lab.js'
import {
  rollbackPlan,
  CTL,
  dropEntry,
  dumpEntry,
  lab,
  labChecksums,
  labHost,
  murderctl,
  onHost,
  waitLabHealthy,
  assertAllJournalCopiesIntact,
} from './helpers.js'

const service = () => join(lab().dir, 'bin', 'cyrus-service')
const backendOf = (plan: any, name: string) => plan.backends.find((b: any) => b.backend === name)

describe('murderctl sync-backends on the standard lab', () => {
  afterEach(async () => {
    await assertAllJournalCopiesIntact()
  })
  afterAll(async () => {
    // Leave the lab whole for the next file whatever happened here.
    await onHost('mupdate', `${service()} start`)
    for (const b of ['b1', 'b2']) await onHost(b, `${CTL} -m -a`).catch(() => {})
    await waitLabHealthy()
  })

  it('finds every divergence exactly, and --dry-run changes nothing anywhere', async () => {
    // 1. A mailbox deleted on b2 while the master was down. Cyrus 3.6 refuses an IMAP DELETE
    //    then ("no connection to server"), so the deletion is made below IMAP: a tombstone, as
    //    delayed delete leaves, written into b2's mailboxes.db.
    await onHost('mupdate', `${service()} stop`)
    const c = await ImapClient.open(labHost('b2').address, 143, {label: 'b2'})
    await c.login('cyrus', labPassword(lab().dir))
    const refused = await c.command('DELETE user.dave.Trash')
    await c.logout()
    expect(refused).toMatchObject({status: 'NO', text: expect.stringMatching(/no connection to server/)})
    const trash = JSON.parse((await onHost('b2', `${CTL} -d`)).stdout)['user.dave.Trash']
    await onHost('b2', `${CTL} -u`, `{\n"user.dave.Trash": ${JSON.stringify({...trash, mbtype: 'ed'})}\n}\n`)
    await onHost('mupdate', `${service()} start`)
    // 2. Local entries added to b1 behind the master's back.
    await onHost('b1', `${CTL} -u`, dumpEntry('user.erin', 'erin'))
    await onHost('b1', `${CTL} -u`, dumpEntry('user.erin.Drafts', 'erin'))

    // b1r's list follows b1's through the rolling sync_client, whenever it replicates the
    // entries just added: that change is Cyrus's, not the dry run's.
    const sums = async () => Object.fromEntries(Object.entries(await labChecksums()).filter(([k]) => !k.startsWith('b1r:')))
    const before = await sums()
    const outFile = join(mkdtempSync(join(tmpdir(), 'murderctl-plan-')), 'plan.json')
    const r = await murderctl(['sync-backends', '-i', lab().inventory, '--dry-run', '--out', outFile, '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(await sums()).toEqual(before)
    const plan = JSON.parse(readFileSync(outFile, 'utf8'))
    expect(r.json.plan).toEqual(plan)
    expect(backendOf(plan, 'b1').warn).toEqual({activate: ['user.erin', 'user.erin.Drafts'], removeFromMupdate: [], removeRemoteFlag: [], removeLocal: []})
    expect(backendOf(plan, 'b2').warn).toEqual({activate: [], removeFromMupdate: ['user.dave.Trash'], removeRemoteFlag: [], removeLocal: []})
    expect(backendOf(plan, 'b1').conflicts).toEqual([])
  })

  it('refuses to apply a plan that went stale', async () => {
    const outFile = join(mkdtempSync(join(tmpdir(), 'murderctl-plan-')), 'plan.json')
    expect((await murderctl(['sync-backends', '-i', lab().inventory, '--dry-run', '--out', outFile])).exitCode).toBe(0)
    await onHost('b2', `${CTL} -u`, dumpEntry('user.frank', 'frank'))
    const before = await labChecksums()
    const r = await murderctl(['sync-backends', '-i', lab().inventory, '--apply', outFile, '--yes', '--json'])
    expect(r.exitCode).toBe(7)
    expect(r.json.error.message).toMatch(/stale or was edited: b2 differs/)
    expect(await labChecksums()).toEqual(before)
  })

  it('without a terminal and without --yes, asks for nothing and changes nothing', async () => {
    const before = await labChecksums()
    const r = await murderctl(['sync-backends', '-i', lab().inventory])
    expect(r.exitCode).toBe(6)
    expect(r.stderr).toMatch(/needs confirmation.*--yes/)
    expect(await labChecksums()).toEqual(before)
  })

  it('a run stopped after its push is undone by --rollback: each mailboxes.db it set aside back byte for byte, its lock given back', async () => {
    // b1r's list follows b1's through rolling replication, and the frontends' lists the master's
    // through their slaves: Cyrus's changes. The run's own files are the master's and the backends'.
    const runFiles = async () => Object.fromEntries(Object.entries(await labChecksums()).filter(([k]) => /^(mupdate|b1|b2):/.test(k)))
    const before = await runFiles()
    const lockHeld = async () => (await onHost('mupdate', 'test -e /var/lib/cyrus/murderctl-recovery.lock; echo $?')).stdout.trim() === '0'
    // Ctrl-C once verify has begun: the push is done, the run stops before it gives its lock back.
    const stopped = await murderctl(['sync-backends', '-i', lab().inventory, '--yes'], {interruptWhen: /\[7\/8\] /})
    expect(stopped.exitCode, stopped.stderr).toBe(130)
    const run = /--rollback (\S+)/.exec(stopped.stderr + stopped.stdout)?.[1]
    expect(run, stopped.stderr).toBeTruthy()
    expect(JSON.parse((await onHost('mupdate', `${CTL} -d`)).stdout)['user.erin']).toMatchObject({server: 'b1'})
    expect(await lockHeld()).toBe(true)
    const afterStop = await runFiles()

    // The plan, then no terminal and no --yes: nothing changes.
    expect(await rollbackPlan(['sync-backends', '-i', lab().inventory, '--rollback', run!])).toEqual([
      'restore-save-backend-dbs@b1',
      'restore-save-backend-dbs@b2',
      'restore-save-master-db@mupdate',
      'undo-lock@mupdate',
    ])
    expect((await murderctl(['sync-backends', '-i', lab().inventory, '--rollback', run!])).exitCode).toBe(6)
    expect(await runFiles()).toEqual(afterStop)

    const rolled = await murderctl(['sync-backends', '-i', lab().inventory, '--rollback', run!, '--yes', '--json'])
    expect(rolled.exitCode, JSON.stringify(rolled.json?.error ?? rolled.json?.verified)).toBe(0)
    expect(rolled.json.verified.length).toBeGreaterThan(0)
    expect(rolled.json.verified.every((v: {ok: boolean}) => v.ok)).toBe(true)
    // The backends' lists were as the run left them (-m changed nothing there): skipped, not copied over.
    expect(rolled.json.results.map((u: any) => `${u.id}@${u.host} ${u.status}`)).toEqual([
      'restore-save-backend-dbs@b1 skipped',
      'restore-save-backend-dbs@b2 skipped',
      'restore-save-master-db@mupdate done',
      'undo-lock@mupdate done',
    ])
    expect(await runFiles()).toEqual(before)
    expect(await lockHeld()).toBe(false)
    // The divergence is back, for a sync to repair; the run itself is over.
    expect((await onHost('b1', `${CTL} -m -w`)).stdout).toContain('Force Activate: user.erin')
    await waitLabHealthy(60_000)
    const resume = await murderctl(['sync-backends', '-i', lab().inventory, '--resume', run!, '--yes', '--json'])
    expect(resume.exitCode).toBe(7)
    expect(resume.json.error.message).toMatch(/rolled back/)
    const report = await murderctl(['report', run!, '-i', lab().inventory, '--format', 'md', '--offline'])
    expect(report.exitCode, report.stderr).toBe(0)
    expect(report.stdout).toMatch(/\*\*rolled back\*\*/)
  })

  it('applies, copies every mailboxes.db aside first, and verifies -m -w is empty everywhere', async () => {
    const r = await murderctl(['sync-backends', '-i', lab().inventory, '--yes', '--json'])
    expect(r.exitCode, r.stderr + r.stdout).toBe(0)
    const res = r.json.result
    expect(res.agreed).toBe(true)
    for (const b of res.backends) expect(b, b.backend).toMatchObject({verified: true})
    const copies = res.backends.flatMap((b: any) => b.savedCopies)
    expect(copies.map((c: any) => c.host).sort()).toEqual(['b1', 'b2'])
    for (const copy of copies) {
      const sum = (await onHost(copy.host, `sha256sum ${copy.copy}`)).stdout.split(' ')[0]
      expect(sum).toBe(copy.sha256)
    }
    for (const b of ['b1', 'b2']) expect((await onHost(b, `${CTL} -m -w`)).stdout).toBe('')
    const master = JSON.parse((await onHost('mupdate', `${CTL} -d`)).stdout)
    expect(master['user.erin']).toMatchObject({server: 'b1'})
    expect(master['user.frank']).toMatchObject({server: 'b2'})
    expect(master['user.dave.Trash']).toBeUndefined()
    const fe1 = JSON.parse((await onHost('fe1', `${CTL} -d`)).stdout)
    expect(Object.keys(fe1).sort()).toEqual(Object.keys(master).sort())
  })

  it('names a mailbox the master places on the other backend and refuses to delete it', async () => {
    // b1 grows a local user.bob, which the master places on b2: ctl_mboxlist -m would delete it.
    await onHost('b1', `${CTL} -u`, dumpEntry('user.bob', 'bob'))
    try {
      const before = await labChecksums()
      const r = await murderctl(['sync-backends', '-i', lab().inventory, '--yes', '--json'])
      expect(r.exitCode).toBe(7)
      expect(r.json.error.message).toMatch(/would delete 1 local mailboxes \(b1:user\.bob\)/)
      expect(r.json.error.hint).toMatch(/--local-authoritative.*--allow-local-deletes/)
      expect(await labChecksums()).toEqual(before)
      const dry = await murderctl(['sync-backends', '-i', lab().inventory, '--dry-run', '--json'])
      expect(backendOf(dry.json.plan, 'b1').conflicts).toEqual([{mailbox: 'user.bob', masterSays: 'b2!default'}])
      expect(backendOf(dry.json.plan, 'b1').warn.removeLocal).toEqual(['user.bob'])
    } finally {
      await dropEntry('b1', 'user.bob')
    }
    expect((await onHost('b1', `${CTL} -m -w`)).stdout).toBe('')
  })

  it("reports a backend whose -m -w fails in Cyrus's own words, and applies nothing anywhere", async () => {
    await onHost('mupdate', `${service()} stop`)
    try {
      await onHost('b1', `${CTL} -u`, dumpEntry('user.gina', 'gina'))
      const r = await murderctl(['sync-backends', '-i', lab().inventory, '--yes', '--json'])
      expect(r.exitCode).not.toBe(0)
      expect(JSON.stringify(r.json)).toMatch(/couldn't connect to mupdate server/)
    } finally {
      await onHost('mupdate', `${service()} start`)
    }
  })
})
