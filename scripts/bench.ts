// The benchmark: speed and memory of murderctl on real labs, beside Cyrus's own tools measured
// in the same run. Not a test: it prints numbers (and --json writes them) for people to read.
//   npm run bench [-- --quick] [-- --only small,recover,unified,diff,failover,audit] [-- --rounds N] [-- --mailboxes N] [-- --json out.json]
//   e.g. recover-master at 2 x 100,000: npm run bench -- --only recover --mailboxes 100000 --rounds 1
// Needs root (it boots labs); takes a few minutes (the large labs load tens of thousands of
// mailboxes with ctl_mboxlist -u).
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {loadavg, tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {execa} from 'execa'
import {breakLab} from '../src/lab/disasters.js'
import {labDown, labExec, labPassword, type LabState, labUp, waitPort} from '../src/lab/lab.js'
import {flowLosses, messageIds, startMailFlow} from '../src/lab/mail-flow.js'
import {labCounts, waitConverged} from '../src/lab/seed.js'

const BIN = resolve(import.meta.dirname, '../bin/run.js')
const CTL = '/usr/lib/cyrus/bin/ctl_mboxlist'
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined
const results: Record<string, unknown> = {node: process.version, at: new Date().toISOString(), quick}

const say = (m: string) => process.stderr.write(`[bench] ${m}\n`)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** Wall time (ms) and peak RSS (MB) of one murderctl run, via GNU time. */
async function timed(cliArgs: string[]): Promise<{ms: number; peakMB: number; exitCode: number; stdout: string}> {
  const started = performance.now()
  const r = await execa('/usr/bin/time', ['-f', '%M', 'node', BIN, ...cliArgs], {reject: false, env: {NODE_ENV: 'production'}})
  const ms = performance.now() - started
  const peakKB = Number(r.stderr.trim().split('\n').pop())
  return {ms: Math.round(ms), peakMB: Math.round(peakKB / 102.4) / 10, exitCode: r.exitCode ?? -1, stdout: r.stdout}
}

/** The longest `ctl_mboxlist -m` a recover-master run's journal records: its own push, timed on the host. */
function journalPushMs(resultJson: string): number {
  const journal = (JSON.parse(resultJson) as {journal: string}).journal
  const pushes = readFileSync(journal, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as {event: string; step?: string; command?: string; durationMs?: number})
    .filter((e) => e.event === 'command' && e.step === 'push' && / -m( -a)?( -f \S+)?$/.test(e.command ?? ''))
  return Math.max(...pushes.map((e) => e.durationMs ?? 0))
}

async function raw(state: LabState, host: string, cmd: string): Promise<number> {
  const started = performance.now()
  await labExec(state.dir, host, ['sh', '-c', cmd])
  return Math.round(performance.now() - started)
}

async function lab(name: string, base: string, mailboxes: number, topology: 'standard' | 'unified' = 'standard'): Promise<LabState> {
  const dir = mkdtempSync(join(tmpdir(), `murderctl-bench-${name}-`))
  const started = performance.now()
  const state = await labUp({dir, topology, base, mailboxes, log: (m) => say(`${name}: ${m}`)})
  say(`${name}: lab with ${mailboxes} mailboxes up in ${((performance.now() - started) / 1000).toFixed(1)}s`)
  return state
}

async function small() {
  const help: number[] = []
  for (let i = 0; i < 5; i++) help.push((await timed(['--help'])).ms)
  results.helpStartupMs = median(help)
  say(`murderctl --help: median ${results.helpStartupMs} ms of 5`)
  const state = await lab('small', '127.0.50', 40)
  try {
    const status: number[] = []
    for (let i = 0; i < 5; i++) status.push((await timed(['status', '-i', state.inventory, '--json'])).ms)
    results.statusMs = median(status)
    const check: Awaited<ReturnType<typeof timed>>[] = []
    for (let i = 0; i < 5; i++) check.push(await timed(['check', '-i', state.inventory, '--state-file', join(state.dir, 'check.json')]))
    results.check = {medianMs: median(check.map((c) => c.ms)), peakMB: Math.max(...check.map((c) => c.peakMB)), exitCodes: check.map((c) => c.exitCode)}
    say(`status on 6 hosts: median ${results.statusMs} ms of 5; check: ${JSON.stringify(results.check)} (5 runs)`)
  } finally {
    await labDown({dir: state.dir, purge: true})
  }
}

/** The machine's 1-minute load average when a figure was taken (a 2-core VM shared with other work). */
const load = () => Math.round(loadavg()[0] * 10) / 10

/** Each figure beside its raw Cyrus counterpart measured in the same run, for the README's table. */
const table: {figure: string; murderctlMs: number; raw: string; rawMs: number; load: number}[] = []
function row(figure: string, murderctlMs: number, raw: string, rawMs: number) {
  table.push({figure, murderctlMs, raw, rawMs, load: load()})
  say(`${figure}: ${murderctlMs} ms, ${raw}: ${rawMs} ms (x${(murderctlMs / rawMs).toFixed(2)}, load ${load()})`)
}

/**
 * recover-master against the documented procedure, in rounds that alternate the two on the
 * same lab: frontends stopped, an empty master on its disk, each backend's `ctl_mboxlist -m`
 * in parallel (as long as the slowest). murderctl rebuilds the list on a tmpfs (the default),
 * so the ratio is what an operator gains; the disk's fsync rate drifts on a shared machine, so
 * neighbours are compared and the median ratio reported. Then status and check against the
 * recovered master beside a raw count of its list on the host.
 */
async function recover(perBackend: number, rounds: number) {
  const state = await lab('recover', process.env.MURDERCTL_BENCH_RECOVER_BASE ?? '127.0.51', perBackend * 2)
  const svc = `${state.dir}/bin/cyrus-service`
  const master = state.hosts.find((h) => h.name === 'mupdate')!
  try {
    const runs: {murderctlMs: number; peakMB: number; ownPushMs: number; rawPushMs: number[]; ratio: number; outsidePushMs: number; load: number}[] = []
    for (let i = 0; i < rounds; i++) {
      await breakLab(state.dir, 'lost-master-down')
      const r = await timed(['recover-master', '-i', state.inventory, '--source', 'backends', '--yes', '--json'])
      if (r.exitCode !== 0) throw new Error(`recover-master failed (exit ${r.exitCode})`)
      // Cyrus alone, the documented procedure: frontends stopped, an empty master, each backend's -m.
      await Promise.all(['fe1', 'fe2'].map((f) => labExec(state.dir, f, [svc, 'stop'])))
      await breakLab(state.dir, 'lost-master')
      await waitPort(master.address, 3905, 30_000)
      const rawMs = await Promise.all(['b1', 'b2'].map((b) => raw(state, b, `${CTL} -m`)))
      await Promise.all(['fe1', 'fe2'].map((f) => labExec(state.dir, f, [svc, 'start'])))
      const slowest = Math.max(...rawMs)
      // ownPushMs: the run's own -m (into the tmpfs), so the push shows apart from murderctl's own cost.
      const ownPushMs = journalPushMs(r.stdout)
      runs.push({
        murderctlMs: r.ms,
        peakMB: r.peakMB,
        ownPushMs,
        rawPushMs: rawMs,
        ratio: Math.round((r.ms / slowest) * 100) / 100,
        outsidePushMs: r.ms - ownPushMs,
        load: load(),
      })
      say(`recover-master, 2 x ${perBackend}, round ${i + 1}/${rounds}: ${JSON.stringify(runs.at(-1))}`)
    }
    const mid = (f: (x: (typeof runs)[number]) => number) => median(runs.map(f))
    const summary = {
      mailboxes: perBackend * 2,
      rounds: runs,
      medianRatio: mid((x) => x.ratio),
      medianMurderctlMs: mid((x) => x.murderctlMs),
      medianDocumentedMs: mid((x) => Math.max(...x.rawPushMs)),
      medianOutsidePushMs: mid((x) => x.outsidePushMs),
      peakMB: Math.max(...runs.map((x) => x.peakMB)),
    }
    results.recoverMaster = summary
    // A row per round: each beside the documented procedure run on the same lab in that round.
    runs.forEach((x, i) =>
      row(
        `recover-master, standard, 2 x ${perBackend}, round ${i + 1} (its own push ${(x.ownPushMs / 1000).toFixed(1)} s, outside it ${(x.outsidePushMs / 1000).toFixed(1)} s; peak ${x.peakMB} MB)`,
        x.murderctlMs,
        'documented procedure: -m on both backends into an empty master on disk',
        Math.max(...x.rawPushMs),
      ),
    )
    // status and check count every host's list on that host: beside Cyrus counting the master's
    // alone, and every host's at once (on a lab all six share this machine's CPUs, as status's do).
    // Timed once the murder has settled: the procedure's last step restarts the frontends, whose
    // slaves then take the whole list from the master, on the same two cores.
    await waitConverged(state, perBackend * 2)
    const rawCount = await raw(state, 'mupdate', `${CTL} -d | wc -l`)
    const allStarted = performance.now()
    await Promise.all(state.hosts.map((h) => raw(state, h.name, `${CTL} -d | wc -l`)))
    const rawAllHostsMs = Math.round(performance.now() - allStarted)
    const st = await timed(['status', '-i', state.inventory, '--json'])
    const ck = await timed(['check', '-i', state.inventory, '--state-file', join(state.dir, 'check.json')])
    results.bigMaster = {
      entries: perBackend * 2,
      statusMs: st.ms,
      statusPeakMB: st.peakMB,
      checkMs: ck.ms,
      checkPeakMB: ck.peakMB,
      checkExit: ck.exitCode,
      rawCountMs: rawCount,
      rawAllHostsMs,
    }
    row(`status of the murder, master holding ${perBackend * 2}`, st.ms, '`ctl_mboxlist -d | wc -l` on the master', rawCount)
    row(`check of the murder, master holding ${perBackend * 2}`, ck.ms, '`ctl_mboxlist -d | wc -l` on the master', rawCount)
    row(`status of the murder, master holding ${perBackend * 2}`, st.ms, 'the same on all six hosts at once', rawAllHostsMs)
  } finally {
    await labDown({dir: state.dir, purge: true})
  }
}

/**
 * recover-master on a unified murder, beside the documented manual procedure on the same lab:
 * slaves off by hand, an empty master, a plain `ctl_mboxlist -m` on every backend in parallel.
 * That plain -m also pushes the other backend's mailboxes (each backend holds them as remote
 * entries), so it does more work than murderctl's local-only push and leaves claims to repair;
 * the run's own push (ownPushMs, from its journal) is the like-for-like figure.
 */
async function recoverUnified(perBackend: number) {
  const state = await lab('unified', process.env.MURDERCTL_BENCH_UNIFIED_BASE ?? '127.0.53', perBackend * 2, 'unified')
  const master = state.hosts.find((h) => h.name === 'mupdate')!
  // The manual runbook's first step: every backend's mupdate slave commented out, cyrus-master HUPed.
  const slavesOff = () =>
    Promise.all(
      ['b1', 'b2'].map((b) =>
        labExec(state.dir, b, [
          'sh',
          '-c',
          'sed "s/^\\tmupdate\\t/#&/" /etc/cyrus.conf > /etc/cyrus.conf.n && mv /etc/cyrus.conf.n /etc/cyrus.conf && kill -HUP $(cat /run/cyrus-master.pid)',
        ]),
      ),
    )
  try {
    await breakLab(state.dir, 'lost-master-down')
    const r = await timed(['recover-master', '-i', state.inventory, '--yes', '--json'])
    if (r.exitCode !== 0) throw new Error(`recover-master failed (exit ${r.exitCode})`)
    const ownPushMs = journalPushMs(r.stdout)
    await slavesOff()
    await new Promise((res) => setTimeout(res, 2000))
    await breakLab(state.dir, 'lost-master')
    await waitPort(master.address, 3905, 30_000)
    const rawMs = await Promise.all(['b1', 'b2'].map((b) => raw(state, b, `${CTL} -m`)))
    const slowest = Math.max(...rawMs)
    results.recoverUnified = {
      mailboxes: perBackend * 2,
      murderctlMs: r.ms,
      peakMB: r.peakMB,
      ownPushMs,
      outsidePushMs: r.ms - ownPushMs,
      ratioToOwnPush: Math.round((r.ms / ownPushMs) * 100) / 100,
      manualPlainPushMs: rawMs,
      ratioToManual: Math.round((r.ms / slowest) * 100) / 100,
    }
    say(`recover-master, unified, 2 x ${perBackend}: ${JSON.stringify(results.recoverUnified)}`)
    row(
      `recover-master, unified, 2 x ${perBackend} (its own push ${(ownPushMs / 1000).toFixed(1)} s, outside it ${((r.ms - ownPushMs) / 1000).toFixed(1)} s; peak ${r.peakMB} MB)`,
      r.ms,
      'manual procedure: slaves off, -m on both backends into an empty master on disk',
      slowest,
    )
  } finally {
    await labDown({dir: state.dir, purge: true})
  }
}

async function diff(extra: number) {
  const state = await lab('diff', '127.0.52', 40)
  try {
    // Load `extra` mailboxes into b1 behind the master's back: every one is a change to find.
    say(`diff: loading ${extra} entries into b1 with ctl_mboxlist -u`)
    const chunk = 20_000
    for (let start = 0; start < extra; start += chunk) {
      const n = Math.min(chunk, extra - start)
      const now = Math.floor(Date.now() / 1000)
      const lines = Array.from({length: n}, (_, i) => {
        const name = `user.big${String(start + i).padStart(7, '0')}`
        const owner = name.slice(5)
        return `${JSON.stringify(name)}: ${JSON.stringify({name, mtime: String(now), uidvalidity: String(now), createdmodseq: '1', foldermodseq: '1', mbtype: 'e', partition: 'default', acl: {[owner]: 'lrswipkxtecdan'}, uniqueid: `bench${start + i}`})}`
      })
      await labExec(state.dir, 'b1', [CTL, '-u'], {input: `{\n${lines.join(',\n')}\n}\n`})
    }
    const rawMw = await raw(state, 'b1', `${CTL} -m -w > /dev/null`)
    const r = await timed(['sync-backends', '-i', state.inventory, '--backend', 'b1', '--dry-run', '--json'])
    results.syncBackendsDiff = {backendMailboxes: extra + 20, changes: extra, murderctlMs: r.ms, peakMB: r.peakMB, rawMwMs: rawMw, exitCode: r.exitCode}
    say(`sync-backends --dry-run on a backend with ${extra + 20} mailboxes: ${JSON.stringify(results.syncBackendsDiff)}`)
    row(
      `sync-backends --dry-run, one backend of ${extra + 20} mailboxes (${extra} to push; peak ${r.peakMB} MB)`,
      r.ms,
      'raw `ctl_mboxlist -m -w` there',
      rawMw,
    )
  } finally {
    await labDown({dir: state.dir, purge: true})
  }
}

/**
 * A controlled failover's service gap (from the old master stopping until a frontend serves the
 * pair from the new one, as the run journals it), with mail appended through a frontend all
 * along: how many APPENDs got OK, and how many of those the new master lacks (must be 0) or
 * holds twice. Failover and failback alternate on one lab.
 */
async function failoverBench(rounds: number) {
  const state = await lab('failover', process.env.MURDERCTL_BENCH_FAILOVER_BASE ?? '127.0.56', 40)
  const fe1 = state.hosts.find((h) => h.name === 'fe1')!
  const password = labPassword(state.dir)
  // The replica first catches up with the seeding (the failover's preflight wants equal lists).
  for (let i = 0; i < 120 && (await labCounts(state.dir, 'b1r')).total !== (await labCounts(state.dir, 'b1')).total; i++)
    await new Promise((r) => setTimeout(r, 500))
  const runs: {to: string; gapMs: number; wallMs: number; appended: number; refused: number; lost: number; doubled: number}[] = []
  try {
    for (let i = 0; i < rounds * 2; i++) {
      const to = i % 2 === 0 ? 'b1r' : 'b1'
      const flow = startMailFlow({address: fe1.address, user: 'cyrus', password, mailbox: 'user.carol', label: 'fe1'})
      await new Promise((r) => setTimeout(r, 1000))
      const t = await timed(['failover', 'b1', '-i', state.inventory, '--to', to, '--yes', '--json'])
      await new Promise((r) => setTimeout(r, 1000))
      await flow.stop()
      if (t.exitCode !== 0) throw new Error(`failover to ${to} failed: ${t.stdout}`)
      const out = JSON.parse(t.stdout) as {serviceGapMs: number}
      const to_ = state.hosts.find((h) => h.name === to)!
      const {missing, twice} = flowLosses(flow.ok, await messageIds(to_.address, 'cyrus', password, 'user.carol'))
      runs.push({to, gapMs: out.serviceGapMs, wallMs: t.ms, appended: flow.ok.length, refused: flow.failed, lost: missing.length, doubled: twice.length})
      say(
        `failover to ${to}: gap ${out.serviceGapMs} ms, run ${t.ms} ms, ${flow.ok.length} appends OK, ${missing.length} lost, ${twice.length} twice, ${flow.failed} refused in the gap`,
      )
    }
    results.failover = {
      runs,
      medianGapMs: median(runs.map((r) => r.gapMs)),
      medianWallMs: median(runs.map((r) => r.wallMs)),
      appended: runs.reduce((n, r) => n + r.appended, 0),
      lost: runs.reduce((n, r) => n + r.lost, 0),
      doubled: runs.reduce((n, r) => n + r.doubled, 0),
    }
  } finally {
    await labDown({dir: state.dir, purge: true})
  }
}

/** A message of about 1 KB with a unique Message-ID: what the audit bench fills the spool with. */
function benchMessage(mailbox: number, n: number): string {
  const body = `bench message ${n} of mailbox ${mailbox}\r\n`.repeat(20)
  return `From: sender${n}@bench.example\r\nTo: bench${mailbox}@bench.example\r\nSubject: bench ${mailbox}/${n}\r\nMessage-ID: <bench-${mailbox}-${n}-${Math.random().toString(36).slice(2)}@bench.example>\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n${body}`
}

/** IMAP LIST + STATUS of every mailbox on one host (what check_cyrus_replication does); ms. */
async function imapStatusPass(address: string, password: string): Promise<{ms: number; mailboxes: number}> {
  const {ImapClient} = await import('../src/imap/client.js')
  const started = performance.now()
  const c = await ImapClient.open(address, 143, {timeoutMs: 600_000})
  await c.login('cyrus', password)
  const list = await c.ok('LIST "" "*"')
  const names = list.untagged.map((l) => /"([^"]+)"\s*$/.exec(l)?.[1] ?? l.split(' ').pop()!).filter((n) => n && !n.startsWith('DELETED'))
  for (const n of names) await c.ok(`STATUS "${n}" (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)`)
  await c.logout()
  return {ms: Math.round(performance.now() - started), mailboxes: names.length}
}

/**
 * replication audit of a pair holding `mailboxes` mailboxes of `perMailbox` messages on each
 * member, beside Cyrus's own passes over the same pair in the same run: mbexamine headers only
 * (the floor of the cheap pass), full mbexamine (every record), and IMAP LIST + STATUS.
 * Seeding: message files written straight into b1's spool, entries loaded with ctl_mboxlist -u,
 * indexes built by one `reconstruct`, then b1's spool and mailboxes.db copied to the stopped
 * replica, so both members hold the same mail without replicating it message by message.
 */
async function auditBench(mailboxes: number, perMailbox: number, rounds: number) {
  const {mkdirSync, writeFileSync: write, copyFileSync} = await import('node:fs')
  const {labPassword} = await import('../src/lab/lab.js')
  const state = await lab('audit', process.env.MURDERCTL_BENCH_AUDIT_BASE ?? '127.0.54', 40)
  const svc = `${state.dir}/bin/cyrus-service`
  const hostDir = (h: string) => join(state.dir, 'hosts', h)
  try {
    const seedStarted = performance.now()
    const now = Math.floor(Date.now() / 1000)
    const chunk = 5000
    for (let start = 0; start < mailboxes; start += chunk) {
      const entries: string[] = []
      for (let i = start; i < Math.min(mailboxes, start + chunk); i++) {
        const uid = `bench${String(i).padStart(19, '0')}`.replace(/^bench/, `b${'abcdefghijklmnopqrstuvwxyz'[i % 26]}ench`)
        const dir = join(hostDir('b1'), 'spool', 'mail', 'uuid', uid[0], uid[1], uid)
        mkdirSync(dir, {recursive: true})
        for (let n = 1; n <= perMailbox; n++) write(join(dir, `${n}.`), benchMessage(i, n))
        const name = `user.bench${String(i).padStart(6, '0')}`
        entries.push(
          `${JSON.stringify(name)}: ${JSON.stringify({name, mtime: String(now), uidvalidity: String(now), createdmodseq: '1', foldermodseq: '1', mbtype: 'e', partition: 'default', acl: {[name.slice(5)]: 'lrswipkxtecdan', cyrus: 'lrswipkxtecda'}, uniqueid: uid})}`,
        )
      }
      await labExec(state.dir, 'b1', [CTL, '-u'], {input: `{\n${entries.join(',\n')}\n}\n`})
    }
    await labExec(state.dir, 'b1', ['chown', '-R', 'cyrus:mail', '/var/spool/cyrus/mail/uuid'])
    say(`audit: ${mailboxes} mailboxes x ${perMailbox} messages written on b1 in ${((performance.now() - seedStarted) / 1000).toFixed(1)}s; reconstructing`)
    const rs = performance.now()
    await labExec(state.dir, 'b1', ['sh', '-c', `/usr/lib/cyrus/bin/reconstruct 'user.bench%' > /dev/null 2>&1`])
    say(`audit: reconstruct of ${mailboxes} mailboxes in ${((performance.now() - rs) / 1000).toFixed(1)}s; copying b1 to the replica`)
    await Promise.all(['b1', 'b1r'].map((h) => labExec(state.dir, h, [svc, 'stop'])))
    await execa('sh', ['-c', `rm -rf ${hostDir('b1r')}/spool/mail && cp -a ${hostDir('b1')}/spool/mail ${hostDir('b1r')}/spool/mail`])
    copyFileSync(join(hostDir('b1'), 'lib', 'mailboxes.db'), join(hostDir('b1r'), 'lib', 'mailboxes.db'))
    await execa('sh', ['-c', `rm -f ${hostDir('b1')}/lib/sync/log ${hostDir('b1')}/lib/sync/log-run; chown cyrus:mail ${hostDir('b1r')}/lib/mailboxes.db`])
    await Promise.all(['b1', 'b1r'].map((h) => labExec(state.dir, h, [svc, 'start'])))
    // The rolling sync_client retries the replica for a while after both restart: wait for it.
    for (let i = 0; i < 60; i++) {
      const r = await labExec(state.dir, 'b1', ['sh', '-c', 'pgrep -P $(cat /run/cyrus-master.pid) -x sync_client >/dev/null && echo up; true'])
      if (r.stdout.includes('up')) break
      await new Promise((res) => setTimeout(res, 1000))
    }
    results.auditSeedSeconds = Math.round((performance.now() - seedStarted) / 1000)
    say(`audit: seeded both members in ${results.auditSeedSeconds}s`)

    const password = labPassword(state.dir)
    const addr = (h: string) => state.hosts.find((x) => x.name === h)!.address
    const rowsOf: Record<string, number[]> = {audit: [], auditDeep: [], mbexamineHeaders: [], mbexamineFull: [], imapStatus: []}
    let counts: unknown
    const timings: Record<string, unknown> = {}
    let peakMB = 0
    for (let i = 0; i < rounds; i++) {
      const a = await timed(['replication', 'audit', 'b1', '-i', state.inventory, '--json', '--settle', '0', '--no-logs'])
      if (a.exitCode !== 0 && !/(\d+)\/\1 mailboxes in sync/.test(JSON.parse(a.stdout).summary))
        throw new Error(`audit of the seeded pair is not OK (exit ${a.exitCode}): ${a.stdout.slice(0, 500)}`)
      counts = JSON.parse(a.stdout).pairs[0].counts
      timings.audit = JSON.parse(a.stdout).pairs[0].timings
      rowsOf.audit.push(a.ms)
      const d = await timed(['replication', 'audit', 'b1', '-i', state.inventory, '--json', '--settle', '0', '--no-logs', '--deep'])
      timings.auditDeep = JSON.parse(d.stdout).pairs[0].timings
      rowsOf.auditDeep.push(d.ms)
      peakMB = Math.max(peakMB, a.peakMB, d.peakMB)
      // Cyrus's own passes, both members at once as the audit does.
      const both = async (cmd: string) => {
        const t = performance.now()
        await Promise.all(['b1', 'b1r'].map((h) => labExec(state.dir, h, ['sh', '-c', cmd])))
        return Math.round(performance.now() - t)
      }
      rowsOf.mbexamineHeaders.push(await both(`/usr/lib/cyrus/bin/mbexamine -u 4294967295 '*' > /dev/null`))
      rowsOf.mbexamineFull.push(await both(`/usr/lib/cyrus/bin/mbexamine '*' > /dev/null`))
      const t = performance.now()
      await Promise.all(['b1', 'b1r'].map((h) => imapStatusPass(addr(h), password)))
      rowsOf.imapStatus.push(Math.round(performance.now() - t))
      say(`audit round ${i + 1}/${rounds}: ${JSON.stringify(Object.fromEntries(Object.entries(rowsOf).map(([k, v]) => [k, v.at(-1)])))}`)
    }
    results.audit = {
      mailboxesPerMember: mailboxes + 20,
      messagesPerMember: mailboxes * perMailbox,
      counts,
      timingsOfLastRound: timings,
      medianMs: Object.fromEntries(Object.entries(rowsOf).map(([k, v]) => [k, median(v)])),
      rounds: rowsOf,
      peakMB,
    }
    say(`audit: ${JSON.stringify(results.audit)}`)
  } finally {
    await labDown({dir: state.dir, purge: true})
  }
}

// --only small,recover,unified,diff,failover,audit runs a part (the 200,000-mailbox diff lab alone takes ~10 minutes to load).
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : ['small', 'recover', 'unified', 'diff', 'failover', 'audit']
if (only.includes('small')) await small()
const roundsArg = args.includes('--rounds') ? Number(args[args.indexOf('--rounds') + 1]) : undefined
// --mailboxes N: mailboxes per backend for the recover and unified labs (default 20,000; 2,000 with --quick).
const perBackendArg = args.includes('--mailboxes') ? Number(args[args.indexOf('--mailboxes') + 1]) : undefined
if (perBackendArg !== undefined && !(Number.isInteger(perBackendArg) && perBackendArg >= 6))
  throw new Error('--mailboxes wants a whole number of mailboxes per backend (at least 6)')
const perBackend = perBackendArg ?? (quick ? 2000 : 20_000)
if (only.includes('recover')) await recover(perBackend, roundsArg ?? (quick ? 1 : 3))
if (only.includes('unified')) await recoverUnified(perBackend)
if (only.includes('diff')) await diff(quick ? 20_000 : 200_000)
if (only.includes('failover')) await failoverBench(quick ? 1 : 3)
if (only.includes('audit')) await auditBench(quick ? 1000 : 10_000, 10, quick ? 1 : 2)
results.table = table
// The table for the README: each figure beside its raw Cyrus counterpart, measured in this run.
process.stderr.write(
  `\n| | murderctl | raw Cyrus, same run | ratio | load |\n|---|---|---|---|---|\n${table
    .map(
      (t) =>
        `| ${t.figure} | ${(t.murderctlMs / 1000).toFixed(1)} s | ${t.raw}: ${(t.rawMs / 1000).toFixed(1)} s | ${(t.murderctlMs / t.rawMs).toFixed(2)} | ${t.load} |`,
    )
    .join('\n')}\n\n`,
)
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`)
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(results, null, 2)}\n`)
