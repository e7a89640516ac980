import {describe, expect, it} from 'vitest'
import {overlaps} from '../../../src/engine/actions/fresh-master.js'

describe('a push into an empty master: mailboxes live on two backends', () => {
  it('finds none when the backends hold different mailboxes', () => {
    expect(
      overlaps(
        new Map([
          ['b1', new Set(['user.a', 'user.a.Sent'])],
          ['b2', new Set(['user.b'])],
        ]),
      ),
    ).toEqual([])
  })

  it('names each mailbox held by more than one backend, with every backend holding it', () => {
    expect(
      overlaps(
        new Map([
          ['b1', new Set(['user.a', 'user.both', 'user.all'])],
          ['b2', new Set(['user.both', 'user.b', 'user.all'])],
          ['b3', new Set(['user.all'])],
        ]),
      ),
    ).toEqual([
      {mailbox: 'user.both', backends: ['b1', 'b2']},
      {mailbox: 'user.all', backends: ['b1', 'b2', 'b3']},
    ])
  })

  it('reports a name once, from the first backend holding it', () => {
    expect(
      overlaps(
        new Map([
          ['b1', new Set(['user.a'])],
          ['b2', new Set(['user.late'])],
          ['b3', new Set(['user.late', 'user.a'])],
        ]),
      ),
    ).toEqual([
      {mailbox: 'user.a', backends: ['b1', 'b3']},
      {mailbox: 'user.late', backends: ['b2', 'b3']},
    ])
  })

  it('finds none with a single backend', () => {
    expect(overlaps(new Map([['b1', new Set(['user.a'])]]))).toEqual([])
  })
})
