// Bounded concurrency over a list, results in input order.

export type Settled<R> = {status: 'fulfilled'; value: R} | {status: 'rejected'; reason: unknown}

/** Run fn over items, at most `limit` at once; every item runs even if another fails. */
export async function mapLimitSettled<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<Settled<R>[]> {
  const out: Settled<R>[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= items.length) return
      try {
        out[i] = {status: 'fulfilled', value: await fn(items[i], i)}
      } catch (error) {
        out[i] = {status: 'rejected', reason: error}
      }
    }
  }
  await Promise.all(Array.from({length: Math.max(1, Math.min(limit, items.length))}, worker))
  return out
}

/** Like mapLimitSettled, but throws the first error once every item has settled. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const settled = await mapLimitSettled(items, limit, fn)
  const failed = settled.find((s) => s.status === 'rejected')
  if (failed) throw (failed as {reason: unknown}).reason
  return settled.map((s) => (s as {value: R}).value)
}

/** A counting semaphore: at most n holders at once. */
export class Semaphore {
  private waiting: (() => void)[] = []
  private held = 0

  constructor(private readonly n: number) {}

  async acquire(): Promise<() => void> {
    if (this.held >= this.n) await new Promise<void>((r) => this.waiting.push(r))
    this.held++
    let released = false
    return () => {
      if (released) return
      released = true
      this.held--
      this.waiting.shift()?.()
    }
  }
}
