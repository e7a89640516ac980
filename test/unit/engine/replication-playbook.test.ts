import {describe, expect, it} from 'vitest'
import {ACTIONS} from '../../../src/engine/actions/index.js'
import {builtinPlaybook} from '../../../src/engine/playbook.js'

describe('playbooks/replication-repair.yaml', () => {
  const p = builtinPlaybook('replication-repair', {command: 'replication-repair', selectors: ['pair-master', 'pair-replica', 'pair-members']})

  it('loads with the pair selectors and known actions', () => {
    for (const s of p.steps) expect(ACTIONS[s.action as keyof typeof ACTIONS], s.id).toBeDefined()
  })

  it('never deletes before both versions are saved and re-appended, and ends verified', () => {
    const at = (action: string) => p.steps.findIndex((s) => s.action === action)
    expect(at('inspect-conflicts')).toBe(0)
    expect(at('save-message-files')).toBeLessThan(at('reappend-conflicts'))
    expect(at('reappend-conflicts')).toBeLessThan(at('expunge-conflicts'))
    expect(at('expunge-conflicts')).toBeLessThan(at('sync-owners'))
    expect(p.steps.at(-1)!.action).toBe('verify-conflicts')
    expect(ACTIONS['verify-conflicts'].mutating).toBe(false)
    expect(['save-message-files', 'reappend-conflicts', 'expunge-conflicts', 'sync-owners'].every((a) => ACTIONS[a as keyof typeof ACTIONS].mutating)).toBe(
      true,
    )
  })

  it('is refused by another command', () => {
    expect(() => builtinPlaybook('replication-repair', {command: 'recover-master'})).toThrow()
  })
})
