// Steps that run alongside the step before them: started together, the run going on (or
// stopping) only once every one of them is done; refused beside a step that asks.
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {z} from 'zod'
import type {ActionRegistry} from '../../../src/engine/actions/index.js'
import {defineAction} from '../../../src/engine/actions/types.js'
import {newRunContext} from '../../../src/engine/context.js'
import {type EngineHooks, runPlaybook, RunStoppedError} from '../../../src/engine/engine.js'
import {Journal} from '../../../src/engine/journal.js'
import {batchesOf, Playbook} from '../../../src/engine/schema.js'
import {AbortError} from '../../../src/errors.js'
import {fakeMurder, FakeShell} from '../fakes/shell.js'

const steps = [
  {id: 'look', title: 'look', hosts: 'none', action: 'read'},
  {id: 'a', title: 'a', hosts: 'master', action: 'a'},
  {id: 'b', title: 'b', hosts: 'frontends', action: 'b', alongside: true},
  {id: 'after', title: 'after', hosts: 'none', action: 'read'},
]

function setup(opts: {failB?: boolean} = {}) {
  const log: string[] = []
  // a finishes only once b has started: run one after the other, they would never finish.
  let bStarted!: () => void
  const started = new Promise<void>((r) => (bStarted = r))
  const act = (mutating: boolean, run: (step: string) => Promise<void>) =>
    defineAction({mutating, params: z.object({}).strict(), describe: () => 'x', run: async (_rc, s) => void (await run(s.id))})
  const actions: ActionRegistry = {
    read: act(false, async (s) => void log.push(s)),
    a: act(true, async () => {
      log.push('a start')
      await Promise.race([started, new Promise((_, no) => setTimeout(() => no(new Error('b never started beside a')), 2000))])
      await new Promise((r) => setTimeout(r, 20))
      log.push('a done')
    }),
    b: act(true, async () => {
      log.push('b start')
      bStarted()
      if (opts.failB) throw new AbortError('b broke', {step: 'b', hint: 'mend b'})
      log.push('b done')
    }),
  }
  const shell = new FakeShell()
  const murder = fakeMurder(shell, mkdtempSync(join(tmpdir(), 'alongside-')))
  const journal = new Journal(murder.inv.stateDir, 'run-1')
  journal.write({event: 'run-start', data: {command: 'test'}})
  const rc = newRunContext(murder, journal, {})
  const progress: string[] = []
  const hooks: EngineHooks = {progress: (l) => progress.push(l), actions, consentBy: '--yes', consent: async () => true, confirm: async () => true}
  return {rc, hooks, log, progress, journal, playbook: Playbook.parse({name: 't', summary: 't', command: 'test', steps})}
}

describe('steps alongside each other', () => {
  it('start together; the next step waits for both', async () => {
    const t = setup()
    await runPlaybook(t.rc, t.playbook, t.hooks, 'resume')
    expect(t.log).toEqual(['look', 'a start', 'b start', 'b done', 'a done', 'after'])
    // Both titles are shown as the batch starts, each with its place in the playbook.
    expect(t.progress.filter((l) => l.startsWith('['))).toEqual(['[1/4] look', '[2/4] a', '[3/4] b', '[4/4] after'])
    expect(batchesOf(t.playbook.steps).map((b) => b.steps.map((s) => s.id))).toEqual([['look'], ['a', 'b'], ['after']])
  })

  it('one that fails stops the run at it, once the other is done (and journaled done)', async () => {
    const t = setup({failB: true})
    const e = await runPlaybook(t.rc, t.playbook, t.hooks, 'resume').catch((x) => x)
    expect(e).toBeInstanceOf(RunStoppedError)
    expect((e as RunStoppedError).stoppedAt).toBe('b')
    expect(t.log).toEqual(['look', 'a start', 'b start', 'a done'])
    const done = t.journal
      .events()
      .filter((x) => x.event === 'step-done')
      .map((x) => x.step)
    expect(done).toContain('a')
    expect(done).not.toContain('b')
  })

  it('is refused on the first step and beside a step that asks', () => {
    expect(() => Playbook.parse({name: 't', summary: 't', steps: [{...steps[1], alongside: true}]})).toThrow(/no step before it/)
    const asks = [{...steps[1], confirm: true}, steps[2]]
    expect(() => Playbook.parse({name: 't', summary: 't', steps: asks})).toThrow(/a asks for confirmation/)
  })
})
