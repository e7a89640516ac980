import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {ACTIONS} from '../../../src/engine/actions.js'
import {builtinPlaybook, listPlaybooks, loadPlaybook} from '../../../src/engine/playbook.js'
import {InventoryError} from '../../../src/errors.js'

describe('playbooks', () => {
  it('ships one playbook per murder mode and source, each valid and naming known actions', () => {
    expect(listPlaybooks().sort()).toEqual([
      'recover-master-standard-backends',
      'recover-master-standard-backup',
      'recover-master-standard-frontend',
      'recover-master-unified-backends',
      'recover-master-unified-backup',
    ])
    for (const [mode, source] of [['standard', 'backends'], ['standard', 'backup'], ['standard', 'frontend'], ['unified', 'backends'], ['unified', 'backup']] as const) {
      const p = builtinPlaybook(mode, source)
      expect(p).toMatchObject({mode, source})
      for (const s of p.steps) expect(ACTIONS[s.action], s.id).toBeDefined()
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
      const ids = builtinPlaybook('unified', source).steps.map((s) => s.action)
      expect(ids.indexOf('disable-mupdate-slave')).toBeLessThan(ids.indexOf('stop-cyrus'))
      expect(ids.indexOf('enable-mupdate-slave')).toBeGreaterThan(ids.indexOf('push'))
      const push = builtinPlaybook('unified', source).steps.find((s) => s.action === 'push')!
      expect(push.params.localOnly).toBe(true)
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
})
