// Murder facts decided in one place, so that recover-master and check never disagree.
import type {Thresholds} from '../inventory/schema.js'

/**
 * A master whose list holds far fewer entries than the backends' own mailboxes has lost it:
 * missing, or short by more than masterDropCritPercent of their union.
 */
export function masterLooksLost(masterEntries: number | null, unionOfBackendsLocal: number, thresholds: Pick<Thresholds, 'masterDropCritPercent'>): boolean {
  if (masterEntries === null) return true
  return unionOfBackendsLocal > 0 && masterEntries < unionOfBackendsLocal * (1 - thresholds.masterDropCritPercent / 100)
}
