// The lost-master disaster on a unified murder: what Cyrus does without murderctl, and
// recover-master (with a stop part-way and --resume) making the murder whole again.
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {ImapClient} from '../../src/imap/client.js'
import {labDown, labPassword, labUp, type LabState} from '../../src/lab/lab.js'
import {execa} from 'execa'
import {
  assertAllJournalCopiesIntact,
  CTL,
  freezeMupdate,
  journalEvents,
  labChecksumsOf,
  listOf,
  loseMasterDb,
  memoryLeft,
  murderctl,
  murderctlTty,
  onHost,
  scratchLeft as scratchLeftOf,
  spareLabBase,
  waitForProcess,
} from './helpers.js'

let state: LabState
let before: Map<string, string>
/** This run's scratch (local-only lists, the dumps kept for them) still on the backends. */
const scratchLeft = (run: string) => scratchLeftOf([run], state.dir)
const confSum = async () => (await onHost('mupdate', 'sha256sum /etc/imapd.conf', undefined, state.dir)).stdout.split(' ')[0]
const remoteCount = async (h: string) => [...(await listOf(h, state.dir)).values()].filter(Boolean).length

describe('recover-master on a unified lab', () => {
  afterEach(async () => {
    if (state) await assertAllJournalCopiesIntact(state.inventory, state.dir)
  })
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'murderctl-unified-'))
    state = await labUp({dir, topology: 'unified', base: spareLabBase(), mailboxes: 40})
    before = await listOf('mupdate', dir)
  })
  afterAll(async () => {
    if (state) await labDown({dir: state.dir})
  })

  it('without murderctl: the slaves meet the empty master and drop every remote entry', async () => {
    expect(await remoteCount('b1')).toBe(20)
    await loseMasterDb(state.dir)
    // The slaves reconnect within mupdate_retry_delay (3 s in the lab) and resync.
    const deadline = Date.now() + 30_000
    while ((await remoteCount('b1')) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500))
    expect(await remoteCount('b1')).toBe(0)
    expect(await remoteCount('b2')).toBe(0)
    // Their own mailboxes survive in 3.6 (the 2.3 slaves deleted those too).
    expect((await listOf('b1', state.dir)).size).toBe(20)
  })

  it('--dry-run changes nothing on any host', async () => {
    const sums = await labChecksumsOf(state.dir)
    const r = await murderctl(['recover-master', '-i', state.inventory, '--dry-run', '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.json.playbook).toBe('recover-master-unified-backends')
    expect(await labChecksumsOf(state.dir)).toEqual(sums)
  })

  it('asks before the first change; stops before any push when a backend is lost mid-run, and --resume finishes', async () => {
    // Without a terminal and without --yes nothing changes: the plan needs consent first.
    const sums = await labChecksumsOf(state.dir)
    const refused = await murderctl(['recover-master', '-i', state.inventory, '--json'])
    expect(refused.exitCode).toBe(6)
    expect(refused.json.error.message).toMatch(/before step lock \(nothing was changed\)/)
    expect(await labChecksumsOf(state.dir)).toEqual(sums)
    // At a terminal: yes to the plan, no at the diff: the run stops after the diff, slaves off.
    const first = await murderctlTty(
      ['recover-master', '-i', state.inventory],
      [
        {when: /Go ahead with this plan\? \[y\/N\]/, send: 'y\n'},
        {when: /with these changes\? \[y\/N\]/, send: 'n\n'},
      ],
    )
    expect(first.exitCode, first.output).toBe(1)
    expect(first.output).toMatch(/The plan: these steps change hosts/)
    expect(first.output).toMatch(/stopped after step diff/)
    const run = first.output.match(/--resume (\S+)/)![1]
    for (const b of ['b1', 'b2'])
      expect((await onHost(b, 'grep -c "^#.*mupdate.*disabled by murderctl" /etc/cyrus.conf', undefined, state.dir)).stdout.trim()).toBe('1')
    // The local-only lists the diff built for the push were removed when the run stopped.
    expect(await scratchLeft(run)).toBe('')
    // The diff left out the remote entries a plain -m would have claimed (none left here: the
    // slaves dropped them already) and offers each backend's own mailboxes.
    // Now b2 becomes unreachable.
    await onHost('b2', 'kill $(cat /run/sshd.pid)', undefined, state.dir)
    const stopped = await murderctl(['recover-master', '-i', state.inventory, '--resume', run, '--yes', '--json'])
    expect(stopped.exitCode).toBe(4)
    expect(stopped.json.error.message).toMatch(/b2/)
    expect((await listOf('mupdate', state.dir)).size).toBe(0) // nothing was pushed
    await onHost('b2', `/usr/sbin/sshd -f ${state.dir}/hosts/b2/sshd_config`, undefined, state.dir)
    const done = await murderctl(['recover-master', '-i', state.inventory, '--resume', run, '--yes', '--json'])
    expect(done.exitCode, done.stderr).toBe(0)
    expect(done.json.results.filter((u: any) => u.step === 'disable-slaves').every((u: any) => u.status === 'already-done')).toBe(true)
    // The resumed diff built each local-only list again (the stopped run's were gone); the push took them and removed them.
    for (const u of done.json.results.filter((x: any) => x.step === 'push')) expect(u.data, u.host).toMatchObject({builtBy: 'diff'})
    expect(await scratchLeft(run)).toBe('')
    // Whole again: the master has every mailbox where it lives; the slaves took the remote entries back.
    const master = await listOf('mupdate', state.dir)
    expect(new Map([...master].sort())).toEqual(new Map([...before].sort()))
    expect(await remoteCount('b1')).toBe(20)
    expect(await remoteCount('b2')).toBe(20)
    for (const b of ['b1', 'b2']) {
      expect((await onHost(b, `${CTL} -m -w`, undefined, state.dir)).stdout).toBe('')
      expect((await onHost(b, 'grep -c "^#.*mupdate.*disabled by murderctl" /etc/cyrus.conf || true', undefined, state.dir)).stdout.trim()).toBe('0')
    }
  })

  it("pushes only local mailboxes: a plain -m on an empty master would claim the other backend's", async () => {
    // Slaves off by hand (as the runbook does), then the master lost: the remote entries stay.
    for (const b of ['b1', 'b2'])
      await onHost(
        b,
        'sed "s/^\\tmupdate\\t/#&/" /etc/cyrus.conf > /etc/cyrus.conf.n && mv /etc/cyrus.conf.n /etc/cyrus.conf && kill -HUP $(cat /run/cyrus-master.pid)',
        undefined,
        state.dir,
      )
    await new Promise((r) => setTimeout(r, 1500))
    await loseMasterDb(state.dir)
    expect(await remoteCount('b1')).toBe(20)
    // What Cyrus itself would push from b1: all 40, b2's 20 included.
    const plain = (await onHost('b1', `${CTL} -m -w`, undefined, state.dir)).stdout.trim().split('\n')
    expect(plain).toHaveLength(40)
    const conf = await confSum()
    const r = await murderctl(['recover-master', '-i', state.inventory, '--yes', '--json'])
    expect(r.exitCode, r.stdout).toBe(0)
    // The push went into a tmpfs; the list was installed on disk before the slaves came back.
    expect(r.json.results.find((u: any) => u.step === 'master-db-to-memory').data).toMatchObject({where: 'tmpfs'})
    expect(r.json.results.find((u: any) => u.step === 'master-db-to-disk').data).toMatchObject({installed: '/var/lib/cyrus/mailboxes.db'})
    expect(await confSum()).toBe(conf)
    expect(await memoryLeft(state.dir)).toBe('')
    const diffs = r.json.results.filter((u: any) => u.step === 'diff')
    // Against the master this run emptied, -m -w -a: the lines plain -m -w prints (above), without a FIND per mailbox.
    for (const d of diffs) expect(d.data).toMatchObject({authoritative: true, activate: 20, claimsAvoided: 20})
    // Each push sent the local-only list its diff built (from the same mailboxes.db), then removed
    // it; the diff made it from the dump the run's first read of the backend's list kept (no second -d).
    for (const u of r.json.results.filter((x: any) => x.step === 'push'))
      expect(u.data, u.host).toMatchObject({pushed: 20, authoritative: true, builtBy: 'diff', madeOn: 'host', dump: 'kept'})
    expect(await scratchLeft(r.json.run)).toBe('')
    // Verify, before the slaves came back (so with the lists the preflight read): every backend's
    // -m -w -a empty (it prints an own mailbox the master lacks or places elsewhere) and the
    // master's count the union, so its dump was not read; then every slave agreed with the
    // master, whose count stood while its mailboxes.db kept its checksum.
    const unitData = (step: string) => r.json.results.find((u: any) => u.step === step).data
    // Each backend's -m -w -a is the push's own empty answer, standing while its mailboxes.db and
    // the master's (copied from memory to disk) keep the checksums they had then.
    expect(unitData('verify-backends')).toMatchObject({
      scope: 'backends',
      masterRead: 'count',
      master: 40,
      unionOfBackendsLocal: 40,
      backendListsReread: [],
      backendsMw: [
        {host: 'b1', changes: 0, read: 'checksum'},
        {host: 'b2', changes: 0, read: 'checksum'},
      ],
    })
    expect(unitData('verify')).toMatchObject({scope: 'slaves', masterRead: 'checksum', master: 40})
    expect(
      unitData('verify')
        .slaves.map((x: any) => [x.host, x.entries, x.connected])
        .sort(),
    ).toEqual(['b1', 'b2'].map((h) => [h, 40, true]))
    const master = await listOf('mupdate', state.dir)
    expect(new Map([...master].sort())).toEqual(new Map([...before].sort()))
    // The operator's hand-disabled slaves are running again, and connected.
    const status = await murderctl(['status', '-i', state.inventory, '--json', '--no-counts'])
    for (const b of status.json.hosts.filter((h: any) => h.role === 'backend')) expect(b.mupdate).toMatchObject({enabled: true, slaveConnected: true})
  })

  it('restores from a backup older than the disaster: what changed since comes from the backends', async () => {
    const b = await murderctl(['backup', '-i', state.inventory, '--json'])
    expect(b.exitCode, b.stderr).toBe(0)
    const backup = b.json.backups[0]
    // After the backup, users go on: a mailbox created on b1, one deleted on b2.
    const imap = async (host: string, cmd: string) => {
      const c = await ImapClient.open(state.hosts.find((h) => h.name === host)!.address, 143, {label: host})
      try {
        await c.login('cyrus', labPassword(state.dir))
        await c.ok(cmd)
      } finally {
        await c.logout()
      }
    }
    await imap('b1', 'CREATE user.erin')
    await imap('b2', 'DELETE user.dave.Trash')
    const now = await listOf('mupdate', state.dir)
    expect(now.has('user.erin')).toBe(true)
    expect(now.has('user.dave.Trash')).toBe(false)
    // delete_mode is delayed: the deleted mailbox lives on as DELETED.user.dave.Trash.<hex> on
    // b2, and b2's own slave rewrote its entry without uniqueid (the 3.6 unified quirk).
    const kept = [...now.keys()].filter((n) => n.startsWith('DELETED.user.dave.Trash.'))
    expect(kept).toHaveLength(1)
    expect(JSON.parse((await onHost('b2', `${CTL} -d`, undefined, state.dir)).stdout)[kept[0]].uniqueid).toBeUndefined()

    // Both slaves hold the other backend's change before the master goes (b1 b2's DELETED entry,
    // b2 b1's user.erin): what each -m -w would claim is then fixed, not a race with the slaves.
    for (const [host, name] of [
      ['b1', kept[0]],
      ['b2', 'user.erin'],
    ] as const) {
      const deadline = Date.now() + 30_000
      while (!(await listOf(host, state.dir)).has(name)) {
        if (Date.now() > deadline) throw new Error(`${host}'s slave never received ${name}`)
        await new Promise((r) => setTimeout(r, 250))
      }
    }
    // The master stays down: the slaves keep the remote entries they had, which the backup's
    // list no longer matches (b2 holds b1's user.erin as remote).
    await loseMasterDb(state.dir, {restart: false})
    const r = await murderctl(['recover-master', '-i', state.inventory, '--source', `backup=${backup.dir}`, '--yes', '--json'])
    expect(r.exitCode, JSON.stringify(r.json?.error)).toBe(0)
    expect(r.json.playbook).toBe('recover-master-unified-backup')
    expect(r.json.results.find((u: any) => u.step === 'install-backup').data.entries).toBe(backup.entries)
    // The diff carried exactly the changes since the backup.
    const diff = (host: string) => r.json.results.find((u: any) => u.step === 'diff' && u.host === host).data
    // Each backend's own changes; the lagging remote entries were left to the slaves.
    expect(diff('b1')).toMatchObject({activate: 1, removeFromMupdate: 0, claimsAvoided: 1})
    expect(diff('b2')).toMatchObject({activate: 1, removeFromMupdate: 1, claimsAvoided: 1})
    // Made on b2 itself (ctl_mboxlist -d piped into the awk), the stand-in uniqueid by sha256sum there.
    expect(r.json.results.find((u: any) => u.step === 'push' && u.host === 'b2').data).toMatchObject({withoutUniqueid: 1, madeOn: 'host'})
    const master = await listOf('mupdate', state.dir)
    expect(new Map([...master].sort())).toEqual(new Map([...now].sort()))
    for (const h of ['b1', 'b2']) expect((await onHost(h, `${CTL} -m -w`, undefined, state.dir)).stdout).toBe('')
    // Verified in two parts here too: the backends before their slaves came back, then the slaves.
    const v = (step: string) => r.json.results.find((u: any) => u.step === step).data
    expect(v('verify-backends')).toMatchObject({scope: 'backends', masterRead: 'count', master: now.size})
    expect(v('verify')).toMatchObject({scope: 'slaves', master: now.size})
  })
  it('murderctl stopped at once (Ctrl-C twice) in the middle of the push into the tmpfs: check flags the key, --resume pushes again', async () => {
    const now = await listOf('mupdate', state.dir)
    const conf = await confSum()
    await loseMasterDb(state.dir)
    let interrupt: Promise<unknown> = Promise.resolve()
    const first = await murderctlTty(
      ['recover-master', '-i', state.inventory],
      [
        {when: /Go ahead with this plan\? \[y\/N\]/, send: 'y\n'},
        {
          when: /with these changes\? \[y\/N\]/,
          // The master frozen at the diff: b1's push hangs in it; then the operator presses Ctrl-C twice.
          before: async () => {
            await freezeMupdate(state.dir)
            interrupt = waitForProcess('b1', 'ctl_mboxlist', {args: ' -m -a -f ', dir: state.dir}).then(async () => {
              const pid = (await execa('pgrep', ['-f', `^node .*bin/run.js recover-master -i ${state.inventory}`])).stdout.trim().split('\n')
              for (const sig of ['SIGINT', 'SIGINT'] as const) {
                for (const p of pid) process.kill(Number(p), sig)
                await new Promise((r) => setTimeout(r, 500))
              }
            })
          },
          send: 'y\n',
        },
      ],
    )
    await interrupt
    await freezeMupdate(state.dir, 'mupdate', 'CONT')
    expect(first.exitCode, first.output).toBe(130)
    expect(first.output).toMatch(/stopped at once during step push;[\s\S]*--resume \S+/)
    const run = first.output.match(/--resume (\S+)/)![1]
    const c = await murderctl(['check', '-i', state.inventory, '--only', 'tmpfs-key', '--format', 'json'])
    expect(c.exitCode).toBe(2)
    expect(JSON.parse(c.stdout).checks[0]).toMatchObject({host: 'mupdate', state: 'CRITICAL', fix: `murderctl recover-master --resume ${run}`})

    const done = await murderctl(['recover-master', '-i', state.inventory, '--resume', run, '--yes', '--json'])
    expect(done.exitCode, JSON.stringify(done.json?.error)).toBe(0)
    // Pushed again, or found done: the push left running on a backend may have finished once the master thawed.
    for (const u of done.json.results.filter((x: any) => x.step === 'push')) expect(['done', 'skipped']).toContain(u.status)
    expect(journalEvents(done.json.journal).some((e) => e.event === 'interrupted' && e.data?.atOnce)).toBe(true)
    const master = await listOf('mupdate', state.dir)
    expect(new Map([...master].sort())).toEqual(new Map([...now].sort()))
    expect(await confSum()).toBe(conf)
    expect(await memoryLeft(state.dir)).toBe('')
    for (const h of ['b1', 'b2']) expect((await onHost(h, `${CTL} -m -w`, undefined, state.dir)).stdout).toBe('')
  })
})

// A lab above 400 mailboxes is seeded in bulk with every mailboxes.db in memory, then the lists
// go to disk and the murder restarts: it must end where a real murder does.
describe('a bulk-seeded unified lab (2 x 300)', () => {
  let bulk: LabState
  beforeAll(async () => {
    bulk = await labUp({dir: mkdtempSync(join(tmpdir(), 'murderctl-bulk-')), topology: 'unified', base: spareLabBase(2), mailboxes: 600})
  })
  afterAll(async () => {
    if (bulk) await labDown({dir: bulk.dir, purge: true})
  })

  it('converges exactly: every list complete and on disk, nothing left to push, check OK', async () => {
    const on = (h: string, script: string) => onHost(h, script, undefined, bulk.dir)
    // A unified lab has no frontends: the master and both backends hold every mailbox.
    const lists = Object.fromEntries(await Promise.all(['mupdate', 'b1', 'b2'].map(async (h) => [h, await listOf(h, bulk.dir)] as const)))
    for (const h of ['mupdate', 'b1', 'b2']) expect(lists[h].size, h).toBe(600)
    // Each backend holds its 300 and points at the other's 300; the master points at both.
    for (const [b, other] of [
      ['b1', 'b2'],
      ['b2', 'b1'],
    ]) {
      const servers = [...lists[b].values()]
      expect(servers.filter((s) => s === '')).toHaveLength(300)
      expect(servers.filter((s) => s === other)).toHaveLength(300)
      for (const [name, s] of lists[b]) expect(lists.mupdate.get(name), name).toBe(s === '' ? b : s)
    }
    // Local entries keep their uniqueid (a slave's rewrite would drop it).
    const dump = JSON.parse((await on('b1', `${CTL} -d`)).stdout) as Record<string, {server?: string; uniqueid?: string}>
    expect(Object.values(dump).filter((e) => !e.server && !e.uniqueid)).toEqual([])
    for (const b of ['b1', 'b2']) expect((await on(b, `${CTL} -m -w`)).stdout).toBe('')
    for (const h of bulk.hosts) {
      expect((await on(h.name, 'grep -c mboxlist_db_path /etc/imapd.conf || true')).stdout.trim(), h.name).toBe('0')
      expect((await on(h.name, 'ls /run/cyrus/lab-seed-mailboxes.db 2>/dev/null; stat -c %U:%G:%a /var/lib/cyrus/mailboxes.db')).stdout.trim()).toBe(
        'cyrus:mail:600',
      )
    }
    // Every check but the pair's replication-consistency: entries loaded with ctl_mboxlist -u have
    // no spool and never reach the replica (so it is CRITICAL on any bulk lab, seeded either way).
    const only = ['mupdate-master', 'master-count', 'slaves', 'backend-consistency', 'cyrus-master', 'replication', 'uniqueid', 'lock', 'tmpfs-key']
    const check = await murderctl(['check', '-i', bulk.inventory, ...only.flatMap((c) => ['--only', c])])
    expect(check.exitCode, check.stdout).toBe(0)
  })
})
