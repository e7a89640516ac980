// Backups of mailboxes.db kept on the operator's machine under the inventory's stateDir:
// stored with their meta, pruned, and read back only when their checksum proves them.
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {RefusedError} from '../errors.js'
import type {MurderContext} from '../host/context.js'
import {BackupMeta, type Snapshot} from '../host/db.js'

export const backupRoot = (ctx: MurderContext) => join(ctx.inv.stateDir, 'backups', ctx.inv.name)

/** Store a snapshot as <stateDir>/backups/<murder>/<host>/<timestamp>/{mailboxes.db,meta.json}. */
export function storeBackup(ctx: MurderContext, snap: Snapshot): string {
  const dir = join(backupRoot(ctx), snap.meta.host, snap.meta.takenAt.replace(/[:.]/g, '-'))
  mkdirSync(dir, {recursive: true})
  writeFileSync(join(dir, 'mailboxes.db'), snap.data, {mode: 0o600})
  writeFileSync(join(dir, 'meta.json'), `${JSON.stringify(snap.meta, null, 2)}\n`)
  return dir
}

/** Keep the newest `keep` backups of a host; returns the folders removed. */
export function pruneBackups(ctx: MurderContext, host: string, keep: number): string[] {
  const hostDir = join(backupRoot(ctx), host)
  if (!existsSync(hostDir)) return []
  const dirs = readdirSync(hostDir).sort().reverse()
  const gone = dirs.slice(keep).map((d) => join(hostDir, d))
  for (const d of gone) rmSync(d, {recursive: true, force: true})
  return gone
}

/** Read a backup folder (or its mailboxes.db) and prove its checksum; refuse anything off. */
export function readVerifiedBackup(path: string): {data: Buffer; meta: BackupMeta; dir: string} {
  const dir = path.endsWith('mailboxes.db') || path.endsWith('meta.json') ? join(path, '..') : path
  let meta: BackupMeta
  try {
    meta = BackupMeta.parse(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')))
  } catch (error) {
    throw new RefusedError(`${dir} is not a murderctl backup: ${(error as Error).message.split('\n')[0]}`, {step: 'verify backup', hint: 'name a folder made by murderctl backup'})
  }
  let data: Buffer
  try {
    data = readFileSync(join(dir, 'mailboxes.db'))
  } catch {
    throw new RefusedError(`${dir}/mailboxes.db is missing`, {step: 'verify backup'})
  }
  const sum = createHash('sha256').update(data).digest('hex')
  if (sum !== meta.sha256 || data.length !== meta.bytes)
    throw new RefusedError(`backup ${dir} is corrupt: sha256 ${sum} does not match the recorded ${meta.sha256}`, {step: 'verify backup', hint: 'use another backup (murderctl backup --list) or another --source'})
  return {data, meta, dir}
}

/** The newest backup of this host that verifies, if any. */
export function latestVerifiedBackup(ctx: MurderContext, host: string): ReturnType<typeof readVerifiedBackup> | undefined {
  const hostDir = join(backupRoot(ctx), host)
  if (!existsSync(hostDir)) return undefined
  for (const d of readdirSync(hostDir).sort().reverse()) {
    try {
      return readVerifiedBackup(join(hostDir, d))
    } catch {
      // a bad one is skipped, never used
    }
  }
  return undefined
}
