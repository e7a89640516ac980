// The rollback planner: which of a stopped run's steps are undone, in what order, which files go
// back (the earliest copy of each), and a dry-run rollback that sends nothing mutating.
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {z} from 'zod'
import {newRunContext} from '../../../src/engine/context.js'
import {type EngineHooks, runPlaybook} from '../../../src/engine/engine.js'
import {Journal, type JournalEvent} from '../../../src/engine/journal.js'
import {builtinPlaybook} from '../../../src/engine/playbook.js'
import {Playbook} from '../../../src/engine/schema.js'
import {planRollback, rollbackRun, runningBeforeRun} from '../../../src/engine/rollback.js'
import {fakeMurder, FakeShell} from '../fakes/shell.js'
import {RefusedError} from '../../../src/errors.js'
import {PairSettings} from '../../../src/inventory/schema.js'

const SUM = (c: string) => c.repeat(64)
let t = 0
const ev = (event: JournalEvent['event'], step?: string, host?: string, data?: Record<string, unknown>): JournalEvent => ({
  at: new Date(Date.UTC(2026, 10, 28, 12, 0, t++)).toISOString(),
  run: 'r',
  event,
  step,
  host,
  data,
})
const saved = (step: string, host: string, path: string, sum: string, moved = false) =>
  ev('saved-copy', step, host, {host, path, copy: `${path}.murderctl-r-${step}`, sha256: SUM(sum), bytes: 10, moved})
const done = (step: string, host?: string, data?: Record<string, unknown>) => [ev('step-start', step, host), ev('step-done', step, host, data)]

const DB = '/var/lib/cyrus/mailboxes.db'
const playbook = builtinPlaybook('recover-master-standard-backends')
const murder = () => fakeMurder(new FakeShell(), '/nonexistent')

/** A recover-master (standard, from the backends) stopped at its diff gate: everything up to start-master done. */
const stoppedAtDiff = (): JournalEvent[] => [
  ev('run-start', undefined, undefined, {command: 'recover-master'}),
  ...done('preflight'),
  ...done('lock', 'mupdate'),
  ...done('stop-frontends', 'fe1'),
  ev('step-start', 'set-aside-frontend-dbs', 'fe1'),
  saved('set-aside-frontend-dbs', 'fe1', DB, 'f', true),
  ev('step-done', 'set-aside-frontend-dbs', 'fe1'),
  ...done('stop-master', 'mupdate'),
  ev('step-start', 'set-aside-master-db', 'mupdate'),
  saved('set-aside-master-db', 'mupdate', DB, 'a', true),
  ev('step-done', 'set-aside-master-db', 'mupdate'),
  ...done('start-master', 'mupdate'),
  ...done('diff', 'b1'),
  ...done('diff', 'b2'),
  ev('note', 'diff', undefined, {gate: 'diff', confirmed: false, by: 'prompt'}),
]

const order = (units: {id: string; host: string}[]) => units.map((u) => `${u.id}@${u.host}`)

describe('rollback planner', () => {
  it('undoes the done mutating steps in reverse order: files back first, then the undo; read-only and undo-less steps have nothing to undo', () => {
    const plan = planRollback(stoppedAtDiff(), playbook, murder().inv)
    expect(order(plan.units)).toEqual([
      'restore-set-aside-master-db@mupdate',
      'undo-stop-master@mupdate',
      'restore-set-aside-frontend-dbs@fe1',
      'undo-stop-frontends@fe1',
      'undo-lock@mupdate',
    ])
    expect(plan.units[0].restore).toMatchObject({kind: 'mailboxes.db', path: DB, copy: `${DB}.murderctl-r-set-aside-master-db`, sha256: SUM('a'), moved: true})
    expect(plan.units.find((u) => u.id === 'undo-stop-master')).toMatchObject({kind: 'undo', action: 'start-cyrus'})
    expect(plan.units.find((u) => u.id === 'undo-lock')).toMatchObject({action: 'unlock'})
    expect(plan.runningBefore).toEqual({mupdate: true, fe1: true})
  })

  it("runs an undo that puts back its own files (the list in memory) before that step's plain restores", () => {
    const events = [
      ...stoppedAtDiff().slice(0, -6),
      ev('step-start', 'master-db-to-memory', 'mupdate'),
      saved('master-db-to-memory', 'mupdate', '/etc/imapd.conf', 'i'),
      ev('step-done', 'master-db-to-memory', 'mupdate'),
      ...stoppedAtDiff().slice(-6),
    ]
    const plan = planRollback(events, playbook, murder().inv)
    expect(order(plan.units).slice(0, 3)).toEqual([
      'undo-master-db-to-memory@mupdate',
      'restore-master-db-to-memory@mupdate',
      'restore-set-aside-master-db@mupdate',
    ])
    expect(plan.units[0]).toMatchObject({kind: 'undo', action: 'master-db-out-of-memory'})
  })

  it('puts back the earliest copy of each file; later copies, message files and local copies are kept, not restored', () => {
    const events = [
      ...stoppedAtDiff(),
      ...done('save-master-db', 'mupdate'),
      saved('save-master-db', 'mupdate', DB, 'b'),
      saved('save-backend-dbs', 'b1', DB, 'c'),
      saved('save-backend-dbs', 'b1', '/var/spool/cyrus/user/x/1.', 'd'),
      ev('saved-copy', 'save-backend-dbs', undefined, {host: 'local', path: '/x', copy: '/y', sha256: SUM('e')}),
    ]
    const plan = planRollback(events, playbook, murder().inv)
    expect(order(plan.units)).toEqual([
      'restore-save-backend-dbs@b1',
      'restore-set-aside-master-db@mupdate',
      'undo-stop-master@mupdate',
      'restore-set-aside-frontend-dbs@fe1',
      'undo-stop-frontends@fe1',
      'undo-lock@mupdate',
    ])
    expect(plan.units.filter((u) => u.host === 'mupdate' && u.kind === 'restore').map((u) => u.restore!.sha256)).toEqual([SUM('a')])
    expect(plan.notRestored.map((n) => [n.host, n.reason.split(' ')[0]])).toEqual([
      ['mupdate', 'superseded'],
      ['b1', 'not'],
      ['local', 'not'],
    ])
  })

  it('a step skipped because it was already done is not undone, and says what ran before the run; a config copy is found by the host paths', () => {
    const m = murder()
    const fe1 = m.inv.hosts.find((h) => h.name === 'fe1')!
    ;(fe1 as {cyrus: Record<string, string>}).cyrus = {cyrusConf: '/etc/cyrus.conf', imapdConf: '/etc/imapd.conf'}
    const events = [
      ...done('lock', 'mupdate'),
      ev('step-done', 'stop-master', 'mupdate', {alreadyHeld: 'cyrus-master is stopped'}),
      ...done('start-master', 'mupdate'),
      ev('step-start', 'stop-frontends', 'fe1'),
      saved('stop-frontends', 'fe1', '/etc/cyrus.conf', '1'),
      saved('stop-frontends', 'fe1', '/etc/imapd.conf', '2'),
    ]
    const plan = planRollback(events, playbook, m.inv)
    expect(order(plan.units)).toEqual([
      'restore-stop-frontends-cyrus-conf@fe1',
      'restore-stop-frontends-imapd-conf@fe1',
      'undo-stop-frontends@fe1',
      'undo-lock@mupdate',
    ])
    expect(plan.units.slice(0, 2).map((u) => u.restore!.kind)).toEqual(['cyrus.conf', 'imapd.conf'])
    // stop-master found it stopped: the master did not run before the run.
    expect(runningBeforeRun(events, playbook)).toEqual({mupdate: false})
  })

  it('a second rollback goes on: units a rollback already did are left out', () => {
    const events = [
      ...stoppedAtDiff(),
      ev('rollback-start'),
      ev('rollback-step', 'restore-set-aside-master-db', 'mupdate', {status: 'done'}),
      ev('rollback-step', 'undo-stop-master', 'mupdate', {status: 'failed'}),
      ev('rollback-end', undefined, undefined, {completed: false}),
    ]
    expect(order(planRollback(events, playbook, murder().inv).units)).toEqual([
      'undo-stop-master@mupdate',
      'restore-set-aside-frontend-dbs@fe1',
      'undo-stop-frontends@fe1',
      'undo-lock@mupdate',
    ])
  })
})

describe('rollback run', () => {
  const setup = (dryRun: boolean) => {
    const shell = new FakeShell((_h, c) =>
      c.includes('imapd.conf') ? {stdout: 'configdirectory: /var/lib/cyrus\n'} : c.startsWith('test -d') ? {exitCode: 3} : {},
    )
    const m = fakeMurder(shell, mkdtempSync(join(tmpdir(), 'rollback-')))
    for (const h of m.inv.hosts) (h as {cyrus: Record<string, string>}).cyrus = {imapdConf: '/etc/imapd.conf', cyrusConf: '/etc/cyrus.conf'}
    const journal = new Journal(m.inv.stateDir, 'run-1')
    for (const {at: _at, run: _run, ...e} of stoppedAtDiff()) journal.write(e)
    const rc = newRunContext(m, journal, {dryRun, resumed: true})
    const asked: string[][] = []
    const hooks: EngineHooks = {
      progress: () => {},
      consentBy: '--yes',
      consent: async (plan) => {
        asked.push(plan.map((s) => s.step))
        return false
      },
      confirm: async () => true,
    }
    return {shell, journal, rc, hooks, asked}
  }

  it('a dry run shows the plan, sends only reads and writes nothing to the journal', async () => {
    const s = setup(true)
    const before = s.journal.events().length
    const out = await rollbackRun(s.rc, playbook, s.hooks)
    expect(out.plan.map((p) => p.step)).toEqual([
      'restore-set-aside-master-db@mupdate',
      'undo-stop-master@mupdate',
      'restore-set-aside-frontend-dbs@fe1',
      'undo-stop-frontends@fe1',
      'undo-lock@mupdate',
    ])
    expect(out.results.every((r) => r.status === 'planned')).toBe(true)
    expect(s.shell.sent.map((x) => x.command).every((c) => c === 'cat -- /etc/imapd.conf')).toBe(true)
    expect(s.journal.events().length).toBe(before)
    expect(s.asked).toEqual([])
  })

  it('a no at its plan gate changes nothing', async () => {
    const s = setup(false)
    await expect(rollbackRun(s.rc, playbook, s.hooks)).rejects.toThrow(/not confirmed: nothing was changed/)
    expect(s.asked).toHaveLength(1)
    // Reads only: imapd.conf and the lock's precheck.
    expect(s.shell.sent.filter((x) => !/^cat |^test -d/.test(x.command))).toEqual([])
    expect(s.journal.events().some((e) => e.event === 'rollback-start')).toBe(false)
  })
})

describe('stop messages', () => {
  it('offer --rollback once a mutating step has started', async () => {
    const shell = new FakeShell()
    const m = fakeMurder(shell, mkdtempSync(join(tmpdir(), 'rollback-')))
    const journal = new Journal(m.inv.stateDir, 'run-2')
    journal.write({event: 'run-start', data: {command: 'recover-master'}})
    const rc = newRunContext(m, journal)
    const pb = Playbook.parse({
      name: 't',
      summary: 't',
      command: 'test',
      steps: [
        {id: 'look', title: 'look', hosts: 'none', action: 'read'},
        {id: 'stop-fe', title: 'stop fe', hosts: 'frontends', action: 'change', undo: 'change'},
        {id: 'diff', title: 'diff', hosts: 'backends', action: 'read', confirm: true},
      ],
    })
    const act = (mutating: boolean) => ({mutating, params: z.object({}).strict(), describe: () => 'x', run: async () => {}})
    const hooks = (plan: boolean): EngineHooks => ({
      progress: () => {},
      consentBy: 'prompt',
      consent: async () => plan,
      confirm: async () => false,
      actions: {read: act(false), change: act(true)},
    })
    const refused = await runPlaybook(rc, pb, hooks(false), 'RESUME', 'ROLLBACK').catch((e) => e)
    expect(refused.hint, String(refused)).toBe('RESUME')
    const stopped = await runPlaybook(rc, pb, hooks(true), 'RESUME', 'ROLLBACK').catch((e) => e)
    expect(stopped.message).toMatch(/after step diff/)
    expect(stopped.hint).toBe('RESUME or undo what it did: ROLLBACK')
  })

  it('offer no --rollback once an irreversible step has started: they say why, and the journal keeps it', async () => {
    const shell = new FakeShell()
    const m = fakeMurder(shell, mkdtempSync(join(tmpdir(), 'rollback-')))
    const journal = new Journal(m.inv.stateDir, 'run-3')
    journal.write({event: 'run-start', data: {command: 'failover'}})
    const pb = Playbook.parse({
      name: 't',
      summary: 't',
      command: 'test',
      steps: [
        {id: 'stop-fe', title: 'stop fe', hosts: 'frontends', action: 'change', undo: 'change'},
        {id: 'start-new', title: 'start', hosts: 'none', action: 'change', irreversible: 'it took mail: fail back instead ({pair}, {nope})'},
        {id: 'diff', title: 'diff', hosts: 'backends', action: 'read', confirm: true},
      ],
    })
    const act = (mutating: boolean) => ({mutating, params: z.object({}).strict(), describe: () => 'x', run: async () => {}})
    const hooks: EngineHooks = {
      progress: () => {},
      consentBy: '--yes',
      consent: async () => true,
      confirm: async () => false,
      actions: {read: act(false), change: act(true)},
    }
    const stopped = await runPlaybook(newRunContext(m, journal, {options: {pair: 'b1'}}), pb, hooks, 'RESUME', 'ROLLBACK').catch((e) => e)
    // The run's own names filled in; an unknown one left as written.
    expect(stopped.hint).toBe('RESUME (it cannot be rolled back: it took mail: fail back instead (b1, {nope}))')
    expect(journal.events().filter((e) => e.event === 'note' && e.data?.irreversible)).toHaveLength(1)
  })
})

describe('rollback of a failover', () => {
  const controlled = builtinPlaybook('failover-controlled')
  const IMAPD = '/etc/imapd.conf'
  const CYRUS = '/etc/cyrus.conf'
  const setup = (events: JournalEvent[]) => {
    const shell = new FakeShell((_h, c) => (c.includes('imapd.conf') ? {stdout: 'configdirectory: /var/lib/cyrus\n'} : {}))
    const m = fakeMurder(shell, mkdtempSync(join(tmpdir(), 'rollback-failover-')))
    const b1 = m.inv.hosts.find((h) => h.name === 'b1')!
    m.inv.hosts.push({...b1, name: 'b1r', role: 'replica', replicaOf: 'b1', address: '192.0.2.99'})
    for (const h of m.inv.hosts) (h as {cyrus: Record<string, string>}).cyrus = {imapdConf: IMAPD, cyrusConf: CYRUS}
    ;(m.inv as {pairs: unknown[]}).pairs = [PairSettings.parse({backend: 'b1', moveAddress: 'vip-move {servername} {new.address} {old}'})]
    const journal = new Journal(m.inv.stateDir, 'run-f')
    for (const {at: _at, run: _run, ...e} of events) journal.write(e)
    const rc = newRunContext(m, journal, {dryRun: true, resumed: true, options: {pair: 'b1', kind: 'controlled', from: 'b1', to: 'b1r'}})
    return {shell, m, rc}
  }
  const configs = (step: string, host: string, c: string) => [
    ev('step-start', step),
    saved(step, host, IMAPD, c),
    saved(step, host, CYRUS, c.toUpperCase()),
    ev('step-done', step),
  ]
  /** A controlled failover b1 -> b1r stopped after the address moved, before the new master started. */
  const beforeStart = (): JournalEvent[] => [
    ev('run-start', undefined, undefined, {command: 'failover'}),
    ...done('preflight'),
    ...done('lock', 'b1r'),
    ...done('stop-old', 'b1'),
    ev('step-start', 'drain'),
    saved('drain', 'b1', '/var/lib/cyrus/sync/log', 'l'),
    ev('step-done', 'drain'),
    ...done('agree'),
    ...done('stop-new', 'b1r'),
    ...configs('switch-old', 'b1', 'a'),
    ...configs('switch-new', 'b1r', 'b'),
    ev('step-start', 'move-address'),
    ev('command', 'move-address', 'local'),
    ev('step-done', 'move-address'),
  ]

  it('before the new master starts: address back, both configs back, both members started, lock given back', () => {
    const {m, rc} = setup(beforeStart())
    const plan = planRollback(beforeStart(), controlled, m.inv, {rc})
    expect(order(plan.units)).toEqual([
      'undo-move-address@local',
      'restore-switch-new-imapd-conf@b1r',
      'restore-switch-new-cyrus-conf@b1r',
      'restore-switch-old-imapd-conf@b1',
      'restore-switch-old-cyrus-conf@b1',
      'undo-stop-new@b1r',
      'undo-stop-old@b1',
      'undo-lock@b1r',
    ])
    // The same command as the move, with the members swapped: the servername reaches b1 again.
    expect(plan.units[0]).toMatchObject({action: 'move-address-back', does: 'move-address-back: vip-move b1 192.0.2.2 b1r'})
    expect(plan.runningBefore).toEqual({b1: true, b1r: true})
    // The replayed sync log is kept for the operator, not put back.
    expect(plan.notRestored.map((n) => n.path)).toEqual(['/var/lib/cyrus/sync/log'])
  })

  it('once the new master has started, refused before it reads or changes anything, with the way back', async () => {
    const events = [...beforeStart(), ev('note', 'start-new', undefined, {irreversible: 'finish the run, then fail back'}), ev('step-start', 'start-new')]
    const {shell, rc} = setup(events)
    const hooks: EngineHooks = {progress: () => {}, consentBy: '--yes', consent: async () => true, confirm: async () => true}
    const refused = await rollbackRun(rc, controlled, hooks).catch((e) => e)
    expect(refused).toBeInstanceOf(RefusedError)
    expect(refused.message).toMatch(/cannot be rolled back: its step start-new has started/)
    expect(refused.hint).toBe('finish the run, then fail back')
    expect(shell.sent).toEqual([])
  })

  it('both failover playbooks mark the start of the new master irreversible, and undo every step before it that changes a host', () => {
    for (const name of ['failover-controlled', 'failover-hard']) {
      const pb = builtinPlaybook(name)
      const start = pb.steps.findIndex((s) => s.id === 'start-new')
      expect(pb.steps[start]!.irreversible, name).toMatch(/--resume/)
      // After a rollback, the pair's roles are checked too, not only its files and services.
      expect(pb.rollbackVerify, name).toBe('verify-pair-restored')
      // Before it, each step that stops a member or moves the address has its undo; configs come back from their copies.
      for (const s of pb.steps.slice(0, start))
        if (['stop-new', 'stop-old', 'move-address', 'lock'].includes(s.id)) expect(s.undo, `${name} ${s.id}`).toBeTruthy()
      // A member is stopped before its config changes, so the reverse order puts the config back before starting it.
      const at = (id: string) => pb.steps.findIndex((s) => s.id === id)
      expect(at('stop-new'), name).toBeLessThan(at('switch-new'))
    }
  })
})
