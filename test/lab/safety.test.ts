// Issue 10's findings 3, 4, 6 and 10 on the real lab: what a resume may resume, the run lock
// with its owner, sync-backends --apply of an edited plan, and one exit code per fault.
import {existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {hostname, tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {spawn} from 'node:child_process'
import {afterAll, afterEach, describe, expect, it} from 'vitest'
import {parse} from 'yaml'
import {
  rollbackPlan,
  assertAllJournalCopiesIntact,
  assertJournalCopiesIntact,
  CTL,
  journalEvents,
  lab,
  labChecksums,
  loseMasterDb,
  murderctl,
  murderctlTty,
  onHost,
  waitLabHealthy,
} from './helpers.js'

const stateDir = () => resolve(dirname(lab().inventory), parse(readFileSync(lab().inventory, 'utf8')).stateDir)
const LOCK = '/var/lib/cyrus/murderctl-recovery.lock'

/** Hold the murder's lock as run `run` owned by process `pid` on this machine. */
async function holdLock(run: string, pid: number) {
  const owner = JSON.stringify({run, host: hostname(), pid, startedAt: new Date().toISOString(), command: 'recover-master'})
  await onHost('mupdate', `mkdir ${LOCK} && echo ${run} > ${LOCK}/run && cat > ${LOCK}/owner`, owner)
}

describe('safety net on the standard lab', () => {
  afterEach(async () => {
    await assertAllJournalCopiesIntact()
  })
  afterAll(async () => {
    await onHost('mupdate', `rm -rf ${LOCK}`)
    await onHost('mupdate', `${join(lab().dir, 'bin', 'cyrus-service')} start`)
    await waitLabHealthy(60_000)
  })

  it('a refused run is refused again on --resume, without suggesting it; dry runs, foreign and bad run ids are never resumed', async () => {
    const sums = await labChecksums()
    const refused = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes', '--json'])
    expect(refused.exitCode).toBe(7)
    expect(refused.json.error.message).toMatch(/does not look lost/)
    expect(refused.json.error.hint).not.toMatch(/--resume/)
    const runs = readdirSync(join(stateDir(), 'runs')).sort()
    const refusedRun = runs.filter((r) => r.includes('-recover-master-')).at(-1)!
    const again = await murderctl(['recover-master', '-i', lab().inventory, '--resume', refusedRun, '--yes', '--json'])
    expect(again.exitCode, JSON.stringify(again.json)).toBe(7)
    expect(again.json.error.message).toMatch(/does not look lost/)

    const dry = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--force', '--dry-run', '--json'])
    expect(dry.exitCode).toBe(0)
    const dryRun = readdirSync(join(stateDir(), 'runs'))
      .filter((r) => r.includes('-dry-'))
      .sort()
      .at(-1)!
    const resumeDry = await murderctl(['recover-master', '-i', lab().inventory, '--resume', dryRun, '--yes', '--json'])
    expect(resumeDry.exitCode).toBe(7)
    expect(resumeDry.json.error.message).toMatch(/was a dry run/)

    // A run of another murder (its journal copied in).
    const foreign = '20261128T000001Z-recover-master-frgn'
    mkdirSync(join(stateDir(), 'runs', foreign), {recursive: true})
    const start = readFileSync(join(stateDir(), 'runs', refusedRun, 'journal.jsonl'), 'utf8').split('\n')[0]
    writeFileSync(
      join(stateDir(), 'runs', foreign, 'journal.jsonl'),
      `${JSON.stringify({...JSON.parse(start), run: foreign, data: {...JSON.parse(start).data, murder: 'other'}})}\n`,
    )
    const other = await murderctl(['recover-master', '-i', lab().inventory, '--resume', foreign, '--yes', '--json'])
    expect(other.exitCode).toBe(7)
    expect(other.json.error.message).toMatch(/murder "other"/)

    for (const bad of ['../../x', '20261128T000002Z-recover-master-none']) {
      const r = await murderctl(['recover-master', '-i', lab().inventory, '--resume', bad, '--yes', '--json'])
      expect(r.exitCode, bad).toBe(2)
    }
    expect(existsSync(join(stateDir(), 'runs', '20261128T000002Z-recover-master-none'))).toBe(false)
    expect(existsSync(resolve(stateDir(), 'runs', '../../x'))).toBe(false)
    expect(await labChecksums()).toEqual(sums)
  })

  it("a live owner's lock is never taken; status and check report it; --break-lock removes a dead one once confirmed", async () => {
    const sleeper = spawn('sleep', ['600'], {stdio: 'ignore'})
    try {
      await holdLock('20261128T000003Z-recover-master-live', sleeper.pid!)
      await loseMasterDb()
      const r = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes', '--json'])
      expect(r.exitCode).toBe(7)
      expect(r.json.error).toMatchObject({host: 'mupdate', step: 'lock'})
      expect(r.json.error.message).toMatch(new RegExp(`pid ${sleeper.pid} on ${hostname()}`))
      expect(r.json.error.hint).toMatch(/still going/)
      const sync = await murderctl(['sync-backends', '-i', lab().inventory, '--yes', '--json'])
      expect(sync.exitCode, sync.stdout).toBe(7)
      expect(sync.json.error.step).toBe('lock')
      const check = await murderctl(['check', '-i', lab().inventory, '--only', 'lock'])
      expect(check.exitCode).toBe(1) // WARNING
      expect(check.stdout).toMatch(/lock is held by run 20261128T000003Z-recover-master-live/)
      const status = await murderctl(['status', '-i', lab().inventory, '--no-counts', '--json'])
      expect(status.json.lock.run).toBe('20261128T000003Z-recover-master-live')
      const refuseBreak = await murderctl(['recover-master', '-i', lab().inventory, '--break-lock', '--yes', '--json'])
      expect(refuseBreak.exitCode).toBe(7)
      // Refused at the lock: the journal of the refused run records no step done but preflight.
      expect(
        readFileSync(
          join(
            stateDir(),
            'runs',
            readdirSync(join(stateDir(), 'runs'))
              .filter((x) => x.includes('-recover-master-') && !x.includes('-dry-'))
              .sort()
              .at(-1)!,
            'journal.jsonl',
          ),
          'utf8',
        ),
      ).not.toMatch(/"event":"step-done","step":"(?!preflight)/)
    } finally {
      sleeper.kill()
    }
    await new Promise((r) => setTimeout(r, 200))
    // The owner is gone: a stale lock, shown, removed only with consent.
    const noTty = await murderctl(['recover-master', '-i', lab().inventory, '--break-lock', '--json'])
    expect(noTty.exitCode).toBe(6)
    const broken = await murderctl(['recover-master', '-i', lab().inventory, '--break-lock', '--yes', '--json'])
    expect(broken.exitCode, JSON.stringify(broken.json)).toBe(0)
    expect(broken.json.broken).toBe(true)
    expect((await onHost('mupdate', `test -e ${LOCK}; echo $?`)).stdout.trim()).toBe('1')
    const done = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes', '--json'])
    expect(done.exitCode, JSON.stringify(done.json?.error)).toBe(0)
  })

  it('sync-backends --apply refuses an edited plan and applies only a fresh one', async () => {
    // Whatever an earlier test left: no lock.
    await onHost('mupdate', `rm -rf ${LOCK}`)
    await waitLabHealthy(60_000)
    const out = join(tmpdir(), `murderctl-plan-${process.pid}.json`)
    const plan = await murderctl(['sync-backends', '-i', lab().inventory, '--dry-run', '--out', out, '--json'])
    expect(plan.exitCode, plan.stdout).toBe(0)
    const p = JSON.parse(readFileSync(out, 'utf8'))
    writeFileSync(out, JSON.stringify({...p, master: {...p.master, fingerprint: '0'.repeat(64)}}))
    const edited = await murderctl(['sync-backends', '-i', lab().inventory, '--apply', out, '--yes', '--json'])
    expect(edited.exitCode, edited.stdout).toBe(7)
    expect(edited.json.error.message).toMatch(/stale or was edited: the master mupdate/)
    writeFileSync(out, JSON.stringify({...p, backends: p.backends.map((b: any) => ({...b, conflicts: [{mailbox: 'user.nobody', masterSays: 'b9!default'}]}))}))
    const conflicts = await murderctl(['sync-backends', '-i', lab().inventory, '--apply', out, '--yes', '--json'])
    expect(conflicts.exitCode).toBe(7)
    expect(conflicts.json.error.message).toMatch(/stale or was edited: b1, b2/)
    writeFileSync(out, JSON.stringify(p))
    const fresh = await murderctl(['sync-backends', '-i', lab().inventory, '--apply', out, '--yes', '--json'])
    expect(fresh.exitCode, fresh.stdout).toBe(0)
  })

  it('a recover-master stopped at its diff gate is rolled back: dry run first, consent, the original dbs back, check as before', async () => {
    await onHost('mupdate', `rm -rf ${LOCK}`)
    await waitLabHealthy(60_000)
    const checkState = join(tmpdir(), `murderctl-rollback-check-${process.pid}.json`)
    const checks = async () => {
      const r = await murderctl(['check', '-i', lab().inventory, '--state-file', checkState, '--format', 'json'])
      return (JSON.parse(r.stdout).checks as {name: string; host?: string; state: string}[]).map((c) => `${c.name}@${c.host ?? ''}:${c.state}`).sort()
    }
    const checkBefore = await checks()
    const sumsBefore = await labChecksums()
    const entries = async (h: string) => Object.keys(JSON.parse((await onHost(h, `${CTL} -d`)).stdout)).length
    const masterEntries = await entries('mupdate')
    expect(masterEntries).toBeGreaterThanOrEqual(40)

    // The operator reads the plan, says yes, then no at the push diff: the run stops with the frontends down and an empty master.
    const stopped = await murderctlTty(
      ['recover-master', '-i', lab().inventory, '--source', 'backends', '--force'],
      [
        {when: /Go ahead with this plan\? \[y\/N\]/, send: 'y\n'},
        {when: /Run ctl_mboxlist -m on .* \[y\/N\]/, send: 'n\n'},
      ],
    )
    expect(stopped.exitCode, stopped.output).toBe(1)
    expect(stopped.output).toMatch(/--resume \S+ or undo what it did: murderctl recover-master -i \S+ --rollback \S+/)
    const run = /--rollback (\S+)/.exec(stopped.output)![1]
    const journal = join(stateDir(), 'runs', run, 'journal.jsonl')
    expect(await entries('mupdate')).toBe(0)
    const afterStop = await labChecksums()
    const linesAfterStop = readFileSync(journal, 'utf8')

    // A dry run shows the plan and changes nothing; without --yes and no terminal: exit 6, nothing changed.
    expect(await rollbackPlan(['recover-master', '-i', lab().inventory, '--rollback', run])).toEqual([
      // The master stopped, its list in memory installed on disk and imapd.conf put back by the undo,
      // which knows the order; the plain restore then finds imapd.conf as journaled.
      'undo-master-db-to-memory@mupdate',
      'restore-master-db-to-memory@mupdate',
      'restore-set-aside-master-db@mupdate',
      'undo-stop-master@mupdate',
      'restore-set-aside-frontend-dbs@fe1',
      'restore-set-aside-frontend-dbs@fe2',
      'undo-stop-frontends@fe1',
      'undo-stop-frontends@fe2',
      'undo-lock@mupdate',
    ])
    const noTty = await murderctl(['recover-master', '-i', lab().inventory, '--rollback', run, '--json'])
    expect(noTty.exitCode, noTty.stdout).toBe(6)
    expect(await labChecksums()).toEqual(afterStop)
    expect(
      readFileSync(journal, 'utf8')
        .split('\n')
        .filter((l) => /rollback-/.test(l)),
    ).toEqual([])
    expect(readFileSync(journal, 'utf8').startsWith(linesAfterStop)).toBe(true)

    const rolled = await murderctl(['recover-master', '-i', lab().inventory, '--rollback', run, '--yes', '--json'])
    expect(rolled.exitCode, JSON.stringify(rolled.json?.error ?? rolled.json?.verified)).toBe(0)
    expect(rolled.json.verified.every((v: {ok: boolean}) => v.ok)).toBe(true)
    const events = journalEvents(journal)
    const original = events.find((e) => e.event === 'saved-copy' && e.step === 'set-aside-master-db').data
    expect((await onHost('mupdate', 'sha256sum /var/lib/cyrus/mailboxes.db')).stdout.split(/\s+/)[0]).toBe(original.sha256)
    expect(await entries('mupdate')).toBe(masterEntries)
    // What the rollback replaced (the master's new empty db) is kept too, journaled.
    expect(events.some((e) => e.event === 'saved-copy' && e.step === 'restore-set-aside-master-db')).toBe(true)
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['rollback-start', 'rollback-step', 'rollback-end']))
    expect(await labChecksums()).toEqual(sumsBefore)
    await waitLabHealthy(60_000)
    expect(await checks()).toEqual(checkBefore)
    expect(await assertJournalCopiesIntact(journal)).toBeGreaterThanOrEqual(4)

    // Done once: a second rollback and a resume are refused; the report shows the rollback.
    const again = await murderctl(['recover-master', '-i', lab().inventory, '--rollback', run, '--yes', '--json'])
    expect(again.exitCode).toBe(7)
    expect(again.json.error.message).toMatch(/already rolled back/)
    const resume = await murderctl(['recover-master', '-i', lab().inventory, '--resume', run, '--yes', '--json'])
    expect(resume.exitCode).toBe(7)
    const report = await murderctl(['report', run, '-i', lab().inventory, '--format', 'md', '--offline'])
    expect(report.exitCode, report.stderr).toBe(0)
    expect(report.stdout).toMatch(/\*\*rolled back\*\*/)
    expect(report.stdout).toMatch(/## Rollback/)
    expect(report.stdout).toMatch(/restore-set-aside-master-db/)
  })

  it('status exits 4 when a host is unreachable, like every other command', async () => {
    await onHost('fe2', 'kill $(cat /run/sshd.pid)')
    try {
      const status = await murderctl(['status', '-i', lab().inventory, '--no-counts', '--json'])
      expect(status.exitCode).toBe(4)
      const backup = await murderctl(['backup', '-i', lab().inventory, '--all-hosts', '--json'])
      expect(backup.exitCode).toBe(4)
    } finally {
      await onHost('fe2', `/usr/sbin/sshd -f ${lab().dir}/hosts/fe2/sshd_config`)
    }
  })
})
