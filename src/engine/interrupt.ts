// Ctrl-C (or SIGTERM) in the middle of a run. A remote ctl_mboxlist goes on after murderctl dies
// (the host's timeout wrapper ends it only at its deadline), so stopping at once would leave a
// step half-known. The first signal lets the step in flight finish on its hosts and stops the run
// before the next one, resumable; a second stops at once, saying what may still be running.

export interface InterruptWatch {
  /** True once a first signal came. */
  readonly requested: boolean
  /** Stop listening (the run is over). */
  dispose(): void
}

export function watchInterrupts(onFirst: (signal: NodeJS.Signals) => void, onSecond: (signal: NodeJS.Signals) => never): InterruptWatch {
  let requested = false
  const handler = (signal: NodeJS.Signals) => {
    if (requested) onSecond(signal)
    requested = true
    onFirst(signal)
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
  return {
    get requested() {
      return requested
    },
    dispose() {
      process.off('SIGINT', handler)
      process.off('SIGTERM', handler)
    },
  }
}
