// Issue 10, findings 3, 5 and 7: the operator's local files survive a crash, stay private
// whatever the umask, run ids cannot leave the state folder, and backup pruning only touches
// what murderctl wrote.
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {AbortError, UsageError} from '../../../src/errors.js'
import {Journal, newRunId} from '../../../src/engine/journal.js'
import type {MurderContext} from '../../../src/host/context.js'
import {listBackups, pruneBackups, storeBackup} from '../../../src/store/backups.js'
import {appendLineSynced, ensurePrivateDir, stateDirProblem, writePrivateFile} from '../../../src/util/files.js'

const mode = (p: string) => statSync(p).mode & 0o777
let dir: string
let oldUmask: number

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'murderctl-local-'))
  // The most permissive umask an operator's shell could have.
  oldUmask = process.umask(0)
})
afterEach(() => {
  process.umask(oldUmask)
})

describe('private local files', () => {
  it('journal, kept files and folders are 0600 in 0700 whatever the umask', () => {
    const state = join(dir, 'state')
    const j = new Journal(state, newRunId('recover-master'))
    j.write({event: 'run-start'})
    const kept = j.keep('diff-x.json', '{"mailboxes": ["user.alice"]}')
    expect(mode(state)).toBe(0o700)
    expect(mode(join(state, 'runs'))).toBe(0o700)
    expect(mode(j.dir)).toBe(0o700)
    expect(mode(j.path)).toBe(0o600)
    expect(mode(kept)).toBe(0o600)
    expect(mode(writePrivateFile(join(dir, 'plan.json'), '{}'))).toBe(0o600)
    expect(readdirSync(j.dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })

  it('a backup is stored private', () => {
    const ctx = {inv: {stateDir: join(dir, 'st'), name: 'lab'}} as unknown as MurderContext
    const b = storeBackup(ctx, {data: Buffer.from('db'), meta: meta('2026-01-01T00:00:00.000Z')})
    expect(mode(b)).toBe(0o700)
    expect(mode(join(b, 'mailboxes.db'))).toBe(0o600)
    expect(mode(join(b, 'meta.json'))).toBe(0o600)
  })
})

describe('the journal after a crash', () => {
  it('reports and ignores a torn last line, and appends after it on a line of its own', () => {
    const j = new Journal(join(dir, 'state'), newRunId('recover-master'))
    j.write({event: 'run-start'})
    j.write({event: 'step-done', step: 'lock', host: 'mupdate'})
    writeFileSync(j.path, `${readFileSync(j.path, 'utf8')}{"at":"2026-`, {flag: 'w'})
    expect(j.events().map((e) => e.event)).toEqual(['run-start', 'step-done'])
    expect(j.tornLine).toBe('{"at":"2026-')
    j.write({event: 'note'})
    expect(j.events().map((e) => e.event)).toEqual(['run-start', 'step-done', 'note'])
  })

  it('refuses a journal damaged in the middle with a typed error, not a stack trace', () => {
    const j = new Journal(join(dir, 'state'), newRunId('recover-master'))
    j.write({event: 'run-start'})
    appendLineSynced(j.path, 'garbage')
    j.write({event: 'note'})
    expect(() => j.events()).toThrow(AbortError)
  })
})

describe('run ids', () => {
  it('a run id that is a path is refused, and resuming a missing run creates nothing', () => {
    const state = join(dir, 'state')
    for (const bad of ['../../x', '/etc', '20261122T103000Z-recover-master-ab12/../../x', '']) expect(() => Journal.open(state, bad), bad).toThrow(UsageError)
    expect(() => Journal.open(state, '20261122T103000Z-recover-master-ab12')).toThrow(UsageError)
    expect(existsSync(state)).toBe(false)
  })
})

describe('stateDir', () => {
  it('explains a stateDir under /proc, a file, or an unwritable folder', () => {
    expect(stateDirProblem('/proc/self/murderctl')).toMatch(/pseudo-filesystem/)
    writeFileSync(join(dir, 'file'), 'x')
    expect(stateDirProblem(join(dir, 'file'))).toMatch(/not a directory/)
    expect(stateDirProblem(join(dir, 'file', 'sub'))).toMatch(/not a directory/)
    expect(stateDirProblem(join(dir, 'new', 'deeper'))).toBeNull()
    expect(() => ensurePrivateDir('/proc/1/murderctl')).toThrow(AbortError)
  })
})

function meta(takenAt: string) {
  return {
    kind: 'murderctl-backup' as const,
    version: 1 as const,
    murder: 'lab',
    host: 'mupdate',
    servername: 'mupdate',
    takenAt,
    cyrusVersion: null,
    format: 'twoskip',
    source: '/var/lib/cyrus/mailboxes.db',
    entries: 0,
    bytes: 2,
    sha256: '0'.repeat(64),
  }
}

describe('backup --keep and --list', () => {
  it('prunes only folders murderctl wrote, by their meta time, never the newest; lists past stray files', () => {
    const ctx = {inv: {stateDir: join(dir, 'st'), name: 'lab'}} as unknown as MurderContext
    const older = storeBackup(ctx, {data: Buffer.from('db'), meta: meta('2026-01-01T00:00:00.000Z')})
    const newest = storeBackup(ctx, {data: Buffer.from('db'), meta: meta('2026-01-02T00:00:00.000Z')})
    const hostDir = join(dir, 'st', 'backups', 'lab', 'mupdate')
    // A stray folder that sorts after every timestamp, and a stray file.
    mkdirSync(join(hostDir, 'zzz-operator-notes'))
    writeFileSync(join(hostDir, 'README'), 'x')
    writeFileSync(join(dir, 'st', 'backups', 'lab', 'stray-file'), 'x')
    expect(pruneBackups(ctx, 'mupdate', 1)).toEqual([older])
    expect(existsSync(newest)).toBe(true)
    expect(existsSync(join(hostDir, 'zzz-operator-notes'))).toBe(true)
    expect(existsSync(join(hostDir, 'README'))).toBe(true)
    const list = listBackups(ctx)
    expect(list.filter((b) => b.dir === newest)).toHaveLength(1)
    expect(list.filter((b) => !b.verified).length).toBeGreaterThanOrEqual(2)
  })
})

describe('inventory inputs (finding 8)', async () => {
  const {parseInventory, inventoryFileProblems} = await import('../../../src/inventory/load.js')
  const {InventoryError} = await import('../../../src/errors.js')
  const inv = (hosts: string, extra = '') => `name: lab\nmode: standard\n${extra}hosts:\n${hosts}`
  const ok = '  - {name: mupdate, role: mupdate-master, address: 10.0.0.1}\n  - {name: b1, role: backend, address: 10.0.0.2}\n'

  it('refuses names equal but for case, a repeated address, a newline or a leading dash', () => {
    const bad = [
      ok + '  - {name: B1, role: backend, address: 10.0.0.3}\n',
      ok + '  - {name: b2, role: backend, address: 10.0.0.2}\n',
      ok + '  - {name: b2, role: backend, address: "-oProxyCommand=x"}\n',
      ok + '  - {name: b2, role: backend, address: "10.0.0.3\\nx"}\n',
      ok + '  - {name: b2, role: backend, address: 10.0.0.3, servername: "-b2"}\n',
    ]
    for (const b of bad) expect(() => parseInventory(inv(b), '/x.yaml'), b).toThrow(InventoryError)
    expect(parseInventory(inv(ok), '/x.yaml').hosts).toHaveLength(2)
  })

  it('names a missing identity file, a known_hosts that is a folder, and a stateDir under /proc or that is a file', () => {
    writeFileSync(join(dir, 'afile'), 'x')
    const i = parseInventory(
      inv(ok, `knownHosts: ${dir}\nstateDir: /proc/self/murderctl\ndefaults: {ssh: {identity: ${dir}/missing-key}}\n`),
      join(dir, 'm.yaml'),
    )
    const problems = inventoryFileProblems(i).join('\n')
    expect(problems).toMatch(/identity file .*missing-key does not exist/)
    expect(problems).toMatch(/knownHosts .* is not a file/)
    expect(problems).toMatch(/stateDir: .*pseudo-filesystem/)
    const j = parseInventory(inv(ok, `stateDir: ${dir}/afile\n`), join(dir, 'm.yaml'))
    expect(inventoryFileProblems(j).join('\n')).toMatch(/stateDir: .*not a directory/)
  })
})
