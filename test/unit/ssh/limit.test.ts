// Bounded concurrency helpers used by the SSH pool (channel semaphore) and by every command.
import {describe, expect, it} from 'vitest'
import {Semaphore, mapLimit, mapLimitSettled} from '../../../src/util/limit.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('mapLimitSettled / mapLimit', () => {
  it('keeps input order, never runs more than the limit, and runs every item', async () => {
    let running = 0
    let peak = 0
    const items = Array.from({length: 25}, (_, i) => i)
    const out = await mapLimit(items, 4, async (i) => {
      running++
      peak = Math.max(peak, running)
      await sleep(((i * 7) % 5) * 3)
      running--
      return i * 10
    })
    expect(out).toEqual(items.map((i) => i * 10))
    expect(peak).toBe(4)
  })

  it('lets the other items finish when one fails, and reports each outcome', async () => {
    const done: number[] = []
    const settled = await mapLimitSettled([1, 2, 3, 4, 5], 2, async (i) => {
      await sleep(5)
      if (i === 2) throw new Error('two failed')
      done.push(i)
      return i
    })
    expect(done.sort()).toEqual([1, 3, 4, 5])
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'])
    expect(settled[1]).toMatchObject({status: 'rejected', reason: new Error('two failed')})
    expect(settled[4]).toEqual({status: 'fulfilled', value: 5})
  })

  it('mapLimit throws the first error in input order, but only after everything settled', async () => {
    const finished: number[] = []
    const p = mapLimit([0, 1, 2, 3], 4, async (i) => {
      await sleep(i === 3 ? 40 : 5)
      finished.push(i)
      if (i === 1 || i === 2) throw new Error(`item ${i}`)
      return i
    })
    await expect(p).rejects.toThrow('item 1')
    expect(finished.sort()).toEqual([0, 1, 2, 3])
  })

  it('handles no items, a limit above the item count, and refuses a silly limit', async () => {
    expect(await mapLimit([], 3, async () => 1)).toEqual([])
    expect(await mapLimit([1, 2], 50, async (x) => x + 1)).toEqual([2, 3])
    await expect(mapLimit([1], 0, async (x) => x)).rejects.toThrow(RangeError)
    await expect(mapLimitSettled([1], Number.NaN, async (x) => x)).rejects.toThrow(RangeError)
  })
})

describe('Semaphore', () => {
  it('hands a released slot to the first waiter, so a newcomer cannot overtake it', async () => {
    const s = new Semaphore(1)
    const order: string[] = []
    const first = await s.acquire()
    const waiter = s.acquire().then((rel) => (order.push('waiter'), rel))
    first()
    // Asked for after the release, while the waiter has not run yet.
    const late = s.acquire().then((rel) => (order.push('late'), rel))
    expect(s.inUse).toBe(1)
    ;(await waiter)()
    ;(await late)()
    expect(order).toEqual(['waiter', 'late'])
    expect(s.inUse).toBe(0)
  })

  it('never admits more than n, and a double release does not free two slots', async () => {
    const s = new Semaphore(2)
    let running = 0
    let peak = 0
    await Promise.all(
      Array.from({length: 10}, async (_, i) => {
        const release = await s.acquire()
        running++
        peak = Math.max(peak, running)
        await sleep(i % 3)
        running--
        release()
        release()
      }),
    )
    expect(peak).toBe(2)
    expect(s.inUse).toBe(0)
  })
})
