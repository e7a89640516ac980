// The push step's units: a backend whose push is done waits for the other pushes already
// running before its post-condition is read, so its -m -w sees the master's final list (and an
// empty answer then stands for the verify). With fewer slots than backends nothing waits for a
// push not yet started (no deadlock). The lab suite runs the pushes for real.
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {pushAction} from '../../../src/engine/actions/push.js'
import {newRunContext, type RunContext} from '../../../src/engine/context.js'
import {Journal} from '../../../src/engine/journal.js'
import {Step} from '../../../src/engine/schema.js'
import type {ExecOptions, ExecResult, RemoteCommand} from '../../../src/ssh/types.js'
import {mapLimit} from '../../../src/util/limit.js'
import {fakeMurder, FakeShell} from '../fakes/shell.js'

/** b2's `ctl_mboxlist -m` answers only when released. */
class GatedShell extends FakeShell {
  release!: () => void
  readonly gate = new Promise<void>((r) => (this.release = r))
  override async exec(host: {name: string}, cmd: RemoteCommand, opts?: ExecOptions): Promise<ExecResult> {
    const command = Array.isArray(cmd) ? cmd.join(' ') : ''
    if (host.name === 'b2' && / -m( -a)?$/.test(command)) await this.gate
    return super.exec(host, cmd, opts)
  }
}

const step = Step.parse({id: 'push', title: 'push', hosts: 'backends', action: 'push', params: {}})

function setup(concurrency: number) {
  const shell = new GatedShell()
  const ctx = {...fakeMurder(shell, mkdtempSync(join(tmpdir(), 'push-'))), concurrency}
  const rc = newRunContext(ctx, new Journal(ctx.inv.stateDir, 'run-1'), {options: {}}) as RunContext
  const backends = ctx.inv.hosts.filter((h) => h.role === 'backend')
  const done: string[] = []
  const all = mapLimit(backends, concurrency, async (h) => {
    await pushAction.run(rc, step, pushAction.params.parse({}), h)
    done.push(h.name)
  })
  return {shell, all, done}
}

const tick = () => new Promise((r) => setTimeout(r, 20))

describe('push: each backend done only once every push running beside it is', () => {
  it('b1 pushed first still waits for b2', async () => {
    const {shell, all, done} = setup(4)
    await tick()
    expect(shell.sent.filter((c) => / -m$/.test(c.command)).map((c) => c.host)).toEqual(['b1'])
    expect(done).toEqual([])
    shell.release()
    await all
    expect(done.sort()).toEqual(['b1', 'b2'])
  })

  it('one slot: b1 does not wait for a push that has not started', async () => {
    const {shell, all, done} = setup(1)
    await tick()
    expect(done).toEqual(['b1'])
    shell.release()
    await all
    expect(done).toEqual(['b1', 'b2'])
  })
})
