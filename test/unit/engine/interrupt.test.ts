import {afterEach, describe, expect, it} from 'vitest'
import {type InterruptWatch, watchInterrupts} from '../../../src/engine/interrupt.js'

describe('watchInterrupts', () => {
  let watch: InterruptWatch | undefined
  afterEach(() => watch?.dispose())

  it('takes the first signal as a request to stop after the step, the second as stop now', () => {
    const seen: string[] = []
    watch = watchInterrupts(
      (s) => seen.push(`first ${s}`),
      (s) => {
        seen.push(`second ${s}`)
        throw new Error('exit')
      },
    )
    expect(watch.requested).toBe(false)
    process.emit('SIGINT', 'SIGINT')
    expect(watch.requested).toBe(true)
    expect(() => process.emit('SIGTERM', 'SIGTERM')).toThrow('exit')
    expect(seen).toEqual(['first SIGINT', 'second SIGTERM'])
  })

  it('stops listening once disposed', () => {
    const before = process.listenerCount('SIGINT')
    watch = watchInterrupts(
      () => {},
      () => {
        throw new Error('exit')
      },
    )
    expect(process.listenerCount('SIGINT')).toBe(before + 1)
    watch.dispose()
    expect(process.listenerCount('SIGINT')).toBe(before)
  })
})
