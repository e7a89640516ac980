// The one wait used for conditions that settle: asks until right or out of time, waiting short
// at first and longer later.
import {describe, expect, it} from 'vitest'
import {poll} from '../../../src/util/poll.js'

describe('poll', () => {
  it('asks again with waits that double from the first interval up to the longest', async () => {
    const at: number[] = []
    const start = Date.now()
    const v = await poll(
      async () => {
        at.push(Date.now() - start)
        return at.length
      },
      (n) => n === 6,
      {timeoutMs: 5000, intervalMs: 80, firstIntervalMs: 10},
    )
    expect(v).toBe(6)
    const gaps = at.slice(1).map((t, i) => t - at[i])
    // 10, 20, 40, 80, 80 (timers fire no earlier than asked; a loaded machine makes them later)
    ;[10, 20, 40, 80, 80].forEach((want, i) => expect(gaps[i]).toBeGreaterThanOrEqual(want - 2))
  })

  it('asks once with no time to wait, and returns the last answer when time runs out', async () => {
    let asked = 0
    expect(
      await poll(
        async () => ++asked,
        () => false,
        {timeoutMs: 0},
      ),
    ).toBe(1)
    const last = await poll(
      async () => ++asked,
      () => false,
      {timeoutMs: 60, intervalMs: 20},
    )
    expect(last).toBeGreaterThan(2)
  })
})
