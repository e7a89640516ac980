// One way to wait for something that settles: ask, and ask again until it is right or time is up.

/**
 * Calls `probe` until `done` accepts its answer or `timeoutMs` has passed (at least once, even
 * with 0); returns the last answer either way, for the caller to judge and report.
 */
export async function poll<T>(probe: () => Promise<T>, done: (v: T) => boolean, opts: {timeoutMs: number; intervalMs?: number}): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs
  for (;;) {
    const v = await probe()
    if (done(v) || Date.now() >= deadline) return v
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250))
  }
}
