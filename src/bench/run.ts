// The benchmark: speed and memory of murderctl on real labs, beside Cyrus's own tools measured
// in the same run. Not a test: it prints numbers (and --json writes them) for people to read.
//   npm run bench [-- --quick] [-- --only small,recover,diff] [-- --json out.json]
// Needs root (it boots labs); takes a few minutes (the large labs load tens of thousands of
// mailboxes with ctl_mboxlist -u).
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {execa} from 'execa'
import {labDown, labExec, type LabState, labUp, waitPort} from '../lab/lab.js'

const BIN = resolve(import.meta.dirname, '../../../bin/run.js')
const CTL = '/usr/lib/cyrus/bin/ctl_mboxlist'
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined
const results: Record<string, unknown> = {node: process.version, at: new Date().toISOString(), quick}

const say = (m: string) => process.stderr.write(`[bench] ${m}\n`)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** Wall time (ms) and peak RSS (MB) of one murderctl run, via GNU time. */
async function timed(cliArgs: string[]): Promise<{ms: number; peakMB: number; exitCode: number}> {
  const started = performance.now()
  const r = await execa('/usr/bin/time', ['-f', '%M', 'node', BIN, ...cliArgs], {reject: false, env: {NODE_ENV: 'production'}})
  const ms = performance.now() - started
  const peakKB = Number(r.stderr.trim().split('\n').pop())
  return {ms: Math.round(ms), peakMB: Math.round(peakKB / 102.4) / 10, exitCode: r.exitCode ?? -1}
}

async function raw(state: LabState, host: string, cmd: string): Promise<number> {
  const started = performance.now()
  await labExec(state.dir, host, ['sh', '-c', cmd])
  return Math.round(performance.now() - started)
}

async function lab(name: string, base: string, mailboxes: number): Promise<LabState> {
  const dir = mkdtempSync(join(tmpdir(), `murderctl-bench-${name}-`))
  const started = performance.now()
  const state = await labUp({dir, topology: 'standard', base, mailboxes, log: (m) => say(`${name}: ${m}`)})
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

async function recover(perBackend: number) {
  const state = await lab('recover', '127.0.51', perBackend * 2)
  const svc = `${state.dir}/bin/cyrus-service`
  try {
    await labExec(state.dir, 'mupdate', ['sh', '-c', `${svc} stop && rm -f /var/lib/cyrus/mailboxes.db`])
    const r = await timed(['recover-master', '-i', state.inventory, '--source', 'backends', '--yes', '--json'])
    if (r.exitCode !== 0) throw new Error(`recover-master failed (exit ${r.exitCode})`)
    // Cyrus alone, same murder, same run, same conditions as the playbook's push (frontends
    // stopped, an empty master): each backend's -m in parallel.
    await Promise.all(['fe1', 'fe2'].map((f) => labExec(state.dir, f, [svc, 'stop'])))
    await labExec(state.dir, 'mupdate', ['sh', '-c', `${svc} stop && rm -f /var/lib/cyrus/mailboxes.db && ${svc} start`])
    await waitPort(state.hosts.find((h) => h.name === 'mupdate')!.address, 3905, 30_000)
    const rawMs = await Promise.all(['b1', 'b2'].map((b) => raw(state, b, `${CTL} -m`)))
    const slowest = Math.max(...rawMs)
    results.recoverMaster = {mailboxes: perBackend * 2, murderctlMs: r.ms, peakMB: r.peakMB, rawPushMs: {b1: rawMs[0], b2: rawMs[1]}, ratio: Math.round((r.ms / slowest) * 100) / 100, overheadMs: r.ms - slowest}
    say(`recover-master, 2 x ${perBackend}: ${JSON.stringify(results.recoverMaster)}`)
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
  } finally {
    await labDown({dir: state.dir, purge: true})
  }
}

// --only small,recover,diff runs a part (the 200,000-mailbox diff lab alone takes ~10 minutes to load).
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : ['small', 'recover', 'diff']
if (only.includes('small')) await small()
if (only.includes('recover')) await recover(quick ? 2000 : 20_000)
if (only.includes('diff')) await diff(quick ? 20_000 : 200_000)
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`)
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(results, null, 2)}\n`)
