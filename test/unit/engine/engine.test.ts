// The engine without the lab: order, the consent gate before the first change, the diff gate,
// dry runs, resume, failures and interrupts, over actions that only record what they do.
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
import {Playbook} from '../../../src/engine/schema.js'
import {AbortError, NeedsConfirmationError} from '../../../src/errors.js'
import {fakeMurder, FakeShell} from '../fakes/shell.js'

function setup(opts: {dryRun?: boolean; journal?: Journal; failOn?: string} = {}) {
  const ran: string[] = []
  const act = (mutating: boolean) =>
    defineAction({
      mutating,
      params: z.object({n: z.number().default(0)}).strict(),
      describe: (_rc, p, h) => `touch ${h?.name ?? '-'} ${p.n}`,
      async run(_rc, step, _p, h) {
        const unit = `${step.id}@${h?.name ?? '-'}`
        if (unit === opts.failOn) throw new AbortError('it broke', {host: h?.name, step: step.id, hint: 'mend it'})
        ran.push(unit)
      },
    })
  const actions: ActionRegistry = {read: act(false), change: act(true)}
  const playbook = Playbook.parse({
    name: 't',
    summary: 't',
    command: 'test',
    steps: [
      {id: 'look', title: 'look', hosts: 'none', action: 'read'},
      {id: 'stop-fe', title: 'stop fe', hosts: 'frontends', action: 'change'},
      {id: 'diff', title: 'diff', hosts: 'backends', action: 'read', confirm: true},
      {id: 'push', title: 'push', hosts: 'pair', action: 'change', params: {n: 2}},
    ],
  })
  const shell = new FakeShell()
  const murder = fakeMurder(shell, opts.journal ? '' : mkdtempSync(join(tmpdir(), 'engine-')))
  let journal = opts.journal
  if (!journal) {
    journal = new Journal(murder.inv.stateDir, 'run-1')
    journal.write({event: 'run-start', data: {command: 'test'}})
  }
  const rc = newRunContext(murder, journal, {
    dryRun: opts.dryRun,
    resumed: Boolean(opts.journal),
    selectors: {pair: murder.inv.hosts.filter((h) => h.name === 'b2')},
  })
  const asked: string[] = []
  const hooks = (answers: {plan?: boolean | 'no-tty'; diff?: boolean} = {}): EngineHooks => ({
    progress: () => {},
    actions,
    consentBy: 'prompt',
    consent: async (plan) => {
      asked.push(`plan:${plan.map((s) => s.step).join(',')}`)
      if (answers.plan === 'no-tty') throw new NeedsConfirmationError('no terminal')
      return answers.plan ?? true
    },
    confirm: async (step) => {
      asked.push(`diff:${step.id}`)
      return answers.diff ?? true
    },
  })
  return {rc, playbook, hooks, ran, asked, shell, journal}
}

describe('engine', () => {
  it('asks once, with every change still to come, before the first change; then the diff gate', async () => {
    const t = setup()
    const out = await runPlaybook(t.rc, t.playbook, t.hooks(), 'resume')
    expect(t.asked).toEqual(['plan:stop-fe,push', 'diff:diff'])
    expect(t.ran).toEqual(['look@-', 'stop-fe@fe1', 'diff@b1', 'diff@b2', 'push@b2'])
    expect(out.plan.find((s) => s.step === 'push')?.hosts).toEqual([{host: 'b2', does: 'touch b2 2'}])
    const notes = t.journal
      .events()
      .filter((e) => e.event === 'note')
      .map((e) => e.data)
    expect(notes).toEqual([
      {gate: 'plan', confirmed: true, by: 'prompt'},
      {gate: 'diff', confirmed: true, by: 'prompt'},
    ])
  })

  it('without a terminal (or a no) it stops before the first change, having only read', async () => {
    for (const plan of ['no-tty', false] as const) {
      const t = setup()
      const err = await runPlaybook(t.rc, t.playbook, t.hooks({plan}), 'resume').catch((e) => e)
      expect(err).toBeInstanceOf(RunStoppedError)
      expect(err.exitCode).toBe(plan === 'no-tty' ? 6 : 1)
      expect(err.message).toMatch(/before step stop-fe \(nothing was changed\)/)
      expect(t.ran).toEqual(['look@-'])
    }
  })

  it('a no at the diff stops after the diff; a resume skips what is done and asks again', async () => {
    const t = setup()
    await expect(runPlaybook(t.rc, t.playbook, t.hooks({diff: false}), 'resume')).rejects.toThrow(/after step diff/)
    expect(t.ran).toEqual(['look@-', 'stop-fe@fe1', 'diff@b1', 'diff@b2'])
    const again = setup({journal: t.journal})
    await runPlaybook(again.rc, again.playbook, again.hooks(), 'resume')
    // Read-only steps run again (fresh facts); the done change does not; the plan covers only the rest.
    expect(again.ran).toEqual(['look@-', 'diff@b1', 'diff@b2', 'push@b2'])
    expect(again.asked).toEqual(['plan:push', 'diff:diff'])
  })

  it("removes a step's scratch that no later step took when the run stops; a completed run leaves none", async () => {
    const stopped = setup()
    const removed: string[] = []
    stopped.rc.cleanups.set('scratch@b1', async () => void removed.push('scratch@b1'))
    await expect(runPlaybook(stopped.rc, stopped.playbook, stopped.hooks({diff: false}), 'resume')).rejects.toBeInstanceOf(RunStoppedError)
    expect(removed).toEqual(['scratch@b1'])
    expect(stopped.rc.cleanups.size).toBe(0)
    // A failing removal does not hide why the run stopped.
    const failing = setup({failOn: 'push@b2'})
    failing.rc.cleanups.set('scratch@b2', async () => {
      throw new Error('host gone')
    })
    await expect(runPlaybook(failing.rc, failing.playbook, failing.hooks(), 'resume')).rejects.toThrow(/it broke/)
    // Taken by the step that uses it: nothing is left to remove at the end.
    const done = setup()
    done.rc.cleanups.set('scratch@b2', async () => void removed.push('late'))
    done.rc.cleanups.delete('scratch@b2')
    await runPlaybook(done.rc, done.playbook, done.hooks(), 'resume')
    expect(removed).toEqual(['scratch@b1'])
  })

  it('a dry run changes nothing, asks nothing and returns the whole plan', async () => {
    const t = setup({dryRun: true})
    const out = await runPlaybook(t.rc, t.playbook, t.hooks(), 'resume')
    expect(t.ran).toEqual(['look@-', 'diff@b1', 'diff@b2'])
    expect(t.asked).toEqual([])
    expect(out.results.filter((u) => u.status === 'planned').map((u) => `${u.step}@${u.host}`)).toEqual(['stop-fe@fe1', 'push@b2'])
    expect(out.plan.map((s) => s.step)).toEqual(['stop-fe', 'push'])
  })

  it('a failing unit stops the run at its step, naming host and step, with the resume hint', async () => {
    const t = setup({failOn: 'push@b2'})
    const err = await runPlaybook(t.rc, t.playbook, t.hooks(), 'murderctl x --resume run-1').catch((e) => e)
    expect(err).toBeInstanceOf(RunStoppedError)
    expect(err.toJSON()).toMatchObject({stoppedAt: 'push', host: 'b2', hint: 'mend it; then murderctl x --resume run-1'})
  })

  it('an unreachable host stops a mutating step before it touches any of its hosts', async () => {
    const t = setup()
    t.shell.down.add('fe1')
    const err = await runPlaybook(t.rc, t.playbook, t.hooks(), 'resume').catch((e) => e)
    expect(err.message).toMatch(/stopped before step stop-fe, nothing done in it/)
    expect(t.ran).toEqual(['look@-'])
  })

  it('a step naming a selector the command does not provide is an error, not a silent no-op', async () => {
    const t = setup()
    t.rc.selectors = {}
    const err = await runPlaybook(t.rc, t.playbook, t.hooks(), 'resume').catch((e) => e)
    expect(String(err.message)).toMatch(/host selector "pair"/)
  })
})

describe('engine: recheck on resume', () => {
  it('runs a done step again only when its post-condition no longer holds, and journals why', async () => {
    let present = true
    const ran: string[] = []
    const shell = new FakeShell((_h, command) => (command.startsWith('test -s') ? {exitCode: present ? 0 : 1} : {}))
    const murder = fakeMurder(shell, mkdtempSync(join(tmpdir(), 'engine-')))
    const actions: ActionRegistry = {
      start: defineAction({
        mutating: true,
        params: z.object({}).strict(),
        describe: () => 'start',
        async run(_rc, step, _p, h) {
          ran.push(`${step.id}@${h?.name}`)
          present = true
        },
      }),
    }
    const playbook = Playbook.parse({
      name: 't',
      summary: 't',
      command: 'test',
      steps: [{id: 'start', title: 'start', hosts: 'master', action: 'start', post: 'db-present', recheck: true}],
    })
    const journal = new Journal(murder.inv.stateDir, 'run-1')
    journal.write({event: 'run-start', data: {command: 'test'}})
    // Done in the journal (it ran once; the condition was false before it).
    journal.write({event: 'step-done', step: 'start', host: 'mupdate'})
    const hooks: EngineHooks = {progress: () => {}, actions, consentBy: '--yes', consent: async () => true, confirm: async () => true}
    const rc = () => newRunContext(murder, journal, {resumed: true})
    // Still holds: not run again.
    const still = await runPlaybook(rc(), playbook, hooks, 'resume')
    expect(still.results[0]).toMatchObject({status: 'already-done'})
    expect(ran).toEqual([])
    // Lost since (a crash): run again, journaled.
    present = false
    const again = await runPlaybook(rc(), playbook, hooks, 'resume')
    expect(again.results[0]).toMatchObject({status: 'done'})
    expect(ran).toEqual(['start@mupdate'])
    expect(journal.events().some((e) => e.event === 'note' && e.step === 'start' && /db-present no longer holds/.test(String(e.data?.again)))).toBe(true)
  })
})
