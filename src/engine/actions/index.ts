// Every action a playbook may name. A new action goes in a module of this folder named for what
// it works on, and is listed here.
import {startCyrus, stopCyrus} from './cyrus-master.js'
import {copyAsideDb, setAsideDb} from './db.js'
import {lock, unlock} from './lock.js'
import {masterDbOutOfMemory, masterDbToDisk, masterDbToMemory} from './memory-db.js'
import {installDbFromBackup, installDbFromFrontend, installMasterDb, lostMasterPreflight} from './master-rebuild.js'
import {diffPushAction, pushAction} from './push.js'
import {expungeConflicts, inspectConflicts, reappendConflicts, saveMessageFiles, syncOwners, verifyConflicts} from './replication.js'
import {syncReview, verifySyncAction} from './sync.js'
import {disableMupdateSlave, enableMupdateSlave} from './slave.js'
import {PAIR_ACTIONS} from './pair.js'
import type {Action} from './types.js'
import {verifyMurderAction} from './verify.js'

export const ACTIONS = {
  preflight: lostMasterPreflight,
  lock,
  unlock,
  'disable-mupdate-slave': disableMupdateSlave,
  'enable-mupdate-slave': enableMupdateSlave,
  'stop-cyrus': stopCyrus,
  'start-cyrus': startCyrus,
  'set-aside-db': setAsideDb,
  'copy-aside-db': copyAsideDb,
  'install-db-from-frontend': installDbFromFrontend,
  'install-db-from-backup': installDbFromBackup,
  'install-master-db': installMasterDb,
  'master-db-to-memory': masterDbToMemory,
  'master-db-to-disk': masterDbToDisk,
  'master-db-out-of-memory': masterDbOutOfMemory,
  'diff-push': diffPushAction,
  push: pushAction,
  'verify-murder': verifyMurderAction,
  // sync-backends (its diff and push are diff-push and push)
  'sync-review': syncReview,
  'verify-sync': verifySyncAction,
  // failover of a replication pair
  ...PAIR_ACTIONS,
  'inspect-conflicts': inspectConflicts,
  'save-message-files': saveMessageFiles,
  'reappend-conflicts': reappendConflicts,
  'expunge-conflicts': expungeConflicts,
  'sync-owners': syncOwners,
  'verify-conflicts': verifyConflicts,
} satisfies Record<string, Action<any>>

export type ActionName = keyof typeof ACTIONS
export type ActionRegistry = Readonly<Record<string, Action<any>>>
