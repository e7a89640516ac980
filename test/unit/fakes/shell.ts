// A fake of the SSH pool's few methods, for unit tests of the engine and services: it records
// every command and answers from a handler. The lab suite is the proof against real hosts.
import {execFileSync} from 'node:child_process'
import {COUNT_AWK} from '../../../src/cyrus/mboxlist-count.js'
import {RemoteCommandError} from '../../../src/errors.js'
import type {MurderContext} from '../../../src/host/context.js'
import {CyrusSettings, type Inventory} from '../../../src/inventory/schema.js'
import type {ExecOptions, ExecResult, RemoteCommand, RemoteShell} from '../../../src/ssh/types.js'

const COUNT_AWK_LINE = 'print "COUNTS'

/** COUNT_AWK over a dump and the producer's status line, as the host's shell runs it (names=1: scanNames). */
function countHere(dump: string, exitCode: number, names: boolean): string {
  return execFileSync('awk', [...(names ? ['-v', 'names=1'] : []), COUNT_AWK], {
    input: `${dump}EXIT ${exitCode}\n`,
    env: {...process.env, LC_ALL: 'C'},
  }).toString()
}

export type Answer = Partial<Pick<ExecResult, 'exitCode' | 'stdout' | 'stderr'>>

export class FakeShell implements RemoteShell {
  readonly sent: {host: string; command: string}[] = []
  down = new Set<string>()

  constructor(private readonly answer: (host: string, command: string) => Answer = () => ({})) {}

  async exec(host: {name: string}, cmd: RemoteCommand, opts: ExecOptions = {}): Promise<ExecResult> {
    const command = Array.isArray(cmd) ? cmd.join(' ') : (cmd as {shell: string}).shell
    if (this.down.has(host.name)) throw new RemoteCommandError(`${host.name} is down`, {command, exitCode: null, stderr: ''}, {host: host.name})
    this.sent.push({host: host.name, command})
    let a = this.answer(host.name, command)
    // The count or the names on the host (countEntriesOnHost, scanNames): the answer is what
    // `ctl_mboxlist -d` printed; the real awk reads it here, as the host's would.
    if (!Array.isArray(cmd) && command.includes(COUNT_AWK_LINE))
      a = {exitCode: 0, stderr: a.stderr, stdout: countHere(a.stdout ?? '', a.exitCode ?? 0, command.includes(' -v names=1 '))}
    let stdout = a.stdout ?? ''
    // Streamed as the pool does: line by line, and stdout is then ''.
    if (opts.onStdoutLine && stdout) {
      for (const line of stdout.replace(/\n$/, '').split('\n')) opts.onStdoutLine(line)
      stdout = ''
    }
    return {host: host.name, command, exitCode: a.exitCode ?? 0, stdout, stderr: a.stderr ?? '', durationMs: 1}
  }

  async execOk(host: {name: string}, cmd: RemoteCommand): Promise<ExecResult> {
    const r = await this.exec(host, cmd)
    if (r.exitCode !== 0) throw new RemoteCommandError(`exit ${r.exitCode}`, {command: r.command, exitCode: r.exitCode, stderr: r.stderr}, {host: host.name})
    return r
  }

  async readFile(host: {name: string}, path: string): Promise<Buffer> {
    return Buffer.from((await this.execOk(host, ['cat', '--', path])).stdout)
  }

  async writeFileAtomic(host: {name: string}, path: string): Promise<void> {
    await this.execOk(host, ['write', path])
  }

  async close(): Promise<void> {}
}

const host = (name: string, role: Inventory['hosts'][number]['role']) =>
  ({name, role, address: `192.0.2.${name.length}`, servername: name, ssh: {}, cyrus: CyrusSettings.parse({})}) as unknown as Inventory['hosts'][number]

/** A small murder: a master, one frontend (standard only), two backends. */
export function fakeMurder(shell: FakeShell, stateDir: string, mode: Inventory['mode'] = 'standard'): MurderContext {
  const inv = {
    name: 'test',
    mode,
    path: '/dev/null',
    stateDir,
    knownHosts: '/dev/null',
    thresholds: {masterDropCritPercent: 50},
    hosts: [host('mupdate', 'mupdate-master'), ...(mode === 'standard' ? [host('fe1', 'frontend')] : []), host('b1', 'backend'), host('b2', 'backend')],
  } as unknown as Inventory
  return {inv, pool: shell, concurrency: 4, log: () => {}, imapdConf: new Map()}
}
