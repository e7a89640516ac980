// One way to wait for something that settles: ask, and ask again until it is right or time is up.

/**
 * Calls `probe` until `done` accepts its answer or `timeoutMs` has passed (at least once, even
 * with 0); returns the last answer either way, for the caller to judge and report. The waits
 * between asks start short and double up to `intervalMs`: most things (a port opening, a slave
 * connecting) settle within a few tens of milliseconds, and a fixed 250 ms wait cost a step
 * that much each time.
 */
export async function poll<T>(
  probe: () => Promise<T>,
  done: (v: T) => boolean,
  opts: {timeoutMs: number; intervalMs?: number; firstIntervalMs?: number},
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs
  const most = opts.intervalMs ?? 250
  let wait = Math.min(opts.firstIntervalMs ?? 20, most)
  for (;;) {
    const v = await probe()
    if (done(v) || Date.now() >= deadline) return v
    await new Promise((r) => setTimeout(r, wait))
    wait = Math.min(wait * 2, most)
  }
}
