// The fault matrix of issue 10, on the real lab: each fault injected into a real recover-master
// (standard murder, rebuilt from the backends: the playbook that touches every host) and into
// sync-backends' apply. For each: the run stops with a message naming the host and the step,
// resuming (or running again) completes, no mailbox is lost (every backend's live local set is
// unchanged and the master holds exactly their union) and every journaled copy is intact.
// The figures are printed at the end for the README's table.
import {join} from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {assertAllJournalCopiesIntact, CTL, dumpEntry, lab, loseMasterDb, murderctl, murderctlTty, onHost, runJournals, waitLabHealthy} from './helpers.js'
import {
  assertNothingLost as nothingLost,
  BACKENDS,
  fakeToolInventory,
  installFakeTools,
  killCyrusMaster,
  killSshd,
  newFigures,
  recoverWithFault as recover,
  resumeRun,
  runIdOf,
  snapshot,
  startMaster,
  startSshd,
  svc,
  newHostKeyConfig,
} from './faults.js'

const figures = newFigures()
const rows: {fault: string; command: string; stoppedWith: string; then: string}[] = []
const assertNothingLost = (before: Record<string, string[]>) => nothingLost(before, figures)

const resume = (run: string, what: string) => resumeRun(figures, run, what)
const recoverWithFault = (when: RegExp, inject: () => Promise<unknown>) => recover(figures, when, inject)

describe('fault matrix: recover-master (standard, from the backends)', () => {
  let before: Record<string, string[]>
  beforeAll(async () => {
    await waitLabHealthy()
    before = await snapshot()
    expect(before.b1.length + before.b2.length).toBeGreaterThanOrEqual(40)
  })
  afterEach(async () => {
    await assertNothingLost(before)
  })
  afterAll(async () => {
    // Whatever failed here, the next file gets a whole lab with no run's lock left.
    await onHost('mupdate', 'rm -rf /var/lib/cyrus/murderctl-recovery.lock')
    await startMaster()
    await waitLabHealthy(60_000)
  })

  it('Ctrl-C at every step boundary stops resumably, and --resume finishes', async () => {
    const steps = 18
    for (let k = 1; k < steps; k++) {
      await loseMasterDb()
      const r = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes'], {interruptWhen: new RegExp(`\\[${k}/${steps}\\] `)})
      figures.runs++
      figures.faults++
      expect(r.exitCode, `Ctrl-C during step ${k}: ${r.stderr}`).toBe(130)
      expect(r.stderr).toMatch(/interrupted: stopped before step \S+/)
      await resume(runIdOf(r), `Ctrl-C during step ${k}`)
      await assertNothingLost(before)
    }
    rows.push({
      fault: 'Ctrl-C at each of the 17 step boundaries',
      command: 'recover-master',
      stoppedWith: 'exit 130, "stopped before step X"',
      then: '--resume: exit 0',
    })
    // Seventeen recoveries, each stopped then resumed: about 16 s apiece, more on a loaded machine.
  }, 900_000)

  it("a backend's sshd killed in the middle of the push", async () => {
    await loseMasterDb()
    const r = await recoverWithFault(/\[12\/18\] /, () => killSshd('b2'))
    try {
      expect(r.exitCode, r.stderr).toBe(4)
      expect(r.stderr).toMatch(/b2/)
      expect(r.stderr).toMatch(/step (push|start-frontends)/)
    } finally {
      await startSshd('b2')
    }
    await resume(runIdOf(r), 'b2 sshd killed')
    rows.push({
      fault: "a backend's sshd killed mid-step",
      command: 'recover-master',
      stoppedWith: 'exit 4, host b2, step push',
      then: 'sshd back, --resume: exit 0',
    })
  })

  it("a backend's sshd killed in the middle of the push, then rolled back (refused while b2 is still down, then run again)", async () => {
    await loseMasterDb()
    // A master restarted without its db may not write one until it is used: then there is none to put back.
    const masterDb = async () => (await onHost('mupdate', 'sha256sum /var/lib/cyrus/mailboxes.db 2>/dev/null || echo missing')).stdout.split(/\s+/)[0]
    const masterEntries = async () => Object.keys(JSON.parse((await onHost('mupdate', `${CTL} -d`)).stdout)).length
    const before = await masterDb()
    const entriesBefore = await masterEntries()
    const r = await recoverWithFault(/\[12\/18\] /, () => killSshd('b2'))
    const run = runIdOf(r)
    let rollback
    try {
      expect(r.exitCode, r.stderr).toBe(4)
      expect(r.stderr).toMatch(new RegExp(`or undo what it did: murderctl recover-master -i \\S+ --rollback ${run}`))
      // b2 is still down: the rollback refuses to start (nothing changed), and says how to go on.
      rollback = await murderctl(['recover-master', '-i', lab().inventory, '--rollback', run, '--yes', '--json'])
      figures.runs++
      expect(rollback.exitCode, JSON.stringify(rollback.json)).toBe(4)
      expect(rollback.json.error.host).toBe('b2')
      expect(rollback.json.error.hint).toMatch(new RegExp(`nothing was changed: bring b2 back, then --rollback ${run} again`))
    } finally {
      await startSshd('b2')
    }
    rollback = await murderctl(['recover-master', '-i', lab().inventory, '--rollback', run, '--yes', '--json'])
    figures.runs++
    figures.rolledBack++
    expect(rollback.exitCode, JSON.stringify(rollback.json?.error ?? rollback.json?.verified)).toBe(0)
    // As before the run: the master's (lost) list, by sha256 when it had a file, the frontends started, the lock released.
    if (before !== 'missing') expect(await masterDb()).toBe(before)
    expect(await masterEntries()).toBe(entriesBefore)
    expect(rollback.json.results.filter((u: {status: string}) => u.status !== 'done' && u.status !== 'skipped')).toEqual([])
    expect(rollback.json.results.map((u: {id: string; host: string}) => `${u.id}@${u.host}`)).toEqual(
      expect.arrayContaining(['restore-save-backend-dbs@b2', 'restore-set-aside-frontend-dbs@fe1', 'undo-stop-frontends@fe2', 'undo-lock@mupdate']),
    )
    expect(rollback.json.verified.filter((v: {check: string}) => v.check === 'running as before the run').map((v: {host: string}) => v.host)).toEqual(
      expect.arrayContaining(['mupdate', 'fe1', 'fe2']),
    )
    expect((await onHost('mupdate', 'test -e /var/lib/cyrus/murderctl-recovery.lock; echo $?')).stdout.trim()).toBe('1')
    figures.copiesChecked += await assertAllJournalCopiesIntact()
    // The master is still lost: a new run recovers it.
    const again = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes', '--json'])
    figures.runs++
    expect(again.exitCode, JSON.stringify(again.json?.error)).toBe(0)
    rows.push({
      fault: "a backend's sshd killed mid-step, then rolled back",
      command: 'recover-master --rollback',
      stoppedWith: 'exit 4, host b2, step push; the rollback with b2 still down: exit 4, host b2',
      then: 'sshd back, --rollback again: exit 0, the master db back by sha256, frontends started, lock released',
    })
  })

  it("the master's cyrus-master killed in the middle of the push", async () => {
    await loseMasterDb()
    // Killed as the push starts (while the backends' dbs are saved, just before): a push of 40
    // mailboxes is over before a kill from outside lands.
    const r = await recoverWithFault(/\[11\/18\] /, killCyrusMaster)
    try {
      expect(r.exitCode, r.stderr).not.toBe(0)
      expect(r.stderr).toMatch(/step (save-backend-dbs|push|start-frontends|verify)/)
      expect(r.stderr).toMatch(/host (b1|b2|mupdate|fe1|fe2)|b1|b2/)
    } finally {
      // What the message says to do: start the master, then resume.
      await startMaster()
    }
    await resume(runIdOf(r), 'master killed')
    rows.push({
      fault: "the master's cyrus-master killed mid-push",
      command: 'recover-master',
      stoppedWith: 'exit 1, host b1/b2, step push (cannot reach MUPDATE)',
      then: 'master started, --resume: exit 0',
    })
  })

  it('a second operator starting a run is refused while the first goes on', async () => {
    await loseMasterDb()
    // The first run waits at its diff prompt, holding the lock, while the second operator tries:
    // a run that raced through first (6 s on the lab) would leave the second nothing to meet.
    let second: Awaited<ReturnType<typeof murderctl>> | undefined
    let resumeBeside: Awaited<ReturnType<typeof murderctl>> | undefined
    const first = await murderctlTty(
      ['recover-master', '-i', lab().inventory, '--source', 'backends'],
      [
        {when: /Go ahead with this plan\? \[y\/N\]/, send: 'y\n'},
        {
          when: /with these changes\? \[y\/N\]/,
          send: 'y\n',
          before: async () => {
            const run = runJournals().at(-1)!.split('/').at(-2)!
            second = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes', '--json'])
            // Resuming the first run while it lives is refused too: never two processes on one journal.
            resumeBeside = await murderctl(['recover-master', '-i', lab().inventory, '--resume', run, '--yes', '--json'])
            figures.runs += 2
          },
        },
      ],
    )
    figures.runs++
    figures.faults++
    expect(first.exitCode, first.output).toBe(0)
    expect(second!.exitCode, JSON.stringify(second!.json)).toBe(7)
    expect(second!.json.error).toMatchObject({host: 'mupdate', step: 'lock'})
    expect(second!.json.error.message).toMatch(/another run holds the murder's lock: run \S+ \(recover-master, pid \d+ on /)
    expect(second!.json.error.hint).not.toMatch(/--resume/)
    expect(resumeBeside!.exitCode, JSON.stringify(resumeBeside!.json)).toBe(7)
    expect(resumeBeside!.json.error.message).toMatch(/is still running: pid \d+ on /)
    rows.push({
      fault: 'a second operator starting a run',
      command: 'recover-master',
      stoppedWith: 'the second: exit 7, host mupdate, step lock, owner pid/host/start shown; resuming the first while it waits: exit 7, "still running"',
      then: 'the first: exit 0',
    })
  })

  it("the master's disk full when the copy aside is made", async () => {
    const lib = join(lab().dir, 'hosts', 'mupdate', 'lib')
    await loseMasterDb(undefined, {restart: false})
    // The master's configdirectory on a small tmpfs of its own.
    await onHost(
      'mupdate',
      `d=$(mktemp -d) && cp -a /var/lib/cyrus/. "$d"/ && mount -t tmpfs -o size=16m,mode=750 fault-full /var/lib/cyrus && cp -a "$d"/. /var/lib/cyrus/ && chown cyrus:mail /var/lib/cyrus && rm -rf "$d" && ${svc()} start`,
    )
    try {
      // Stopped before the copy aside, the disk fills, then the run goes on.
      const stopped = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes'], {interruptWhen: /\[9\/18\] /})
      figures.runs++
      expect(stopped.exitCode, stopped.stderr).toBe(130)
      const run = runIdOf(stopped)
      await onHost('mupdate', 'dd if=/dev/zero of=/var/lib/cyrus/fault-filler bs=64k 2>/dev/null; true')
      const full = await murderctl(['recover-master', '-i', lab().inventory, '--resume', run, '--yes', '--json'])
      figures.runs++
      figures.faults++
      expect(full.exitCode, JSON.stringify(full.json)).toBe(1)
      expect(full.json.error).toMatchObject({host: 'mupdate', step: 'save-master-db'})
      expect(full.json.error.message).toMatch(/No space left on device/)
      // Nothing half-written is left under a copy's name.
      expect((await onHost('mupdate', `ls /var/lib/cyrus | grep -c -- "${run}-save-master-db" || true`)).stdout.trim()).toBe('0')
      await onHost('mupdate', 'rm -f /var/lib/cyrus/fault-filler')
      await resume(run, 'disk full')
    } finally {
      // The tmpfs's files (the db, the copies aside) back onto the lab's own folder.
      await onHost(
        'mupdate',
        `${svc()} stop; rm -f /var/lib/cyrus/fault-filler; if mountpoint -q /var/lib/cyrus && [ "$(stat -f -c %T /var/lib/cyrus)" = tmpfs ]; then find ${lib} -mindepth 1 -delete && cp -a /var/lib/cyrus/. ${lib}/ && umount /var/lib/cyrus; fi; ${svc()} start`,
      )
    }
    rows.push({
      fault: "the master's disk full at the copy aside (16 MB tmpfs)",
      command: 'recover-master',
      stoppedWith: 'exit 1, host mupdate, step save-master-db, "No space left on device"; no partial copy left',
      then: 'space freed, --resume: exit 0',
    })
  })

  it('a host key changed in the middle of the run', async () => {
    await loseMasterDb()
    const config = await newHostKeyConfig('b2')
    // While the master's db is set aside and it restarts (two steps on the master only), b2
    // comes back with another key; the diff then reconnects to it.
    const r = await recoverWithFault(/\[6\/18\] /, async () => {
      await killSshd('b2')
      await startSshd('b2', config)
    })
    try {
      expect(r.exitCode, r.stderr).toBe(5)
      expect(r.stderr).toMatch(/host b2/)
      expect(r.stderr).toMatch(/step diff/)
      expect(r.stderr).toMatch(/host key/i)
    } finally {
      await killSshd('b2')
      await startSshd('b2')
    }
    await resume(runIdOf(r), 'host key changed')
    rows.push({
      fault: 'a host key changed mid-run',
      command: 'recover-master',
      stoppedWith: 'exit 5, host b2, step diff, "host key"',
      then: 'the right key back, --resume: exit 0',
    })
  })

  it('a Cyrus tool printing an error and exiting 0', async () => {
    await loseMasterDb()
    const inv = fakeToolInventory('b2')
    const r = await murderctl(['recover-master', '-i', inv, '--source', 'backends', '--yes', '--json'])
    figures.runs++
    figures.faults++
    expect(r.exitCode, JSON.stringify(r.json)).not.toBe(0)
    expect(r.json.error).toMatchObject({host: 'b2', step: 'push'})
    // The fix is outside murderctl (here: the real tool back); the same run then finishes.
    await resume(runIdOf(r), 'tool error with exit 0')
    rows.push({
      fault: 'a Cyrus tool printing an error and exiting 0 (ctl_mboxlist -m)',
      command: 'recover-master',
      stoppedWith: `exit ${r.exitCode}, host b2, step push`,
      then: '--resume: exit 0',
    })
  })
})

beforeAll(installFakeTools)

describe('fault matrix: sync-backends --yes (apply)', () => {
  let before: Record<string, string[]>
  let n = 0
  /** A divergence for sync-backends to repair: a new local mailbox on b1 (and one on b2), behind the master's back. */
  async function diverge() {
    n++
    await onHost('b1', `${CTL} -u`, dumpEntry(`user.fault${n}`, `fault${n}`))
    await onHost('b2', `${CTL} -u`, dumpEntry(`user.faultb${n}`, `faultb${n}`))
    before = await snapshot()
  }
  const sync = (inv = lab().inventory) => murderctl(['sync-backends', '-i', inv, '--yes', '--json'])
  // Progress lines (to inject on) are only printed without --json: "[k/8] <step title>".
  const syncInjected = (when: RegExp, inject: () => Promise<unknown>, inv = lab().inventory) =>
    murderctl(['sync-backends', '-i', inv, '--yes'], {injectWhen: when, inject})
  const DIFF = /\[2\/8\] /
  const PUSH = /\[6\/8\] /
  async function syncAgain(what: string) {
    const r = await sync()
    figures.runs++
    figures.resumed++
    expect(r.exitCode, `sync-backends after ${what}: ${r.stdout.slice(0, 2000)}`).toBe(0)
  }
  async function syncResume(run: string, what: string) {
    expect(run, `no run id to resume after ${what}`).toBeTruthy()
    const r = await murderctl(['sync-backends', '-i', lab().inventory, '--resume', run, '--yes', '--json'])
    figures.runs++
    figures.resumed++
    expect(r.exitCode, `sync-backends --resume after ${what}: ${JSON.stringify(r.json?.error)}`).toBe(0)
    for (const b of BACKENDS) expect((await onHost(b, `${CTL} -m -w`)).stdout, `${b} -m -w after the resume`).toBe('')
    return r
  }
  const noLock = async () => expect((await onHost('mupdate', 'test -e /var/lib/cyrus/murderctl-recovery.lock; echo $?')).stdout.trim()).toBe('1')
  beforeAll(async () => {
    await waitLabHealthy(60_000)
  })
  afterEach(async () => {
    await assertNothingLost(before)
  })
  afterAll(async () => {
    await onHost('mupdate', `${svc()} start`)
    for (const b of BACKENDS) await onHost(b, `${CTL} -m -a`).catch(() => {})
    await waitLabHealthy(60_000)
    process.stderr.write(
      `\n[fault matrix] ${JSON.stringify(figures)}\n${rows.map((r) => `| ${r.fault} | ${r.command} | ${r.stoppedWith} | ${r.then} |`).join('\n')}\n`,
    )
  })

  it("a backend's sshd killed while the diff is made", async () => {
    await diverge()
    const r = await syncInjected(DIFF, () => killSshd('b1'))
    figures.runs++
    figures.faults++
    try {
      expect(r.exitCode, r.stderr).toBe(4)
      expect(r.stderr).toMatch(/host b1/)
      expect(r.stderr).toMatch(/step (lock|diff)/)
      // Stopped before its first change: the lock is given back and the run closed.
      expect(r.stderr).toMatch(/run it again.*nothing was changed/)
      await noLock()
    } finally {
      await startSshd('b1')
    }
    await syncAgain('sshd killed')
    rows.push({
      fault: "a backend's sshd killed mid-step (the diff)",
      command: 'sync-backends',
      stoppedWith: 'exit 4, host b1, step diff; nothing changed, lock released',
      then: 'run again: exit 0',
    })
  })

  it("a backend's sshd killed in the middle of the push: stops with host and step, --resume finishes", async () => {
    await diverge()
    // b1's push takes 3 s (a ctl_mboxlist that sleeps first): the kill lands while it runs.
    const r = await syncInjected(PUSH, () => new Promise((res) => setTimeout(res, 1000)).then(() => killSshd('b1')), slowPushInventory('b1'))
    figures.runs++
    figures.faults++
    try {
      expect(r.exitCode, r.stderr).toBe(4)
      expect(r.stderr).toMatch(/host b1/)
      expect(r.stderr).toMatch(/step push/)
      expect(r.stderr).toMatch(/--resume \S+/)
    } finally {
      await startSshd('b1')
    }
    const resumed = await syncResume(runIdOf(r), 'b1 sshd killed mid-push')
    expect(resumed.json.result.backends.map((b: any) => [b.backend, b.applied, b.verified])).toEqual([
      ['b1', true, true],
      ['b2', true, true],
    ])
    rows.push({
      fault: "a backend's sshd killed mid-push",
      command: 'sync-backends',
      stoppedWith: 'exit 4, host b1, step push, with the --resume command',
      then: 'sshd back, --resume: exit 0, b2 not pushed twice',
    })
  })

  it("the master's cyrus-master killed in the middle of the push", async () => {
    await diverge()
    const r = await syncInjected(PUSH, () => new Promise((res) => setTimeout(res, 1000)).then(killCyrusMaster), slowPushInventory('b1'))
    figures.runs++
    figures.faults++
    try {
      expect(r.exitCode, r.stderr).not.toBe(0)
      expect(r.stderr).toMatch(/host b1/)
      expect(r.stderr).toMatch(/step push/)
      expect(r.stderr).toMatch(/MUPDATE|mupdate/)
    } finally {
      await startMaster()
      await waitLabHealthy(60_000)
    }
    await syncResume(runIdOf(r), 'master killed mid-push')
    rows.push({
      fault: "the master's cyrus-master killed mid-push",
      command: 'sync-backends',
      stoppedWith: `exit ${r.exitCode}, host b1, step push (cannot reach MUPDATE)`,
      then: 'master started, --resume: exit 0',
    })
  })

  it('Ctrl-C at the step boundaries around the first change stops resumably (or, before it, closed), and finishes', async () => {
    // During the review (stop before the first copy: closed, lock released), during the first
    // copy (stop after it: resumable), during the push (stop before the verification).
    for (const k of [3, 4, 6]) {
      await diverge()
      const r = await murderctl(['sync-backends', '-i', lab().inventory, '--yes'], {interruptWhen: new RegExp(`\\[${k}/8\\] `)})
      figures.runs++
      figures.faults++
      expect(r.exitCode, `Ctrl-C during step ${k}: ${r.stderr}`).toBe(130)
      expect(r.stderr).toMatch(/interrupted: stopped before step \S+/)
      // The signal lands a moment after the step's line: the stop may come a step later.
      if (/run it again/.test(r.stderr)) {
        expect(r.stderr).toMatch(/nothing was changed/)
        await noLock()
        await syncAgain(`Ctrl-C during step ${k}`)
      } else await syncResume(runIdOf(r), `Ctrl-C during step ${k}`)
      await assertNothingLost(before)
    }
    rows.push({
      fault: 'Ctrl-C during the review, the first copy aside, the push',
      command: 'sync-backends',
      stoppedWith: 'exit 130, "stopped before step X" (before the first change: lock released, run closed)',
      then: 'run again, or --resume: exit 0',
    })
  })

  it("the master's cyrus-master killed as the run starts", async () => {
    await diverge()
    const r = await syncInjected(DIFF, killCyrusMaster)
    figures.runs++
    figures.faults++
    expect(r.exitCode, r.stderr).not.toBe(0)
    expect(r.stderr + r.stdout).toMatch(/b1/)
    expect(r.stderr + r.stdout).toMatch(/MUPDATE|mupdate/)
    await onHost('mupdate', `${svc()} start`)
    await waitLabHealthy(60_000)
    await syncAgain('master killed')
    rows.push({
      fault: "the master's cyrus-master killed (as the diff is made)",
      command: 'sync-backends',
      stoppedWith: `exit ${r.exitCode}, hosts b1/b2, step diff: cannot reach the MUPDATE master; nothing changed, lock released`,
      then: 'master started, run again: exit 0',
    })
  })

  it('a run in progress elsewhere: refused while the lock is held', async () => {
    await diverge()
    // A recovery's lock, held by a live process of this machine (this test runner).
    const owner = JSON.stringify({
      run: '20261128T000000Z-recover-master-live',
      host: (await import('node:os')).hostname(),
      pid: process.pid,
      startedAt: new Date().toISOString(),
      command: 'recover-master',
    })
    await onHost(
      'mupdate',
      `mkdir /var/lib/cyrus/murderctl-recovery.lock && echo 20261128T000000Z-recover-master-live > /var/lib/cyrus/murderctl-recovery.lock/run && cat > /var/lib/cyrus/murderctl-recovery.lock/owner`,
      owner,
    )
    try {
      const r = await sync()
      figures.runs++
      figures.faults++
      expect(r.exitCode, r.stdout).toBe(7)
      expect(r.json.error).toMatchObject({host: 'mupdate', step: 'lock'})
      expect(r.json.error.message).toMatch(/another run holds the murder's lock: run 20261128T000000Z-recover-master-live/)
    } finally {
      await onHost('mupdate', 'rm -r /var/lib/cyrus/murderctl-recovery.lock')
    }
    await syncAgain('lock held')
    rows.push({
      fault: 'a second operator starting a run',
      command: 'sync-backends',
      stoppedWith: 'exit 7, host mupdate, step lock; nothing applied',
      then: 'lock released, run again: exit 0',
    })
  })

  it('a Cyrus tool printing an error and exiting 0', async () => {
    await diverge()
    const r = await sync(fakeToolInventory('b1'))
    figures.runs++
    figures.faults++
    expect(r.exitCode, r.stdout).not.toBe(0)
    expect(r.json.error).toMatchObject({host: 'b1', step: 'push'})
    expect(r.json.error.hint).toMatch(/--resume/)
    // The real tool back (the lab's inventory): the same run finishes.
    await syncResume(runIdOf(r), 'tool error with exit 0')
    rows.push({
      fault: 'a Cyrus tool printing an error and exiting 0',
      command: 'sync-backends',
      stoppedWith: `exit ${r.exitCode}, host b1, step push`,
      then: '--resume: exit 0',
    })
  })
})

/** The lab inventory with `host`'s ctl_mboxlist -m (not -w) starting 3 s late: a push long enough to hit. */
const slowPushInventory = (host: string) => fakeToolInventory(host, 'slow')
