// The fault matrix of issue 10, on the real lab: each fault injected into a real recover-master
// (standard murder, rebuilt from the backends: the playbook that touches every host) and into
// sync-backends' apply. For each: the run stops with a message naming the host and the step,
// resuming (or running again) completes, no mailbox is lost (every backend's live local set is
// unchanged and the master holds exactly their union) and every journaled copy is intact.
// The figures are printed at the end for the README's table.
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'
import {isLiveLocal} from '../../src/cyrus/mboxlist-dump.js'
import {assertAllJournalCopiesIntact, CTL, dumpEntry, lab, labHost, loseMasterDb, murderctl, onHost, waitLabHealthy} from './helpers.js'

const BACKENDS = ['b1', 'b2']
const figures = {runs: 0, faults: 0, resumed: 0, mailboxesLost: 0, copiesChecked: 0}
const rows: {fault: string; command: string; stoppedWith: string; then: string}[] = []

const svc = () => join(lab().dir, 'bin', 'cyrus-service')
const sshdConfig = (h: string) => join(lab().dir, 'hosts', h, 'sshd_config')

/** Live local mailboxes of a host, sorted. */
async function liveLocal(host: string): Promise<string[]> {
  const dump = JSON.parse((await onHost(host, `${CTL} -d`)).stdout) as Record<string, {mbtype: string; server?: string}>
  return Object.entries(dump)
    .filter(([, e]) => isLiveLocal(e))
    .map(([n]) => n)
    .sort()
}

async function snapshot(): Promise<Record<string, string[]>> {
  return Object.fromEntries(await Promise.all(BACKENDS.map(async (b) => [b, await liveLocal(b)] as const)))
}

/** Nothing lost: every backend's local set as before, the master holds their union exactly. */
async function assertNothingLost(before: Record<string, string[]>): Promise<void> {
  const union = new Set<string>()
  for (const b of BACKENDS) {
    const now = await liveLocal(b)
    const lost = before[b].filter((n) => !now.includes(n))
    figures.mailboxesLost += lost.length
    expect(now, `${b}'s local mailboxes`).toEqual(before[b])
    for (const n of now) union.add(n)
  }
  const master = Object.keys(JSON.parse((await onHost('mupdate', `${CTL} -d`)).stdout)).sort()
  expect(master).toEqual([...union].sort())
  figures.copiesChecked += await assertAllJournalCopiesIntact()
}

const runIdOf = (r: {stderr: string; json?: any}) => (r.json?.error?.hint ?? r.stderr).match(/--resume (\S+)/)?.[1] as string

/** Kill a host's sshd and every session it holds: murderctl's pooled connection dies too. */
// Stopped first: a cyrus-master (or sshd) that sees a child die forks another, which would
// outlive it holding the port.
const killTree = 'k() { kill -STOP "$1" 2>/dev/null; for c in $(pgrep -P "$1"); do k "$c"; done; kill -KILL "$1" 2>/dev/null; }'
const killSshd = (h: string) => onHost(h, `${killTree}; k "$(cat /run/sshd.pid)"; rm -f /run/sshd.pid`)
// Until init has reaped it, a killed cyrus-master is a zombie that kill -0 still finds.
const killCyrusMaster = () =>
  onHost('mupdate', `${killTree}; p=$(cat /run/cyrus-master.pid); k "$p"; i=0; while [ -e /proc/$p ] && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done`)
const startSshd = (h: string, config = sshdConfig(h)) => onHost(h, `/usr/sbin/sshd -f ${config}`)

/** Start the master as an operator would, and wait until it listens (what the stop message asks). */
async function startMaster() {
  await onHost('mupdate', `${svc()} start`)
  const deadline = Date.now() + 30_000
  const at = `${labHost('mupdate').address}:3905 `
  while ((await onHost('mupdate', `ss -Htln | grep -qF '${at}' && echo up || true`)).stdout.trim() !== 'up') {
    if (Date.now() > deadline) throw new Error('the master does not listen on 3905')
    await new Promise((r) => setTimeout(r, 250))
  }
}

async function resume(run: string, what: string) {
  expect(run, `no run id to resume after ${what}`).toBeTruthy()
  const r = await murderctl(['recover-master', '-i', lab().inventory, '--resume', run, '--yes', '--json'])
  figures.runs++
  figures.resumed++
  expect(r.exitCode, `resume after ${what}: ${JSON.stringify(r.json?.error)}`).toBe(0)
  return r
}

/** One recover-master with a fault injected once its output matches `when`. */
async function recoverWithFault(when: RegExp, inject: () => Promise<unknown>, args: string[] = []) {
  const r = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes', ...args], {injectWhen: when, inject})
  figures.runs++
  figures.faults++
  return r
}

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
    const steps = 16
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
      fault: 'Ctrl-C at each of the 15 step boundaries',
      command: 'recover-master',
      stoppedWith: 'exit 130, "stopped before step X"',
      then: '--resume: exit 0',
    })
  })

  it("a backend's sshd killed in the middle of the push", async () => {
    await loseMasterDb()
    const r = await recoverWithFault(/\[12\/16\] /, () => killSshd('b2'))
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

  it("the master's cyrus-master killed in the middle of the push", async () => {
    await loseMasterDb()
    // Killed as the push starts (while the backends' dbs are saved, just before): a push of 40
    // mailboxes is over before a kill from outside lands.
    const r = await recoverWithFault(/\[11\/16\] /, killCyrusMaster)
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
    let second: Awaited<ReturnType<typeof murderctl>> | undefined
    const first = await recoverWithFault(/\[3\/16\] /, async () => {
      second = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes', '--json'])
      figures.runs++
    })
    expect(first.exitCode, first.stderr).toBe(0)
    expect(second!.exitCode, JSON.stringify(second!.json)).toBe(7)
    expect(second!.json.error).toMatchObject({host: 'mupdate', step: 'lock'})
    expect(second!.json.error.message).toMatch(/another run holds the murder's lock: run \S+ \(recover-master, pid \d+ on /)
    expect(second!.json.error.hint).not.toMatch(/--resume/)
    // Resuming the first run while it lives is refused too (it finished here: refused as complete).
    const resumeBeside = await murderctl([
      'recover-master',
      '-i',
      lab().inventory,
      '--resume',
      runIdOf({stderr: `--resume ${first.stderr.match(/runs\/(\S+?)\/journal/)![1]}`}),
      '--yes',
      '--json',
    ])
    figures.runs++
    expect(resumeBeside.exitCode).toBe(7)
    rows.push({
      fault: 'a second operator starting a run',
      command: 'recover-master',
      stoppedWith: 'the second: exit 7, host mupdate, step lock, owner pid/host/start shown',
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
      const stopped = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes'], {interruptWhen: /\[9\/16\] /})
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
    const key = join(lab().dir, 'fault-host-key')
    const config = join(lab().dir, 'fault-sshd_config')
    writeFileSync(config, readFileSync(sshdConfig('b2'), 'utf8').replace(/^HostKey .*$/m, `HostKey ${key}`))
    await onHost('b2', `rm -f ${key} ${key}.pub && ssh-keygen -q -t ed25519 -N '' -f ${key}`)
    // While the master's db is set aside and it restarts (two steps on the master only), b2
    // comes back with another key; the diff then reconnects to it.
    const r = await recoverWithFault(/\[6\/16\] /, async () => {
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

/**
 * The lab inventory with `host`'s binDir on a copy of Cyrus's tools where ctl_mboxlist's push
 * prints an error and exits 0 (what Cyrus tools do); -d, -u and -m -w still work.
 */
function fakeToolInventory(host: string): string {
  const bin = join(lab().dir, `fault-bin-${host}`)
  const script = `#!/bin/sh
case " $* " in *" -w "*|*" -d "*|*" -u "*) exec /usr/lib/cyrus/bin/ctl_mboxlist "$@";; esac
echo "fatal error: mupdate: could not push: IOERROR: simulated by the fault matrix" >&2
exit 0
`
  const inv = parse(readFileSync(lab().inventory, 'utf8'))
  const h = inv.hosts.find((x: any) => x.name === host)
  h.cyrus = {...h.cyrus, binDir: bin}
  const path = join(lab().dir, `inventory-fault-${host}.yaml`)
  writeFileSync(path, stringify(inv))
  writeFileSync(join(lab().dir, `fault-bin-${host}.sh`), script, {mode: 0o755})
  return path
}

beforeAll(async () => {
  // The fake tool folders: every real tool linked, ctl_mboxlist replaced.
  for (const h of ['b1', 'b2']) {
    const bin = join(lab().dir, `fault-bin-${h}`)
    fakeToolInventory(h)
    await onHost(
      h,
      `mkdir -p ${bin} && for f in /usr/lib/cyrus/bin/*; do ln -sf "$f" ${bin}/; done && rm -f ${bin}/ctl_mboxlist && cp ${join(lab().dir, `fault-bin-${h}.sh`)} ${bin}/ctl_mboxlist && chmod 755 ${bin}/ctl_mboxlist`,
    )
  }
})

describe('fault matrix: sync-backends --yes (apply)', () => {
  let before: Record<string, string[]>
  let n = 0
  /** A divergence for sync-backends to repair: a new local mailbox on b1, behind the master's back. */
  async function diverge() {
    n++
    await onHost('b1', `${CTL} -u`, dumpEntry(`user.fault${n}`, `fault${n}`))
    before = await snapshot()
  }
  const sync = (inv = lab().inventory) => murderctl(['sync-backends', '-i', inv, '--yes', '--json'])
  // Progress lines (to inject on) are only printed without --json.
  const syncInjected = (inject: () => Promise<unknown>) => murderctl(['sync-backends', '-i', lab().inventory, '--yes'], {injectWhen: /diffing/, inject})
  async function syncAgain(what: string) {
    const r = await sync()
    figures.runs++
    figures.resumed++
    expect(r.exitCode, `sync-backends after ${what}: ${r.stdout.slice(0, 2000)}`).toBe(0)
  }
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

  it("a backend's sshd killed while the plan is made", async () => {
    await diverge()
    const r = await syncInjected(() => killSshd('b1'))
    figures.runs++
    figures.faults++
    try {
      expect(r.exitCode, r.stderr).toBe(4)
      expect(r.stderr).toMatch(/host b1/)
    } finally {
      await startSshd('b1')
    }
    await syncAgain('sshd killed')
    rows.push({
      fault: "a backend's sshd killed mid-step",
      command: 'sync-backends',
      stoppedWith: 'exit 4, host b1, step plan; nothing applied',
      then: 'run again: exit 0',
    })
  })

  it("the master's cyrus-master killed as the run starts", async () => {
    await diverge()
    const r = await syncInjected(killCyrusMaster)
    figures.runs++
    figures.faults++
    expect(r.exitCode, r.stderr).not.toBe(0)
    expect(r.stderr + r.stdout).toMatch(/b1/)
    expect(r.stderr + r.stdout).toMatch(/MUPDATE|mupdate/)
    await onHost('mupdate', `${svc()} start`)
    await waitLabHealthy(60_000)
    await syncAgain('master killed')
    rows.push({
      fault: "the master's cyrus-master killed (as the run plans)",
      command: 'sync-backends',
      stoppedWith: `exit ${r.exitCode}, hosts b1/b2, step plan: cannot reach the MUPDATE master; nothing applied`,
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
    expect(JSON.stringify(r.json)).toMatch(/b1/)
    await syncAgain('tool error with exit 0')
    rows.push({
      fault: 'a Cyrus tool printing an error and exiting 0',
      command: 'sync-backends',
      stoppedWith: `exit ${r.exitCode}, host b1, push not verified`,
      then: 'run again: exit 0',
    })
  })
})
