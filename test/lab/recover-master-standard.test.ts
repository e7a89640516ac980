// recover-master on the standard lab: from a backup, from a frontend, rebuilt from the backends.
import {mkdtempSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {tmpdir} from 'node:os'
import {afterEach, beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'
import {
  assertAllJournalCopiesIntact,
  CTL,
  assertJournalCopiesIntact,
  crashCyrusMaster,
  dropEntry,
  dumpEntry,
  freezeMupdate,
  journalEvents,
  lab,
  labChecksums,
  waitLabHealthy,
  listOf,
  loseMasterDb,
  memoryLeft,
  murderctl,
  murderctlInterrupted,
  murderctlTty,
  onHost,
  waitForProcess,
} from './helpers.js'

let before: Map<string, string>

const confSum = async () => (await onHost('mupdate', 'sha256sum /etc/imapd.conf')).stdout.split(' ')[0]
const unit = (r: any, step: string) => r.json.results.find((u: any) => u.step === step)

async function expectWhole() {
  const master = await listOf('mupdate')
  expect(new Map([...master].sort())).toEqual(new Map([...before].sort()))
  for (const fe of ['fe1', 'fe2']) expect((await listOf(fe)).size, fe).toBe(before.size)
}

describe('recover-master on the standard lab', () => {
  beforeAll(async () => {
    before = await listOf('mupdate')
    expect(before.size).toBeGreaterThanOrEqual(40)
  })
  // Nothing lost: every copy any run recorded is still there, as it was.
  afterEach(async () => {
    await assertAllJournalCopiesIntact()
  })

  it("never overwrites a saved copy: a forced rebuild keeps the healthy master's db as it was", async () => {
    // Finding 1 of issue 10: save-master-db used to cp -p the new, empty db over the copy that
    // set-aside-master-db had moved aside, destroying the 40-entry original.
    const original = (await onHost('mupdate', 'sha256sum /var/lib/cyrus/mailboxes.db')).stdout.split(' ')[0]
    // --no-tmpfs: the list is rebuilt on disk all along, as before the tmpfs path existed.
    const r = await murderctl(['recover-master', '-i', lab().inventory, '--force', '--source', 'backends', '--no-tmpfs', '--yes', '--json'])
    expect(r.exitCode, JSON.stringify(r.json?.error)).toBe(0)
    expect(unit(r, 'master-db-to-memory').data).toMatchObject({where: 'disk', reason: '--no-tmpfs'})
    expect(unit(r, 'master-db-to-disk').status).toBe('skipped')
    const copies = journalEvents(r.json.journal).filter((e) => e.event === 'saved-copy')
    const masterOriginal = copies.find((e) => e.step === 'set-aside-master-db')
    expect(masterOriginal.data.sha256).toBe(original)
    expect(copies.find((e) => e.step === 'save-master-db').data.copy).not.toBe(masterOriginal.data.copy)
    expect(await assertJournalCopiesIntact(r.json.journal)).toBe(copies.length)
    await expectWhole()
    // No list installed from memory: the frontends got a cvt_cyrusdb copy of the master's, counted by Cyrus there.
    for (const fe of ['fe1', 'fe2'])
      expect(r.json.results.find((u: any) => u.step === 'install-frontend-dbs' && u.host === fe).data).toMatchObject({
        source: 'cvt_cyrusdb',
        entries: before.size,
        countedOn: 'mupdate',
      })
  })

  it('refuses when the master does not look lost, and --dry-run changes nothing', async () => {
    const sums = await labChecksums()
    const r = await murderctl(['recover-master', '-i', lab().inventory, '--yes', '--json'])
    expect(r.exitCode).toBe(7)
    expect(r.json.error.message).toMatch(/does not look lost/)
    // The master's disk is gone and it is down: the frontends keep the last list they heard.
    await loseMasterDb(undefined, {restart: false})
    const lostSums = await labChecksums()
    const dry = await murderctl(['recover-master', '-i', lab().inventory, '--dry-run', '--json'])
    expect(dry.exitCode, JSON.stringify(dry.json?.error)).toBe(0)
    expect(dry.json.dryRun).toBe(true)
    expect(dry.json.playbook).toBe('recover-master-standard-frontend')
    expect(dry.json.results.filter((u: any) => u.status === 'planned').length).toBeGreaterThan(3)
    expect(await labChecksums()).toEqual(lostSums)
    expect(Object.keys(sums)).toEqual(Object.keys(lostSums))
  })

  it('restores from a frontend (the easy path) and verifies', async () => {
    await loseMasterDb(undefined, {restart: false})
    // A frontend still holds the list (its slave cannot reach the master to be emptied).
    const r = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'frontend', '--yes', '--json'])
    expect(r.exitCode, JSON.stringify(r.json?.error)).toBe(0)
    expect(r.json.playbook).toBe('recover-master-standard-frontend')
    const verify = r.json.results.find((u: any) => u.step === 'verify')
    expect(verify.status).toBe('done')
    expect(verify.data.master).toBe(before.size)
    // Every backend's -m -w empty and the master's count the union: its dump was not read.
    expect(verify.data.masterRead).toBe('count')
    await expectWhole()
    // The lost db was moved aside, not deleted: here it was already gone, so the journal says so.
    const journal = readFileSync(r.json.journal, 'utf8')
    expect(journal).toContain('"step":"install-frontend-db"')
  })

  it('backs up the master, refuses a corrupt or foreign backup, and restores from a good one', async () => {
    const b = await murderctl(['backup', '-i', lab().inventory, '--keep', '2', '--json'])
    expect(b.exitCode, b.stderr).toBe(0)
    const backup = b.json.backups[0]
    expect(backup).toMatchObject({host: 'mupdate', entries: before.size})
    await loseMasterDb(undefined, {restart: false})
    // Corrupt copy: one byte changed.
    const bad = mkdtempSync(join(tmpdir(), 'murderctl-badbackup-'))
    const data = readFileSync(join(backup.dir, 'mailboxes.db'))
    data[data.length >> 1] ^= 0xff
    writeFileSync(join(bad, 'mailboxes.db'), data)
    writeFileSync(join(bad, 'meta.json'), readFileSync(join(backup.dir, 'meta.json')))
    const sums = await labChecksums()
    const corrupt = await murderctl(['recover-master', '-i', lab().inventory, '--source', `backup=${bad}`, '--yes', '--json'])
    expect(corrupt.exitCode).toBe(7)
    expect(corrupt.json.error.message).toMatch(/corrupt: sha256/)
    // A backup of another murder.
    const foreign = mkdtempSync(join(tmpdir(), 'murderctl-foreign-'))
    writeFileSync(join(foreign, 'mailboxes.db'), readFileSync(join(backup.dir, 'mailboxes.db')))
    writeFileSync(join(foreign, 'meta.json'), JSON.stringify({...JSON.parse(readFileSync(join(backup.dir, 'meta.json'), 'utf8')), murder: 'other'}))
    const wrong = await murderctl(['recover-master', '-i', lab().inventory, '--source', `backup=${foreign}`, '--yes', '--json'])
    expect(wrong.exitCode).toBe(7)
    expect(wrong.json.error.message).toMatch(/murder "other"/)
    expect(await labChecksums()).toEqual(sums)

    const r = await murderctl(['recover-master', '-i', lab().inventory, '--source', `backup=${backup.dir}`, '--yes', '--json'])
    expect(r.exitCode, JSON.stringify(r.json?.error)).toBe(0)
    expect(r.json.results.find((u: any) => u.step === 'install-backup').data.entries).toBe(before.size)
    await expectWhole()
  })

  it('refuses a rebuild from the backends while a mailbox is live on two of them, before changing anything', async () => {
    // One of b1's mailboxes written into b2's list as well (a move cut short, a restore gone wrong).
    const name = [...(await listOf('b1'))].find(([n, server]) => server === '' && /^user\.[a-z]+$/.test(n))![0]
    await onHost('b2', `${CTL} -u`, dumpEntry(name, name.slice('user.'.length)))
    try {
      await loseMasterDb(undefined, {restart: false})
      const sums = await labChecksums()
      // Pushed into an empty master, one backend's copy would win and the other's be deleted: the
      // operator decides first. The dry run says so too.
      for (const mode of ['--dry-run', '--yes']) {
        const r = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', mode, '--json'])
        expect(r.exitCode, mode).toBe(7)
        expect(r.json.error.message).toBe(`1 mailboxes are live on more than one backend (${name} on b1 and b2)`)
        expect(r.json.error.step).toBe('diff')
        expect(r.json.error.hint).toMatch(/decide which backend really holds each/)
      }
      expect(await labChecksums()).toEqual(sums)
      expect(await onHost('mupdate', 'test -d /var/lib/cyrus/murderctl-recovery.lock; echo $?').then((x) => x.stdout.trim())).toBe('1')
    } finally {
      await dropEntry('b2', name)
    }
  })

  it('rebuilds from the backends (the hard path) on a tmpfs, moving every lost list aside', async () => {
    const conf = await confSum()
    await loseMasterDb()
    // Without a terminal and without --yes nothing changes: the plan needs consent first. (Read
    // once the frontends' slaves are back on the empty master: their drop of every entry is Cyrus's.)
    await waitLabHealthy()
    const sums = await labChecksums()
    const refused = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--json'])
    expect(refused.exitCode).toBe(6)
    expect(refused.json.error.message).toMatch(/before step lock \(nothing was changed\)/)
    expect(await labChecksums()).toEqual(sums)
    expect(await onHost('mupdate', 'test -d /var/lib/cyrus/murderctl-recovery.lock; echo $?').then((x) => x.stdout.trim())).toBe('1')
    const r = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes', '--json'])
    expect(r.exitCode, JSON.stringify(r.json?.error)).toBe(0)
    const moved = r.json.results.filter((u: any) => u.step === 'set-aside-frontend-dbs' && u.status === 'done')
    expect(moved.map((u: any) => u.host).sort()).toEqual(['fe1', 'fe2'])
    for (const u of moved) expect(u.data.movedTo).toMatch(/mailboxes\.db\.murderctl-/)
    // The push went into a tmpfs of murderctl's own; the list was then installed on disk.
    expect(unit(r, 'master-db-to-memory').data).toMatchObject({where: 'tmpfs', dbPath: expect.stringMatching(/^\/run\/murderctl-tmpfs-.*\/mailboxes\.db$/)})
    expect(unit(r, 'master-db-to-disk').data).toMatchObject({installed: '/var/lib/cyrus/mailboxes.db'})
    expect((await onHost('mupdate', 'stat -c "%U %a" /var/lib/cyrus/mailboxes.db')).stdout.trim()).toBe('cyrus 600')
    // imapd.conf is back byte for byte, nothing is left in memory, and the copy made on the
    // tmpfs before the push was kept on disk.
    expect(await confSum()).toBe(conf)
    expect(await memoryLeft()).toBe('')
    expect(unit(r, 'save-master-db').data.copy).toMatch(/^\/var\/lib\/cyrus\/mailboxes\.db\.murderctl-/)
    // Into the master this run emptied, with no mailbox on two backends: -m -w -a and -m -a, no FIND per mailbox.
    const diffAndPush = r.json.results.filter((u: any) => u.step === 'diff' || u.step === 'push')
    expect(diffAndPush.map((u: any) => `${u.step} ${u.host} ${u.data.authoritative}`).sort()).toEqual([
      'diff b1 true',
      'diff b2 true',
      'push b1 true',
      'push b2 true',
    ])
    await expectWhole()
    // The master's new list went onto each stopped frontend, after its own list was moved aside
    // (journaled): the same bytes by sha256 on each frontend.
    const events = journalEvents(r.json.journal)
    const installed = r.json.results.filter((u: any) => u.step === 'install-frontend-dbs')
    expect(installed.map((u: any) => `${u.host} ${u.status}`).sort()).toEqual(['fe1 done', 'fe2 done'])
    const masterDump = (await onHost('mupdate', `${CTL} -d`)).stdout
    for (const u of installed) {
      // The file master-db-to-disk installed, read back with its journaled sha256 (not counted again: verify counts).
      expect(u.data).toMatchObject({from: 'mupdate', source: 'master-db-to-disk', entries: null, countedOn: null, path: '/var/lib/cyrus/mailboxes.db'})
      expect(u.data.sha256).toBe(unit(r, 'master-db-to-disk').data.sha256)
      const aside = events.findIndex((e) => e.event === 'saved-copy' && e.step === 'set-aside-frontend-dbs' && e.host === u.host)
      const start = events.findIndex((e) => e.event === 'step-start' && e.step === 'install-frontend-dbs' && e.host === u.host)
      expect(aside, u.host).toBeGreaterThanOrEqual(0)
      expect(start, u.host).toBeGreaterThan(aside)
      expect((await onHost(u.host, 'stat -c "%U %a" /var/lib/cyrus/mailboxes.db')).stdout.trim()).toBe('cyrus 600')
      // Started on it, the frontend's slave found nothing to change: still the installed file,
      // entry for entry the master's (the mtimes too, which a slave's own rebuild rewrites).
      expect((await onHost(u.host, 'sha256sum /var/lib/cyrus/mailboxes.db')).stdout.split(' ')[0], u.host).toBe(u.data.sha256)
      expect((await onHost(u.host, `${CTL} -d`)).stdout, u.host).toBe(masterDump)
    }
    // Verify saw that too, in two parts: before the frontends started, every -m -w empty and the
    // master's count the union (its dump not read); then each frontend's list has the master's
    // bytes, and the master's db the checksum it had at that count: no count or dump read again.
    // The backends' -m -w is the push's own empty answer, standing: the master's list on disk has
    // the bytes it had in memory then, and each backend's the same (expectWhole asked again above).
    expect(unit(r, 'verify-backends').data).toMatchObject({
      scope: 'backends',
      masterRead: 'count',
      master: before.size,
      unionOfBackendsLocal: before.size,
      backendsMw: [
        {host: 'b1', changes: 0, read: 'checksum'},
        {host: 'b2', changes: 0, read: 'checksum'},
      ],
    })
    expect(unit(r, 'verify-backends').data.slaves).toBeUndefined()
    expect(unit(r, 'verify').data).toMatchObject({scope: 'slaves', masterRead: 'checksum', master: before.size})
    expect(unit(r, 'verify').data.backendsMw).toBeUndefined()
    expect(unit(r, 'verify').data.slaves).toEqual(
      expect.arrayContaining(['fe1', 'fe2'].map((host) => ({host, entries: before.size, connected: true, sameBytes: true}))),
    )
  })

  it('a master killed in the middle of the push into its tmpfs: check flags the temporary key, --resume starts it again and pushes again', async () => {
    const conf = await confSum()
    await loseMasterDb()
    let crash: Promise<unknown> = Promise.resolve()
    const first = await murderctlTty(
      ['recover-master', '-i', lab().inventory, '--source', 'backends'],
      [
        {when: /Go ahead with this plan\? \[y\/N\]/, send: 'y\n'},
        {
          when: /with these changes\? \[y\/N\]/,
          // Frozen while the run waits at the diff: the push then hangs inside the master; once
          // b1's ctl_mboxlist -m is in it, the master dies.
          before: async () => {
            await freezeMupdate()
            crash = waitForProcess('b1', 'ctl_mboxlist').then(() => crashCyrusMaster())
          },
          send: 'y\n',
        },
      ],
    )
    await crash
    expect(first.exitCode, first.output).toBe(1)
    expect(first.output).toMatch(/stopped at step push/)
    const run = first.output.match(/--resume (\S+)/)![1]
    // The master is down, its imapd.conf still points at the tmpfs: check says so, with the fix.
    expect((await onHost('mupdate', 'grep "^mboxlist_db_path:" /etc/imapd.conf')).stdout).toContain(`/run/murderctl-tmpfs-${run}/mailboxes.db`)
    const c = await murderctl(['check', '-i', lab().inventory, '--only', 'tmpfs-key', '--format', 'json'])
    expect(c.exitCode).toBe(2)
    expect(JSON.parse(c.stdout).checks[0]).toMatchObject({
      name: 'tmpfs-key',
      host: 'mupdate',
      state: 'CRITICAL',
      fix: `murderctl recover-master --resume ${run}`,
    })

    const done = await murderctl(['recover-master', '-i', lab().inventory, '--resume', run, '--yes', '--json'])
    expect(done.exitCode, JSON.stringify(done.json?.error)).toBe(0)
    // start-master was done, but the master had died since: started again; the push ran again.
    expect(unit(done, 'start-master').status).toBe('done')
    expect(unit(done, 'push').status).toBe('done')
    expect(journalEvents(done.json.journal).some((e) => e.event === 'note' && e.step === 'start-master' && /no longer holds/.test(e.data?.again))).toBe(true)
    await expectWhole()
    expect(await confSum()).toBe(conf)
    expect(await memoryLeft()).toBe('')
    expect((await murderctl(['check', '-i', lab().inventory, '--only', 'tmpfs-key'])).exitCode).toBe(0)
  })

  it('not enough free memory on the master: the list is rebuilt on disk, and the run says so', async () => {
    // The master's kernel reports 60 MB available (its own /proc/meminfo, in its namespace only).
    await onHost(
      'mupdate',
      "printf 'MemTotal: 1000000 kB\\nMemFree: 50000 kB\\nMemAvailable: 60000 kB\\n' > /run/lab-meminfo && mount --bind /run/lab-meminfo /proc/meminfo",
    )
    try {
      await loseMasterDb()
      const r = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes'])
      expect(r.exitCode, r.stderr).toBe(0)
      expect(r.stderr).toMatch(/mupdate: 59 MB of memory available, \d+ MB wanted for a list of this size: the master's list is rebuilt on its disk/)
      expect(r.stdout).toMatch(/the master's list was rebuilt on its disk, not in memory: 59 MB of memory available/)
      expect(await memoryLeft()).toBe('')
    } finally {
      await onHost('mupdate', 'umount /proc/meminfo; rm -f /run/lab-meminfo')
    }
    await expectWhole()
  })

  it('leaves a dead frontend out when told to, and refuses to skip the master', async () => {
    await loseMasterDb(undefined, {restart: false})
    await onHost('fe2', 'kill $(cat /run/sshd.pid)')
    try {
      const without = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'frontend=fe1', '--yes', '--json'])
      expect(without.exitCode).toBe(4)
      expect(without.json.error.message).toMatch(/fe2.*connection refused/)
      const master = await murderctl(['recover-master', '-i', lab().inventory, '--skip-host', 'mupdate', '--json'])
      expect(master.exitCode).toBe(7)
      const r = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'frontend=fe1', '--skip-host', 'fe2', '--yes', '--json'])
      expect(r.exitCode, JSON.stringify(r.json?.error)).toBe(0)
      expect(r.json.results.some((u: any) => u.host === 'fe2')).toBe(false)
    } finally {
      await onHost('fe2', `/usr/sbin/sshd -f ${lab().dir}/hosts/fe2/sshd_config`)
    }
    await expectWhole()
  })

  it('on Ctrl-C finishes the step in flight, stops before the next, and --resume finishes', async () => {
    await loseMasterDb(undefined, {restart: false})
    // Interrupted while the frontend's list is being copied to the master.
    const stopped = await murderctlInterrupted(['recover-master', '-i', lab().inventory, '--source', 'frontend', '--yes'], /\[5\/\d+\] Copy the frontend's/)
    expect(stopped.exitCode, stopped.stderr).toBe(130)
    expect(stopped.stderr).toMatch(/finishing step install-frontend-db on its hosts/)
    const [, next, run] = stopped.stderr.match(/interrupted: stopped before step (\S+);[\s\S]*--resume (\S+)/)!
    const events = readFileSync(join(lab().dir, parse(readFileSync(lab().inventory, 'utf8')).stateDir, 'runs', run, 'journal.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    // The step in flight ended done; the next never started.
    expect(events.some((e) => e.event === 'step-done' && e.step === 'install-frontend-db')).toBe(true)
    expect(events.some((e) => e.event === 'step-start' && e.step === next)).toBe(false)
    expect(events.at(-1)).toMatchObject({event: 'interrupted', step: next})
    const done = await murderctl(['recover-master', '-i', lab().inventory, '--resume', run, '--yes', '--json'])
    expect(done.exitCode, JSON.stringify(done.json?.error)).toBe(0)
    expect(done.json.results.find((u: any) => u.step === 'install-frontend-db').status).toBe('already-done')
    await expectWhole()
  })

  it("runs an operator's edited copy of a playbook, and refuses one written for the other mode", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'murderctl-pb-'))
    const shipped = (name: string) => readFileSync(join(import.meta.dirname, '../../playbooks', `${name}.yaml`), 'utf8')
    // The site's own runbook: the frontends' lists saved aside too, before the master changes.
    const site = shipped('recover-master-standard-frontend')
      .replace('name: recover-master-standard-frontend', 'name: site-recover-from-frontend')
      .replace(
        '  - {id: stop-master,',
        `  - {id: save-frontend-dbs, title: "Copy every frontend's mailboxes.db aside", hosts: frontends, action: copy-aside-db}\n  - {id: stop-master,`,
      )
    writeFileSync(join(dir, 'site.yaml'), site)
    writeFileSync(join(dir, 'unified.yaml'), shipped('recover-master-unified-backends'))
    await loseMasterDb(undefined, {restart: false})
    const sums = await labChecksums()
    const wrong = await murderctl(['recover-master', '-i', lab().inventory, '--playbook', join(dir, 'unified.yaml'), '--yes', '--json'])
    expect(wrong.exitCode).toBe(7)
    expect(wrong.json.error.message).toMatch(/is for a unified murder; the inventory says standard/)
    expect(await labChecksums()).toEqual(sums)

    const r = await murderctl(['recover-master', '-i', lab().inventory, '--playbook', join(dir, 'site.yaml'), '--yes', '--json'])
    expect(r.exitCode, JSON.stringify(r.json?.error)).toBe(0)
    expect(r.json.playbook).toBe('site-recover-from-frontend')
    const saved = r.json.results.filter((u: any) => u.step === 'save-frontend-dbs')
    expect(saved.map((u: any) => u.host).sort()).toEqual(['fe1', 'fe2'])
    for (const u of saved) expect((await onHost(u.host, `sha256sum ${u.data.copy}`)).stdout.split(' ')[0]).toBe(u.data.sha256)
    await expectWhole()
  })

  it('backs up every host with --all-hosts, each copy counted as its host holds it', async () => {
    const r = await murderctl(['backup', '-i', lab().inventory, '--all-hosts', '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    const byHost = Object.fromEntries(r.json.backups.map((b: any) => [b.host, b]))
    expect(Object.keys(byHost).sort()).toEqual(['b1', 'b1r', 'b2', 'fe1', 'fe2', 'mupdate'])
    for (const [host, b] of Object.entries<any>(byHost)) {
      expect(b.entries, host).toBe((await listOf(host)).size)
      expect(b.sha256).toMatch(/^[0-9a-f]{64}$/)
    }
  })

  it('keeps at most --keep backups', async () => {
    for (let i = 0; i < 3; i++) expect((await murderctl(['backup', '-i', lab().inventory, '--keep', '2'])).exitCode).toBe(0)
    const inv = parse(readFileSync(lab().inventory, 'utf8'))
    const dir = join(lab().dir, inv.stateDir, 'backups', 'lab', 'mupdate')
    expect(readdirSync(dir)).toHaveLength(2)
    const list = await murderctl(['backup', '-i', lab().inventory, '--list', '--json'])
    expect(list.json.backups.every((b: any) => b.verified)).toBe(true)
  })
})
