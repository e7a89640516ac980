import {describe, expect, it} from 'vitest'
import {countSuffices, masterAgainstBackends, unionSize} from '../../../src/engine/actions/verify.js'

const remote = (name: string, server: string) => ({name, mbtype: 'er', server, partition: 'default'})

describe("verify: the master's dump against the backends' lists, streamed", () => {
  it('finds a master that holds exactly the union, each where it lives', () => {
    const cmp = masterAgainstBackends([
      {server: 'b1', names: new Set(['user.a', 'user.a.Sent'])},
      {server: 'b2', names: new Set(['user.b'])},
    ])
    for (const e of [remote('user.a', 'b1'), remote('user.a.Sent', 'b1'), remote('user.b', 'b2')]) cmp.add(e)
    expect(cmp.result()).toEqual({entries: 3, missing: 0, misplaced: 0, extra: 0, union: 3})
  })

  it('counts what is missing, misplaced and extra, a local entry as placed on its partition', () => {
    const cmp = masterAgainstBackends([
      {server: 'b1', names: new Set(['user.a', 'user.c', 'user.d'])},
      {server: 'b2', names: new Set(['user.b'])},
    ])
    for (const e of [remote('user.a', 'b2'), remote('user.b', 'b2'), remote('user.x', 'b1'), {name: 'user.c', mbtype: 'e', partition: 'default'}]) cmp.add(e)
    expect(cmp.result()).toEqual({entries: 4, missing: 1, misplaced: 2, extra: 1, union: 4})
  })

  it('expects a name two backends hold on the later one, and counts it once in the union', () => {
    const cmp = masterAgainstBackends([
      {server: 'b1', names: new Set(['user.a', 'user.both'])},
      {server: 'b2', names: new Set(['user.both'])},
    ])
    cmp.add(remote('user.a', 'b1'))
    cmp.add(remote('user.both', 'b1'))
    expect(cmp.result()).toEqual({entries: 2, missing: 0, misplaced: 1, extra: 0, union: 2})
  })
})

describe("verify: the master's count stands for its dump only where -m -w proves the rest", () => {
  const lists = [
    {server: 'b1', names: new Set(['user.a', 'user.both'])},
    {server: 'b2', names: new Set(['user.b', 'user.both'])},
  ]
  it('counts the union once per name', () => {
    expect(unionSize(lists)).toBe(3)
    expect(unionSize([])).toBe(0)
  })

  it('standard: every -m -w empty and the count equal to the union', () => {
    expect(countSuffices('standard', [0, 0], 3, 3)).toBe(true)
    // an entry for another server, or one short: the dump is read for the detail
    expect(countSuffices('standard', [0, 0], 4, 3)).toBe(false)
    expect(countSuffices('standard', [0, 0], 2, 3)).toBe(false)
    // a backend's -m -w not empty
    expect(countSuffices('standard', [0, 1], 3, 3)).toBe(false)
  })

  it('unified: only when every -m -w was taken with -a (plain -m -w prints nothing of a mailbox placed on the other backend)', () => {
    expect(countSuffices('unified', [0, 0], 3, 3)).toBe(false)
    expect(countSuffices('unified', [0, 0], 3, 3, true)).toBe(true)
    expect(countSuffices('unified', [0, 1], 3, 3, true)).toBe(false)
    expect(countSuffices('unified', [0, 0], 4, 3, true)).toBe(false)
  })
})
