// The fault matrix of issue 10 on a unified murder (recover-master from the backends: slaves
// off, a local-only push from each backend, slaves back on). For each fault: the run stops
// naming the host and the step with a resume hint, --resume finishes, no mailbox is lost
// (every backend's live local set unchanged, the master holds their union), every journaled
// copy is intact, and the backends' mupdate slaves run again, connected, holding the others'
// mailboxes as remote entries. test/lab/fault-matrix.test.ts has the standard murder's.
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {lab, listOf, loseMasterDb, murderctl, murderctlTty, onHost, scratchLeftByLabRuns, useFileLab} from './helpers.js'
import {
  assertNothingLost,
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
  newHostKeyConfig,
} from './faults.js'

useFileLab({topology: 'unified'})

const STEPS = 16
const figures = newFigures()
const rows: {fault: string; stoppedWith: string; then: string}[] = []
const at = (k: number) => new RegExp(`\\[${k}/${STEPS}\\] `)
/** "host H, step S" of a stopped run's message, for the table. */
const where = (r: {stderr: string}) => r.stderr.match(/host \S+, step [\w-]+/)?.[0] ?? r.stderr.split('\n').pop()

const resume = (run: string, what: string) => resumeRun(figures, run, what)

/** recover-master on a master lost and restarted empty, with a fault injected once its output matches `when`. */
async function recoverWithFault(when: RegExp, inject: () => Promise<unknown>) {
  await loseMasterDb()
  const r = await recover(figures, when, inject)
  expect(runIdOf(r), `a resume hint in: ${r.stderr}`).toBeTruthy()
  return r
}

describe('fault matrix: recover-master (unified, from the backends)', () => {
  let before: Record<string, string[]>
  beforeAll(async () => {
    await installFakeTools()
    before = await snapshot()
    expect(before.b1.length + before.b2.length).toBe(40)
  })
  afterEach(async () => {
    await assertNothingLost(before, figures)
    // The slaves the run turned off are on again, connected, and hold the other backend's
    // mailboxes as remote entries.
    for (const b of BACKENDS) {
      expect((await onHost(b, 'grep -c "^#.*mupdate.*disabled by murderctl" /etc/cyrus.conf || true')).stdout.trim(), `${b}'s slave`).toBe('0')
      expect((await listOf(b)).size, `${b}'s mailbox list`).toBe(40)
    }
    const status = await murderctl(['status', '-i', lab().inventory, '--json', '--no-counts'])
    for (const b of status.json.hosts.filter((h: any) => h.role === 'backend')) expect(b.mupdate, b.name).toMatchObject({enabled: true, slaveConnected: true})
    // No run, finished or resumed, left a scratch folder (a local-only list, a kept dump) behind.
    expect(await scratchLeftByLabRuns()).toBe('')
  })
  afterAll(async () => {
    process.stderr.write(
      `\n[fault matrix, unified] ${JSON.stringify(figures)}\n${rows.map((r) => `| ${r.fault} | recover-master | ${r.stoppedWith} | ${r.then} |`).join('\n')}\n`,
    )
  })

  // A sample of the boundaries: with the slaves just turned off, with the list put in memory,
  // with the master empty and running, after the diff (the step that asks), after the push with
  // the slaves still off, and with the list going back to disk.
  it.each([3, 6, 7, 8, 11, 12])(`Ctrl-C during step %i of ${STEPS} stops before the next, and --resume finishes`, async (k) => {
    await loseMasterDb()
    const r = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes'], {interruptWhen: at(k)})
    figures.runs++
    figures.faults++
    expect(r.exitCode, r.stderr).toBe(130)
    expect(r.stderr).toMatch(/interrupted: stopped before step \S+/)
    await resume(runIdOf(r), `Ctrl-C during step ${k}`)
    rows.push({
      fault: `Ctrl-C during step ${k}/${STEPS}`,
      stoppedWith: `exit 130, "${r.stderr.match(/stopped before step [\w-]+/)![0]}"`,
      then: '--resume: exit 0',
    })
  })

  it("a backend's sshd killed during the local push", async () => {
    const r = await recoverWithFault(at(11), () => killSshd('b2'))
    try {
      expect(r.exitCode, r.stderr).toBe(4)
      expect(r.stderr).toMatch(/host b2/)
      expect(r.stderr).toMatch(/step (push|master-db-to-disk|verify-backends|enable-slaves)/)
    } finally {
      await startSshd('b2')
    }
    await resume(runIdOf(r), 'b2 sshd killed')
    rows.push({fault: "a backend's sshd killed during the local push", stoppedWith: `exit 4, ${where(r)}`, then: 'sshd back, --resume: exit 0'})
  })

  it("the master's cyrus-master killed in the middle of the push", async () => {
    // Killed as the push starts (the backends' dbs being saved): a push of 40 is over before a kill from outside lands.
    const r = await recoverWithFault(at(10), killCyrusMaster)
    try {
      expect(r.exitCode, r.stderr).not.toBe(0)
      expect(r.stderr).toMatch(/host (b1|b2|mupdate)/)
      expect(r.stderr).toMatch(/step (save-backend-dbs|push|master-db-to-disk|verify-backends|enable-slaves|verify)/)
    } finally {
      await startMaster()
    }
    await resume(runIdOf(r), 'master killed')
    rows.push({fault: "the master's cyrus-master killed mid-push", stoppedWith: `exit ${r.exitCode}, ${where(r)}`, then: 'master started, --resume: exit 0'})
  })

  it('a Cyrus tool printing an error and exiting 0 (the local-only ctl_mboxlist -m -f)', async () => {
    await loseMasterDb()
    const r = await murderctl(['recover-master', '-i', fakeToolInventory('b2'), '--source', 'backends', '--yes', '--json'])
    figures.runs++
    figures.faults++
    expect(r.exitCode, JSON.stringify(r.json)).not.toBe(0)
    expect(r.json.error).toMatchObject({host: 'b2', step: 'push'})
    expect(r.json.error.message).toMatch(/simulated by the fault matrix/)
    await resume(runIdOf(r), 'tool error with exit 0')
    rows.push({fault: 'a Cyrus tool printing an error and exiting 0', stoppedWith: `exit ${r.exitCode}, host b2, step push`, then: '--resume: exit 0'})
  })

  it('a host key changed in the middle of the run', async () => {
    const config = await newHostKeyConfig('b2')
    // While the master's db is set aside (a step on the master only), b2 comes back with another
    // key: the next step on b2 must refuse it, not trust it.
    const r = await recoverWithFault(at(5), async () => {
      await killSshd('b2')
      await startSshd('b2', config)
    })
    try {
      expect(r.exitCode, r.stderr).toBe(5)
      expect(r.stderr).toMatch(/host b2/)
      expect(r.stderr).toMatch(/host key/i)
    } finally {
      await killSshd('b2')
      await startSshd('b2')
    }
    await resume(runIdOf(r), 'host key changed')
    rows.push({fault: 'a host key changed mid-run', stoppedWith: `exit 5, ${where(r)}, "host key"`, then: 'the right key back, --resume: exit 0'})
  })

  it('a second operator starting a run is refused while the first waits at its diff', async () => {
    await loseMasterDb()
    let second: Awaited<ReturnType<typeof murderctl>> | undefined
    const first = await murderctlTty(
      ['recover-master', '-i', lab().inventory, '--source', 'backends'],
      [
        {when: /Go ahead with this plan\? \[y\/N\]/, send: 'y\n'},
        {
          when: /with these changes\? \[y\/N\]/,
          send: 'y\n',
          before: async () => {
            second = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes', '--json'])
            figures.runs++
          },
        },
      ],
    )
    figures.runs++
    figures.faults++
    expect(first.exitCode, first.output).toBe(0)
    expect(second!.exitCode, JSON.stringify(second!.json)).toBe(7)
    expect(second!.json.error).toMatchObject({host: 'mupdate', step: 'lock'})
    expect(second!.json.error.message).toMatch(/another run holds the murder's lock/)
    rows.push({fault: 'a second operator starting a run', stoppedWith: 'the second: exit 7, host mupdate, step lock', then: 'the first: exit 0'})
  })
})
