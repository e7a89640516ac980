// A host's mailbox names, read where its dump is made: COUNT_AWK with names=1 prints one short
// line per entry (N name: live local, R name: remote) instead of the entry's JSON, so a backend
// of 100,000 mailboxes sends ~3 MB rather than ~33 MB and nothing here parses JSON for it. Lines
// it cannot read with certainty come back whole (L) and go through the reference parser; the
// awk's own figures must then match the names it printed, or the read is refused (a line lost
// on the way would else go unnoticed).
import {UnexpectedOutputError} from '../errors.js'
import {excerpt} from './lines.js'
import {COUNT_FIGURES} from './mboxlist-count.js'
import {
  addToCounts,
  type DumpFormat,
  dumpLineError,
  type EntryCounts,
  isLiveLocal,
  isRemote,
  newEntryCounts,
  parseDumpLine,
  truncatedDumpError,
} from './mboxlist-dump.js'

export interface NamesReader {
  /** One line of the host's output (COUNT_AWK with names=1). */
  push(line: string): void
  /** The output ended: the dump's figures, checked against the names seen; throws if it stopped early. */
  end(): EntryCounts
  /** The producer's `EXIT n` line, when one passed (for the caller's check of ctl_mboxlist's status). */
  readonly exitLine: string
}

const HINT = 'run ctl_mboxlist -d on the host by hand and check it completes; the list needs awk (Debian mawk or gawk)'

/** Reads the names awk's output line by line: onName(name, remote) for every live local or remote entry. */
export function createNamesReader(onName: (name: string, remote: boolean) => void, host?: string): NamesReader {
  let format: DumpFormat | undefined
  let counts: EntryCounts | undefined
  let ended = false
  let exitLine = ''
  // Names printed by the awk, and figures of the lines it handed back.
  let local = 0
  let remote = 0
  const back = newEntryCounts()
  const fail = (line: string): never => {
    throw new UnexpectedOutputError(`the mailbox list on the host printed a line it should not: ${excerpt(line)}`, {host, hint: HINT})
  }
  return {
    push(line: string) {
      if (line === '') return
      const tab = line.indexOf('\t')
      const tag = tab === -1 ? line : line.slice(0, tab)
      if (ended) fail(line)
      if (tag === 'N' || tag === 'R') {
        const name = line.slice(tab + 1)
        if (tab === -1 || name === '') fail(line)
        if (tag === 'R') remote++
        else local++
        return onName(name, tag === 'R')
      }
      const [, a = '', b = ''] = line.split('\t', 3)
      const rest = () => line.slice(tag.length + a.length + 2)
      if (/^EXIT [0-9]+$/.test(line)) exitLine = line
      else if (tag === 'FORMAT' && (a === 'json' || a === 'legacy')) format = a
      else if (tag === 'L' && format) {
        const e = parseDumpLine(format, rest(), Number(a), host)
        addToCounts(back, e)
        if (isRemote(e) || isLiveLocal(e)) onName(e.name, isRemote(e))
      } else if (tag === 'BAD') throw dumpLineError(b, Number(a), rest().slice(b.length + 1), host)
      else if (tag === 'TRUNCATED') throw truncatedDumpError(Number(a), host)
      else if (tag === 'COUNTS') {
        const n = line.split('\t').slice(1).map(Number)
        if (n.length !== COUNT_FIGURES.length || !n.every(Number.isInteger)) fail(line)
        counts = Object.fromEntries(COUNT_FIGURES.map((k, i) => [k, n[i]!])) as EntryCounts
      } else if (tag === 'END' && counts) ended = true
      else fail(line)
    },
    end(): EntryCounts {
      if (!counts || !ended) throw new UnexpectedOutputError('the mailbox list on the host ended early (no figures)', {host, hint: HINT})
      // The awk counts only the lines it printed a name for (or skipped as a tombstone).
      if (counts.liveLocal !== local || counts.remote !== remote)
        throw new UnexpectedOutputError(
          `the mailbox list on the host does not add up: ${local} local and ${remote} remote names for ${counts.liveLocal} and ${counts.remote} entries`,
          {host, hint: HINT},
        )
      const sum = counts
      return Object.fromEntries(COUNT_FIGURES.map((k) => [k, sum[k] + back[k]])) as EntryCounts
    },
    get exitLine() {
      return exitLine
    },
  }
}
