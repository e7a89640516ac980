// Journals captured from real lab runs (test/fixtures/journals/<name>: journal.jsonl + diffs).
import {join, resolve} from 'node:path'
import {keptDiffs, readEvents, type GatheredRun} from '../../../src/services/report.js'

export const JOURNALS = resolve(import.meta.dirname, '../../fixtures/journals')
export const FIXTURES = [
  'recover-master-completed',
  'recover-master-stopped-at-diff',
  'recover-master-failed',
  'recover-master-interrupted',
  'sync-backends-completed',
  'failover-completed',
  'failover-stopped-after-start',
] as const

export function gathered(name: string, over: Partial<GatheredRun> = {}): GatheredRun {
  const dir = join(JOURNALS, name)
  const {events, unreadable} = readEvents(join(dir, 'journal.jsonl'))
  return {
    run: events[0]?.run ?? name,
    dir,
    inventory: {name: 'lab', mode: 'standard', path: '/tmp/murder-lab/inventory.yaml'},
    events,
    unreadableLines: unreadable,
    diffs: keptDiffs(dir, events),
    copies: [],
    checkedAt: '2026-11-28T17:00:00.000Z',
    offline: true,
    ...over,
  }
}
