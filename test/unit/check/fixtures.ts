// Results as the real checks will produce them, shared by the formatter tests.
import type {CheckResult} from '../../../src/check/model.js'

export const okMaster: CheckResult = {
  name: 'mupdate-master',
  host: 'mm',
  state: 'OK',
  message: 'mm answers as the mupdate master',
  figures: {},
  durationMs: 120,
}

export const masterCount: CheckResult = {
  name: 'master-count',
  state: 'OK',
  message: 'master mm holds 40 mailboxes (last run: 40 at 2026-01-01T00:00:00.000Z)',
  figures: {master_mailboxes: 40},
  perf: {master_mailboxes: {min: 0}},
}

export const b1Diverged: CheckResult = {
  name: 'backend-consistency',
  host: 'b1',
  state: 'CRITICAL',
  message: 'b1 diverged from the master (3 changes); run `murderctl sync-backends --backend b1`',
  figures: {mw_changes: 3},
  perf: {mw_changes: {crit: 1, min: 0}},
  fix: 'murderctl sync-backends --backend b1',
  durationMs: 850,
}

export const b2Consistent: CheckResult = {
  name: 'backend-consistency',
  host: 'b2',
  state: 'OK',
  message: 'b2 agrees with the master',
  figures: {mw_changes: 0},
  perf: {mw_changes: {crit: 1, min: 0}},
}

export const replicationLag: CheckResult = {
  name: 'replication',
  host: 'b2',
  state: 'WARNING',
  message: 'b2 sync log holds 2 MB, oldest entry 400 s old; check that sync_client -r runs on b2',
  figures: {sync_log_bytes: 2_000_000, sync_log_age_seconds: 400},
  perf: {sync_log_bytes: {uom: 'B', warn: 1_000_000, crit: 50_000_000, min: 0}, sync_log_age_seconds: {uom: 's', warn: 300, crit: 1800, min: 0}},
}

export const cyrusUnknown: CheckResult = {
  name: 'cyrus-master',
  host: 'b3',
  state: 'UNKNOWN',
  message: 'b3 did not answer within 10 s; check ssh to b3',
  figures: {},
}
