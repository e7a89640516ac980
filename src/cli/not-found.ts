// A mistyped command: say which one was meant, in a pipe as on a terminal (no prompt), exit 127.
import type {Hook} from '@oclif/core'

/** Edit distance, for "did you mean". */
export function distance(a: string, b: string): number {
  const row = Array.from({length: b.length + 1}, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = cur
    }
  }
  return row[b.length]
}

export function suggest(typed: string, commands: readonly string[]): string | undefined {
  const best = commands.map((c) => ({c, d: distance(typed, c)})).sort((x, y) => x.d - y.d)[0]
  return best && best.d <= Math.max(2, Math.floor(typed.length / 3)) ? best.c : undefined
}

const hook: Hook.CommandNotFound = async function (opts) {
  const shown = (id: string) => id.replaceAll(':', ' ')
  const ids = opts.config.commands.filter((c) => !c.hidden).map((c) => c.id)
  const hint = suggest(opts.id, ids)
  process.stderr.write(`murderctl: "${shown(opts.id)}" is not a murderctl command.${hint ? ` Did you mean "${shown(hint)}"?` : ''} See murderctl help.\n`)
  process.exit(127)
}

export default hook
