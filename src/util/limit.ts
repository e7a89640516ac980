// Bounded concurrency: over a list (results in input order) and as a semaphore.

export type Settled<R> = {status: 'fulfilled'; value: R} | {status: 'rejected'; reason: unknown}

function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency limit must be a positive integer (got ${limit})`)
  return limit
}

/** Run fn over items, at most `limit` at once; every item runs even if another fails. */
export async function mapLimitSettled<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<Settled<R>[]> {
  checkLimit(limit)
  const out: Settled<R>[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= items.length) return
      try {
        out[i] = {status: 'fulfilled', value: await fn(items[i]!, i)}
      } catch (error) {
        out[i] = {status: 'rejected', reason: error}
      }
    }
  }
  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker))
  return out
}

/** Like mapLimitSettled, but throws the first error (in input order) once every item has settled. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const settled = await mapLimitSettled(items, limit, fn)
  const values: R[] = []
  for (const s of settled) {
    if (s.status === 'rejected') throw s.reason
    values.push(s.value)
  }
  return values
}

/** A counting semaphore: at most n holders at once, first come first served. */
export class Semaphore {
  private waiting: (() => void)[] = []
  private held = 0

  constructor(private readonly n: number) {
    checkLimit(n)
  }

  /** Resolves with a release function (calling it twice is harmless). */
  async acquire(): Promise<() => void> {
    if (this.held < this.n) this.held++
    // A released slot is handed straight to the next waiter, so nobody can overtake it.
    else await new Promise<void>((resolve) => this.waiting.push(resolve))
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.waiting.shift()
      if (next) next()
      else this.held--
    }
  }

  /** Holders right now (for tests and diagnostics). */
  get inUse(): number {
    return this.held
  }
}
