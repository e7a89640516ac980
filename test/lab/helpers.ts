// Run the built CLI exactly as an operator would, and small lab helpers for making disasters.
import {createHash} from 'node:crypto'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {basename, dirname, join, resolve} from 'node:path'
import {execa} from 'execa'
import {expect} from 'vitest'
import {parse} from 'yaml'
import {localEntry, undumpDocument, undumpLine} from '../../src/cyrus/mboxlist-dump.js'
import {labExec, readLabState} from '../../src/lab/lab.js'
import type {LabTopology} from '../../src/lab/topology.js'

const BIN = resolve(import.meta.dirname, '../../bin/run.js')

export interface CliResult {
  exitCode: number
  stdout: string
  stderr: string
  json: any
}

/**
 * Run the CLI as an operator would. With interruptWhen, send it `signal` once its stderr matches
 * (an operator's Ctrl-C), and fail if it ended before.
 */
export async function murderctl(
  args: string[],
  opts: {
    env?: Record<string, string>
    timeoutMs?: number
    interruptWhen?: RegExp
    signal?: NodeJS.Signals
    injectWhen?: RegExp
    inject?: () => Promise<unknown>
  } = {},
): Promise<CliResult> {
  const child = execa('node', [BIN, ...args], {
    reject: false,
    env: {...opts.env, FORCE_COLOR: '0', NODE_ENV: 'production'},
    stdin: 'ignore',
    timeout: opts.timeoutMs ?? 300_000,
  })
  let sent = false
  if (opts.interruptWhen) {
    let seen = ''
    child.stderr!.on('data', (b: Buffer) => {
      seen += b.toString()
      if (!sent && opts.interruptWhen!.test(seen)) {
        sent = true
        child.kill(opts.signal ?? 'SIGINT')
      }
    })
  }
  // A fault injected once the output (stderr, then stdout) matches: the run goes on meanwhile.
  let injected: Promise<unknown> | undefined
  if (opts.injectWhen) {
    let seen = ''
    const watch = (b: Buffer) => {
      seen += b.toString()
      if (!injected && opts.injectWhen!.test(seen)) injected = opts.inject!()
    }
    child.stderr!.on('data', watch)
    child.stdout!.on('data', watch)
  }
  const r = await child
  if (opts.injectWhen) {
    if (!injected) throw new Error(`murderctl ended before its output matched ${opts.injectWhen}: ${r.stderr}`)
    await injected
  }
  if (opts.interruptWhen && !sent) throw new Error(`murderctl ended before its output matched ${opts.interruptWhen}: ${r.stderr}`)
  let json: unknown
  if (args.includes('--json')) {
    try {
      json = JSON.parse(r.stdout)
    } catch {
      json = undefined
    }
  }
  return {exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, json}
}

/**
 * murderctl at a real terminal (a pty from util-linux's `script`), as an operator answers it:
 * each answer is typed once the output since the previous answer matches its prompt, after its
 * `before` (a fault made while the run waits at that prompt) is done. `\x03` types a Ctrl-C.
 */
export async function murderctlTty(
  args: string[],
  answers: {when: RegExp; send: string; before?: () => Promise<unknown>}[],
  timeoutMs = 300_000,
): Promise<{exitCode: number; output: string}> {
  const line = ['node', BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')
  const child = execa('script', ['-qfec', line, '/dev/null'], {
    reject: false,
    env: {FORCE_COLOR: '0', NODE_ENV: 'production', TERM: 'dumb', COLUMNS: '200'},
    timeout: timeoutMs,
  })
  let seen = ''
  let from = 0
  let next = 0
  let typing: Promise<unknown> = Promise.resolve()
  child.stdout!.on('data', (b: Buffer) => {
    seen += b.toString()
    const m = next < answers.length ? answers[next].when.exec(seen.slice(from)) : null
    if (m) {
      from += m.index + m[0].length
      const a = answers[next++]
      typing = typing.then(async () => {
        await a.before?.()
        child.stdin!.write(a.send)
      })
    }
  })
  const r = await child
  await typing
  if (next < answers.length) throw new Error(`murderctl ended before prompt ${answers[next].when}: ${seen}`)
  return {exitCode: r.exitCode ?? -1, output: seen.replace(/\r/g, '')}
}

/** murderctl, sent `signal` once its stderr matches `when`. */
export const murderctlInterrupted = (args: string[], when: RegExp, signal: NodeJS.Signals = 'SIGINT') => murderctl(args, {interruptWhen: when, signal})

let current: {dir: string; inventory: string} | undefined

/** The murder test/lab/file-lab.ts boots for a file (default: standard, MUPDATE on 3905). */
export interface FileLabOptions {
  topology?: LabTopology
  mupdatePort?: number
}
let wanted: FileLabOptions = {}

/** Called at a test file's top level (it runs before file-lab.ts boots the lab): the murder this file needs. */
export function useFileLab(options: FileLabOptions): void {
  wanted = options
}
export const fileLabOptions = (): FileLabOptions => wanted

/** Set by test/lab/file-lab.ts: the lab this test file runs on. */
export function setLab(l: {dir: string; inventory: string}): void {
  current = l
}

export const lab = () => {
  if (!current) throw new Error('no lab: test/lab/file-lab.ts boots one per file (vitest setupFiles)')
  return current
}

/** The suite lab's address prefix (127.x.y), and a spare one for a file's own second lab. */
export const labBase = () => readLabState(lab().dir)!.base
export const spareLabBase = (offset = 1) => fileLabBase(offset)

/**
 * This worker's address prefix (offset 0: its file lab; 1, 2: a file's own spare labs). Lab
 * files may run in parallel workers: each worker gets three prefixes of its own.
 */
export function fileLabBase(offset = 0): string {
  const [a, b, c] = (process.env.MURDERCTL_TEST_LAB_BASE ?? '127.0.20').split('.')
  const worker = Math.max(1, Number(process.env.VITEST_POOL_ID ?? '1')) - 1
  return `${a}.${b}.${Number(c) + worker * 3 + offset}`
}

/**
 * Wait until every cyrus-master runs and every slave is connected again: slaves reconnect to a
 * restarted master only within mupdate_retry_delay, and the next file expects a whole lab.
 */
export async function waitLabHealthy(timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while ((await murderctl(['check', '-i', lab().inventory, '--only', 'slaves', '--only', 'cyrus-master'])).exitCode !== 0) {
    if (Date.now() > deadline) throw new Error('the lab did not come back healthy')
    await new Promise((r) => setTimeout(r, 1000))
  }
}

export function labHost(name: string) {
  const h = readLabState(lab().dir)?.hosts.find((x) => x.name === name)
  if (!h) throw new Error(`no lab host ${name}`)
  return h
}

/** Run a shell command on a lab host behind murderctl's back (to make disasters). */
export async function onHost(name: string, script: string, input?: string, dir = lab().dir) {
  return labExec(dir, name, ['sh', '-c', script], {input})
}

export const CTL = '/usr/lib/cyrus/bin/ctl_mboxlist'

/** sha256 of every lab host's mailboxes.db, imapd.conf and cyrus.conf: "nothing changed" checks. */
/**
 * The lab's checksums once they hold still: a slave may still be writing what the master sent
 * it a moment ago (on a loaded machine, seconds after the lab looked whole), which is Cyrus's
 * change, not murderctl's. Two equal reads a second apart, or the last read after 30 s.
 */
export async function labChecksums(): Promise<Record<string, string>> {
  let last = await labChecksumsOf(lab().dir)
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 1000))
    const now = await labChecksumsOf(lab().dir)
    if (JSON.stringify(now) === JSON.stringify(last)) return now
    last = now
  }
  return last
}

/** A mailboxes.db entry written behind the murder's back (ctl_mboxlist -u), as an operator's mistake would. */
export function dumpEntry(name: string, owner: string, uniqueid = `lab${Math.random().toString(36).slice(2, 14)}`): string {
  return undumpDocument([undumpLine(localEntry(name, owner, {admin: 'cyrus', uniqueid}))])
}

/** Remove one entry from a host's mailboxes.db directly (lab repair only; simple names). */
export async function dropEntry(host: string, name: string): Promise<void> {
  const dump = JSON.parse((await onHost(host, `${CTL} -d`)).stdout) as Record<string, {uniqueid?: string}>
  const uid = dump[name]?.uniqueid
  // 3.6 keys: N<name with '.' as \037>, and I<uniqueid>; printf turns \037 into the byte.
  const db = '/usr/lib/cyrus/bin/cyr_dbtool /var/lib/cyrus/mailboxes.db twoskip delete'
  await onHost(host, `${db} "$(printf 'N${name.replace(/\./g, '\\037')}')"`)
  if (uid) await onHost(host, `${db} I${uid}`)
}

/** name -> server for a host's mailboxes.db (server '' for a local entry). */
export async function listOf(host: string, dir = lab().dir): Promise<Map<string, string>> {
  const r = await labExec(dir, host, [CTL, '-d'])
  const dump = JSON.parse(r.stdout) as Record<string, {server?: string}>
  return new Map(Object.entries(dump).map(([k, v]) => [k, v.server ?? '']))
}

/**
 * The disaster: the master's mailboxes.db is gone; with restart, the master comes back empty
 * (and the slaves resync against it within mupdate_retry_delay), else it stays down.
 */
export async function loseMasterDb(dir = lab().dir, opts: {restart?: boolean} = {}): Promise<void> {
  const svc = `${dir}/bin/cyrus-service`
  await labExec(dir, 'mupdate', ['sh', '-c', `${svc} stop && rm -f /var/lib/cyrus/mailboxes.db${opts.restart === false ? '' : ` && ${svc} start`}`])
}

/** Stop a process and its children, then kill them (a cyrus-master seeing a child die would fork another). */
const KILL_TREE = 'k() { kill -STOP "$1" 2>/dev/null; for c in $(pgrep -P "$1"); do k "$c"; done; kill -KILL "$1" 2>/dev/null; }'

/** The master's cyrus-master killed with its children (a crash), waited until gone. */
export const crashCyrusMaster = (dir = lab().dir, host = 'mupdate') =>
  labExec(dir, host, [
    'sh',
    '-c',
    `${KILL_TREE}; p=$(cat /run/cyrus-master.pid); k "$p"; i=0; while [ -e /proc/$p ] && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done`,
  ])

/** Freeze (or thaw) the MUPDATE server under a host's cyrus-master: a push into it then hangs, mid-push. */
export const freezeMupdate = (dir = lab().dir, host = 'mupdate', signal: 'STOP' | 'CONT' = 'STOP') =>
  labExec(dir, host, ['sh', '-c', `for c in $(pgrep -P "$(cat /run/cyrus-master.pid)" -x mupdate); do kill -${signal} "$c"; done`])

/** Wait until a process of this name runs on a lab host (in its mount namespace: the hosts share one pid space). */
export async function waitForProcess(host: string, name: string, opts: {args?: string; dir?: string; timeoutMs?: number} = {}): Promise<void> {
  const {dir = lab().dir, timeoutMs = 60_000} = opts
  const deadline = Date.now() + timeoutMs
  // With args: only a process whose command line contains them (e.g. " -m").
  const args = opts.args ? ` && tr '\\0' ' ' < /proc/$p/cmdline | grep -qF -- '${opts.args}'` : ''
  const script = `me=$(readlink /proc/self/ns/mnt); for p in $(pgrep -x ${name}); do [ "$(readlink /proc/$p/ns/mnt)" = "$me" ]${args} && echo $p; done; true`
  while (!(await labExec(dir, host, ['sh', '-c', script])).stdout.trim()) {
    if (Date.now() > deadline) throw new Error(`no ${name} ran on ${host} within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** What a run may have left of a list in memory on a host: mounts and folders (empty when nothing). */
export async function memoryLeft(dir = lab().dir, host = 'mupdate'): Promise<string> {
  const r = await labExec(dir, host, [
    'sh',
    '-c',
    'grep murderctl-tmpfs /proc/mounts; ls -d /run/murderctl-tmpfs-* /dev/shm/murderctl-tmpfs-* 2>/dev/null; true',
  ])
  return r.stdout.trim()
}

/** labChecksums for a lab other than the suite's shared one. */
export async function labChecksumsOf(dir: string): Promise<Record<string, string>> {
  const state = readLabState(dir)!
  const out: Record<string, string> = {}
  for (const h of state.hosts) {
    // A missing file (a lost mailboxes.db) counts as a state too.
    const files = ['/var/lib/cyrus/mailboxes.db', '/etc/imapd.conf', '/etc/cyrus.conf']
    const r = await labExec(dir, h.name, ['sh', '-c', `for f in ${files.join(' ')}; do sha256sum "$f" 2>/dev/null || echo "missing $f"; done`])
    for (const line of r.stdout.trim().split('\n')) {
      const [sum, file] = line.split(/\s+/)
      out[`${h.name}:${file}`] = sum
    }
  }
  return out
}

/** The events of a run's journal (a torn last line is left out, as murderctl does). */
export function journalEvents(journalPath: string): any[] {
  return readFileSync(journalPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l)]
      } catch {
        return []
      }
    })
}

/**
 * The product's first promise, checked after every mutating run: every copy its journal records
 * (`saved-copy`) still exists on its host with the recorded sha256, and no two records share a
 * file. Returns how many copies were checked.
 */
export async function assertJournalCopiesIntact(journalPath: string, dir = lab().dir): Promise<number> {
  const copies = journalEvents(journalPath).filter((e) => e.event === 'saved-copy')
  const names = copies.map((e) => `${e.data.host ?? e.host}:${e.data.copy}`)
  expect(new Set(names).size, `two saved copies share a name in ${journalPath}`).toBe(names.length)
  for (const e of copies) {
    // Host 'local': a copy kept on this machine (in the run folder), not on a lab host.
    const host = e.data.host ?? e.host
    const sum =
      host === 'local'
        ? createHash('sha256').update(readFileSync(e.data.copy)).digest('hex')
        : (await labExec(dir, host, ['sha256sum', '--', e.data.copy], {reject: false})).stdout.split(/\s+/)[0]
    expect(sum, `${host}:${e.data.copy} (saved at step ${e.step}) in ${journalPath}`).toBe(e.data.sha256)
  }
  return copies.length
}

/** Every run folder's journal under the lab inventory's stateDir, newest last. */
export function runJournals(inventory = lab().inventory): string[] {
  const stateDir = resolve(dirname(inventory), parse(readFileSync(inventory, 'utf8')).stateDir)
  const runs = join(stateDir, 'runs')
  if (!existsSync(runs)) return []
  return readdirSync(runs)
    .sort()
    .map((r) => join(runs, r, 'journal.jsonl'))
    .filter((p) => existsSync(p))
}

/** Scratch folders (local-only lists, kept dumps) of these runs still on the lab's backends, in /dev/shm or beside mailboxes.db. */
export async function scratchLeft(runs: readonly string[], dir = lab().dir): Promise<string> {
  if (!runs.length) return ''
  const patterns = runs.flatMap((r) => ['localonly', 'dump'].flatMap((k) => [`/dev/shm/murderctl-${k}-${r}-*`, `/var/lib/cyrus/murderctl-${k}-${r}-*`]))
  const left = await Promise.all(
    ['b1', 'b2'].map(async (b) => (await onHost(b, `ls -d ${patterns.join(' ')} 2>/dev/null || true`, undefined, dir)).stdout.trim()),
  )
  return left.filter(Boolean).join(' ')
}

/** scratchLeft of every run of this lab: /dev/shm is shared by every lab on the machine, so only this lab's runs are looked for. */
export const scratchLeftByLabRuns = (inventory = lab().inventory, dir = lab().dir) =>
  scratchLeft(
    runJournals(inventory).map((j) => basename(dirname(j))),
    dir,
  )

/** assertJournalCopiesIntact over every run journal of the lab's stateDir. */
export async function assertAllJournalCopiesIntact(inventory = lab().inventory, dir = lab().dir): Promise<number> {
  let n = 0
  for (const j of runJournals(inventory)) n += await assertJournalCopiesIntact(j, dir)
  return n
}

/** What `--rollback RUN --dry-run` would do, as `<unit>@<host>` in order: it must exit 0 (and change nothing). */
export async function rollbackPlan(args: string[]): Promise<string[]> {
  const dry = await murderctl([...args, '--dry-run', '--json'])
  expect(dry.exitCode, dry.stdout).toBe(0)
  return dry.json.plan.map((p: {step: string}) => p.step)
}
