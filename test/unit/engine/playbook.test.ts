import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {ACTIONS} from '../../../src/engine/actions/index.js'
import {builtinPlaybook, listPlaybooks, loadPlaybook} from '../../../src/engine/playbook.js'
import {InventoryError} from '../../../src/errors.js'

describe('playbooks', () => {
  it('ships the failover runbooks: controlled drains and proves agreement before any switch; hard fences', () => {
    for (const kind of ['controlled', 'hard'] as const) {
      const p = builtinPlaybook(`failover-${kind}`, {command: 'failover', selectors: ['old-master', 'new-master']})
      for (const s of p.steps) expect(ACTIONS[s.action as keyof typeof ACTIONS], s.id).toBeDefined()
      const at = (action: string) => p.steps.findIndex((s) => s.action === action)
      expect(at('pair-preflight')).toBe(0)
      expect(p.steps[at('diff-push')]!.confirm).toBe(true)
      expect(at('diff-push')).toBeLessThan(at('enable-push-at-start'))
      expect(at('switch-to-master')).toBeLessThan(at('move-address'))
      if (kind === 'controlled') {
        for (const before of ['drain-sync-log', 'prove-agree']) expect(at(before)).toBeLessThan(at('switch-to-replica'))
        expect(at('start-as-replica')).toBeLessThan(at('start-replication'))
      } else {
        expect(at('drain-sync-log')).toBe(-1)
        expect(at('start-replication')).toBe(-1)
        expect(at('record-cutoff')).toBeLessThan(at('switch-to-master'))
        expect(at('mark-fenced')).toBeGreaterThan(0)
      }
    }
    expect(() => builtinPlaybook('failover-controlled', {command: 'recover-master'})).toThrow(/failover/)
  })

  it('ships one playbook per murder mode and source, each valid and naming known actions', () => {
    expect(
      listPlaybooks()
        .filter((n) => n.startsWith('recover-master-'))
        .sort(),
    ).toEqual([
      'recover-master-standard-backends',
      'recover-master-standard-backup',
      'recover-master-standard-frontend',
      'recover-master-unified-backends',
      'recover-master-unified-backup',
    ])
    for (const [mode, source] of [
      ['standard', 'backends'],
      ['standard', 'backup'],
      ['standard', 'frontend'],
      ['unified', 'backends'],
      ['unified', 'backup'],
    ] as const) {
      const p = builtinPlaybook(`recover-master-${mode}-${source}`, {command: 'recover-master', mode, source})
      expect(p).toMatchObject({mode, source})
      for (const s of p.steps) expect(ACTIONS[s.action as keyof typeof ACTIONS], s.id).toBeDefined()
      // Every runbook starts with its preflight and the lock, and ends verified and unlocked.
      expect(p.steps.slice(0, 2).map((s) => s.action)).toEqual(['preflight', 'lock'])
      expect(p.steps.slice(-2).map((s) => s.action)).toEqual(['verify-murder', 'unlock'])
      // The push comes after a confirmed diff, with the master's and backends' dbs saved in between.
      const at = (pred: (s: (typeof p.steps)[number]) => boolean) => p.steps.findIndex(pred)
      const push = at((s) => s.action === 'push')
      const diff = at((s) => s.action === 'diff-push')
      expect(p.steps[diff].confirm).toBe(true)
      const saves = p.steps.flatMap((s, i) => (s.action === 'copy-aside-db' ? [[s.hosts, i] as const] : []))
      expect(saves.map(([h]) => h).sort()).toEqual(['backends', 'master'])
      for (const [, i] of saves) expect(diff < i && i < push).toBe(true)
    }
  })

  it('unified runbooks take the slaves down before the master changes and bring them back after the push', () => {
    for (const source of ['backends', 'backup'] as const) {
      const ids = builtinPlaybook(`recover-master-unified-${source}`).steps.map((s) => s.action)
      expect(ids.indexOf('disable-mupdate-slave')).toBeLessThan(ids.indexOf('stop-cyrus'))
      expect(ids.indexOf('enable-mupdate-slave')).toBeGreaterThan(ids.indexOf('push'))
      const push = builtinPlaybook(`recover-master-unified-${source}`).steps.find((s) => s.action === 'push')!
      expect(push.params.localOnly).toBe(true)
    }
  })

  it('only a rebuild into the master the run emptied skips the FIND per mailbox (-a), diff and push alike', () => {
    for (const mode of ['standard', 'unified'] as const)
      for (const source of ['backends', 'backup', ...(mode === 'standard' ? ['frontend'] : [])]) {
        const steps = builtinPlaybook(`recover-master-${mode}-${source}`).steps.filter((s) => s.action === 'diff-push' || s.action === 'push')
        expect(steps.length).toBe(2)
        for (const s of steps) expect(s.params.freshMaster ?? false, `${mode}-${source} ${s.id}`).toBe(source === 'backends')
      }
  })

  it('refuses an edited playbook with an unknown action or a duplicate step, naming the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pb-'))
    const text = readFileSync(join(import.meta.dirname, '../../../playbooks/recover-master-standard-backends.yaml'), 'utf8')
    writeFileSync(join(dir, 'a.yaml'), text.replace('action: push,', 'action: shove,'))
    expect(() => loadPlaybook(join(dir, 'a.yaml'))).toThrow(/steps\.\d+\.action/)
    writeFileSync(join(dir, 'b.yaml'), text.replace('id: unlock', 'id: lock'))
    expect(() => loadPlaybook(join(dir, 'b.yaml'))).toThrow(/duplicate step id "lock"/)
    expect(() => loadPlaybook(join(dir, 'missing.yaml'))).toThrow(InventoryError)
  })

  it("refuses a misspelt or foreign param instead of ignoring it (a lost localOnly would claim other backends' mailboxes)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'pb-'))
    const text = readFileSync(join(import.meta.dirname, '../../../playbooks/recover-master-unified-backends.yaml'), 'utf8')
    expect(text).toContain('params: {localOnly: true, freshMaster: true}')
    writeFileSync(join(dir, 'typo.yaml'), text.replace('params: {localOnly: true, freshMaster: true}', 'params: {localonly: true, freshMaster: true}'))
    expect(() => loadPlaybook(join(dir, 'typo.yaml'))).toThrow(/steps\.\d+\.params: .*"localonly".*takes: localOnly/)
    writeFileSync(join(dir, 'type.yaml'), text.replace('params: {localOnly: true, freshMaster: true}', 'params: {localOnly: "yes", freshMaster: true}'))
    expect(() => loadPlaybook(join(dir, 'type.yaml'))).toThrow(/steps\.\d+\.params\.localOnly/)
    writeFileSync(join(dir, 'lock.yaml'), text.replace('action: lock\n', 'action: lock\n    params: {force: true}\n'))
    expect(() => loadPlaybook(join(dir, 'lock.yaml'))).toThrow(/takes: nothing/)
    writeFileSync(join(dir, 'cond.yaml'), text.replace('post: slave-stopped', 'post: slave-stoped'))
    expect(() => loadPlaybook(join(dir, 'cond.yaml'))).toThrow(/steps\.\d+\.post: unknown condition "slave-stoped"/)
  })

  it('runs a playbook only for its command, murder mode, source and host selectors', () => {
    const path = join(import.meta.dirname, '../../../playbooks/recover-master-unified-backends.yaml')
    expect(() => loadPlaybook(path, {command: 'recover-master', mode: 'unified', source: 'backends'})).not.toThrow()
    expect(() => loadPlaybook(path, {command: 'recover-master', mode: 'standard', source: 'backends'})).toThrow(/for a unified murder/)
    expect(() => loadPlaybook(path, {command: 'recover-master', mode: 'unified', source: 'backup'})).toThrow(/written for source backends/)
    expect(() => loadPlaybook(path, {command: 'failover'})).toThrow(/is for murderctl recover-master/)
    const dir = mkdtempSync(join(tmpdir(), 'pb-'))
    writeFileSync(join(dir, 'sel.yaml'), readFileSync(path, 'utf8').replace('hosts: backends', 'hosts: new-master'))
    expect(() => loadPlaybook(join(dir, 'sel.yaml'), {command: 'recover-master'})).toThrow(/unknown host selector "new-master"/)
    expect(() => loadPlaybook(join(dir, 'sel.yaml'), {command: 'recover-master', selectors: ['new-master']})).not.toThrow()
  })
})
