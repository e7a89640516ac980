// recover-master's decisions without SSH: which source `--source auto` takes, when the master
// counts as lost, and why the preflight refuses. The hosts answer with outputs captured from
// the lab (test/fixtures/lab) through the fake shell; the lab suite proves the rest.
import {createHash} from 'node:crypto'
import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {lostMasterPreflight, type BeforeFigures} from '../../../src/engine/actions/master-rebuild.js'
import {newRunContext, type RunContext} from '../../../src/engine/context.js'
import {Journal} from '../../../src/engine/journal.js'
import {Step} from '../../../src/engine/schema.js'
import {HostKeyError, type MurderctlError} from '../../../src/errors.js'
import {masterLooksLost} from '../../../src/host/facts.js'
import type {Inventory} from '../../../src/inventory/schema.js'
import {resolveSource} from '../../../src/services/recover.js'
import {fakeMurder, FakeShell} from '../fakes/shell.js'

const fx = (name: string) => readFileSync(join(import.meta.dirname, '../../fixtures/lab', name), 'utf8')
const EMPTY_DUMP = '{\n\n}\n'

/**
 * A murder as the lab leaves it: the master and fe1 hold 40 remote entries, b1 and b2 20 local
 * mailboxes each. `hosts` overrides what a host's ctl_mboxlist -d prints, whether cyrus-master
 * runs and whether the master's mailboxes.db exists.
 */
function murder(opts: {mode?: Inventory['mode']; dumps?: Record<string, string>; masterRunning?: boolean; masterDb?: boolean} = {}) {
  const dumps: Record<string, string> = {mupdate: fx('dump-mupdate.txt'), fe1: fx('dump-fe1.txt'), b1: fx('dump-b1.txt'), b2: fx('dump-b1r.txt'), ...opts.dumps}
  const shell = new FakeShell((host, command) => {
    if (command.startsWith('cat -- /etc/imapd.conf')) return {stdout: fx(`imapd.conf-${host === 'mupdate' ? 'mupdate' : host.startsWith('fe') ? 'fe1' : 'b1'}`)}
    if (command.includes('ctl_mboxlist -d')) return {stdout: dumps[host]}
    if (command.startsWith('test -e')) return {exitCode: opts.masterDb === false ? 1 : 0}
    // masterPid: prints the pid when cyrus-master lives.
    if (command.includes('kill -0')) return opts.masterRunning === false && host === 'mupdate' ? {exitCode: 1} : {stdout: '4242\n'}
    return {}
  })
  const ctx = fakeMurder(shell, mkdtempSync(join(tmpdir(), 'recover-')), opts.mode)
  return {ctx, shell}
}

const dumpsRead = (shell: FakeShell) => shell.sent.filter((c) => c.command.includes('ctl_mboxlist -d')).map((c) => c.host)

describe('recover-master --source', () => {
  it('takes an explicit source as given, without asking any host', async () => {
    const {ctx, shell} = murder()
    expect(await resolveSource(ctx, 'backends')).toEqual({source: 'backends'})
    expect(await resolveSource(ctx, 'backup=/srv/b/mupdate/1')).toEqual({source: 'backup', backupPath: '/srv/b/mupdate/1'})
    expect(await resolveSource(ctx, 'backup')).toEqual({source: 'backup', backupPath: undefined})
    expect(await resolveSource(ctx, 'frontend=fe1')).toEqual({source: 'frontend', frontend: 'fe1'})
    expect(shell.sent).toEqual([])
  })

  it('refuses a frontend on a unified murder, and a source it does not know (usage, exit 2)', async () => {
    const {ctx} = murder({mode: 'unified'})
    await expect(resolveSource(ctx, 'frontend')).rejects.toMatchObject({code: 'refused', message: expect.stringMatching(/no frontends/)})
    await expect(resolveSource(ctx, 'frontends')).rejects.toMatchObject({code: 'usage', exitCode: 2})
  })

  it('auto on a unified murder: the backends, the authority on their own mailboxes', async () => {
    const {ctx, shell} = murder({mode: 'unified', masterRunning: false})
    expect(await resolveSource(ctx, 'auto')).toEqual({source: 'backends'})
    expect(shell.sent).toEqual([])
  })

  it("auto with the master down: the frontend's list, which still holds every entry", async () => {
    const {ctx, shell} = murder({masterRunning: false})
    expect(await resolveSource(ctx, 'auto')).toEqual({source: 'frontend'})
    expect(dumpsRead(shell)).toEqual(['fe1'])
  })

  it('auto with the master running (restarted empty): the backends, never a frontend it is emptying', async () => {
    const {ctx, shell} = murder({masterRunning: true})
    expect(await resolveSource(ctx, 'auto')).toEqual({source: 'backends'})
    // The frontends are not even read: their lists are no source once the master runs.
    expect(dumpsRead(shell)).toEqual([])
  })

  it('auto with the master down but every frontend empty or unreachable: the backends', async () => {
    const empty = murder({masterRunning: false, dumps: {fe1: EMPTY_DUMP}})
    expect(await resolveSource(empty.ctx, 'auto')).toEqual({source: 'backends'})
    const down = murder({masterRunning: false})
    down.shell.down.add('fe1')
    expect(await resolveSource(down.ctx, 'auto')).toEqual({source: 'backends'})
  })
})

describe('masterLooksLost', () => {
  const t = (masterDropCritPercent: number) => ({masterDropCritPercent})
  it('a missing mailboxes.db is lost whatever the backends hold', () => {
    expect(masterLooksLost(null, 0, t(20))).toBe(true)
    expect(masterLooksLost(null, 40, t(100))).toBe(true)
  })
  it('lost once short of the union by more than masterDropCritPercent, not at the line', () => {
    expect(masterLooksLost(32, 40, t(20))).toBe(false) // exactly 20 % short
    expect(masterLooksLost(31, 40, t(20))).toBe(true)
    expect(masterLooksLost(0, 40, t(20))).toBe(true)
    expect(masterLooksLost(40, 40, t(20))).toBe(false)
    expect(masterLooksLost(45, 40, t(20))).toBe(false) // more than the backends: not lost
  })
  it('0 % counts any shortfall; 100 % only a missing db; an empty murder never', () => {
    expect(masterLooksLost(39, 40, t(0))).toBe(true)
    expect(masterLooksLost(40, 40, t(0))).toBe(false)
    expect(masterLooksLost(0, 40, t(100))).toBe(false)
    expect(masterLooksLost(0, 0, t(0))).toBe(false)
  })
})

describe('the lost-master preflight', () => {
  const step = Step.parse({id: 'preflight', title: 'preflight', hosts: 'none', action: 'preflight'})
  function rc(ctx: ReturnType<typeof murder>['ctx'], options: Record<string, unknown>, resumed = false): RunContext {
    const journal = new Journal(ctx.inv.stateDir, 'run-1')
    return newRunContext(ctx, journal, {resumed, options})
  }
  const refusal = async (p: Promise<unknown>) =>
    (await p.then(
      () => expect.fail('the preflight passed'),
      (e: MurderctlError) => e,
    )) as MurderctlError

  it('passes on a master holding nothing, and leaves the before-figures for verify', async () => {
    const {ctx} = murder({dumps: {mupdate: EMPTY_DUMP}})
    const r = rc(ctx, {source: 'backends'})
    expect(await lostMasterPreflight.run(r, step, {}, undefined)).toMatchObject({masterEntries: 0, unionOfBackendsLocal: 40, lost: true})
    expect(r.facts.get('before')).toEqual({masterEntries: 0, backendsLocal: {b1: 20, b2: 20}, unionLocal: 40} satisfies BeforeFigures)
  })

  it('never dumps a missing master db (ctl_mboxlist would create it): lost, with no entries', async () => {
    const {ctx, shell} = murder({masterDb: false})
    expect(await lostMasterPreflight.run(rc(ctx, {source: 'backends'}), step, {}, undefined)).toMatchObject({masterEntries: null, lost: true})
    expect(dumpsRead(shell).sort()).toEqual(['b1', 'b2'])
  })

  it('refuses a master that does not look lost, pointing at sync-backends; --force or a resumed run goes on', async () => {
    const {ctx} = murder()
    const e = await refusal(lostMasterPreflight.run(rc(ctx, {source: 'backends'}), step, {}, undefined))
    expect(e).toMatchObject({
      code: 'refused',
      host: 'mupdate',
      step: 'preflight',
      message: expect.stringMatching(/does not look lost: it holds 40 entries, the backends 40/),
    })
    expect(e.hint).toMatch(/sync-backends/)
    expect(e.hint).not.toMatch(/--resume/)
    expect(await lostMasterPreflight.run(rc(ctx, {source: 'backends', force: true}), step, {}, undefined)).toMatchObject({lost: false})
    expect(await lostMasterPreflight.run(rc(ctx, {source: 'backends'}, true), step, {}, undefined)).toMatchObject({lost: false})
  })

  it('refuses while a host does not answer, naming it with the --skip-host to use; a host key problem is exit 5', async () => {
    const down = murder({masterDb: false})
    down.shell.down.add('fe1')
    const e = await refusal(lostMasterPreflight.run(rc(down.ctx, {source: 'backends'}), step, {}, undefined))
    expect(e).toMatchObject({code: 'unreachable', host: 'fe1', step: 'preflight'})
    expect(e.hint).toMatch(/--skip-host fe1/)
    // Nothing else was asked of any host once one was down.
    expect(dumpsRead(down.shell)).toEqual([])

    const key = murder({masterDb: false})
    const exec = key.shell.exec.bind(key.shell)
    key.shell.exec = async (h, cmd, o) => {
      if (h.name === 'b2') throw new HostKeyError('the host key of b2 changed')
      return exec(h, cmd, o)
    }
    expect(await refusal(lostMasterPreflight.run(rc(key.ctx, {source: 'backends'}), step, {}, undefined))).toMatchObject({
      code: 'hostKey',
      exitCode: 5,
      host: 'b2',
    })
  })

  it('with --source backup: refuses without a verified backup of this murder, names the one it will use', async () => {
    const {ctx} = murder({masterDb: false})
    const none = await refusal(lostMasterPreflight.run(rc(ctx, {source: 'backup'}), step, {}, undefined))
    expect(none).toMatchObject({code: 'refused', host: 'mupdate', message: expect.stringMatching(/no verified backup of mupdate/)})

    const data = Buffer.from('a mailboxes.db')
    const write = (murderName: string, sha256 = createHash('sha256').update(data).digest('hex')) => {
      const dir = join(ctx.inv.stateDir, 'backups', 'test', 'mupdate', `2026-11-28T10-00-00-000Z-${murderName}`)
      mkdirSync(dir, {recursive: true})
      writeFileSync(join(dir, 'mailboxes.db'), data)
      const meta = {kind: 'murderctl-backup', version: 1, murder: murderName, host: 'mupdate', servername: 'mupdate', takenAt: '2026-11-28T10:00:00.000Z'}
      writeFileSync(
        join(dir, 'meta.json'),
        JSON.stringify({...meta, cyrusVersion: '3.6.1', format: 'twoskip', source: 'mupdate', entries: 40, bytes: data.length, sha256}),
      )
      return dir
    }
    const corrupt = write('test', '0'.repeat(64))
    await expect(lostMasterPreflight.run(rc(ctx, {source: 'backup', backupPath: corrupt}), step, {}, undefined)).rejects.toMatchObject({
      message: expect.stringMatching(/corrupt/),
    })
    const foreign = write('elsewhere')
    await expect(lostMasterPreflight.run(rc(ctx, {source: 'backup', backupPath: foreign}), step, {}, undefined)).rejects.toMatchObject({
      message: expect.stringMatching(/of murder "elsewhere", not "test"/),
    })
    const good = write('test')
    expect(await lostMasterPreflight.run(rc(ctx, {source: 'backup', backupPath: good}), step, {}, undefined)).toMatchObject({backup: good, backupEntries: 40})
  })

  it('with --source frontend: the fullest frontend, and a refusal when none holds a list or the name is no frontend', async () => {
    const full = murder({masterRunning: false, masterDb: false})
    expect(await lostMasterPreflight.run(rc(full.ctx, {source: 'frontend'}), step, {}, undefined)).toMatchObject({frontend: 'fe1'})
    const empty = murder({masterDb: false, dumps: {fe1: EMPTY_DUMP}})
    await expect(lostMasterPreflight.run(rc(empty.ctx, {source: 'frontend'}), step, {}, undefined)).rejects.toMatchObject({
      code: 'refused',
      message: 'no frontend holds a mailbox list to copy',
    })
    await expect(lostMasterPreflight.run(rc(full.ctx, {source: 'frontend', frontend: 'b1'}), step, {}, undefined)).rejects.toMatchObject({
      message: '"b1" is not a frontend',
      hint: 'frontends: fe1',
    })
  })
})
