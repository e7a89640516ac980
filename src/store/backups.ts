// Backups of mailboxes.db kept on the operator's machine under the inventory's stateDir:
// stored with their meta, pruned, and read back only when their checksum proves them.
import {createHash} from 'node:crypto'
import {readdirSync, readFileSync, rmSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {RefusedError} from '../errors.js'
import type {MurderContext} from '../host/context.js'
import {BackupMeta, type Snapshot} from '../host/db.js'
import {ensurePrivateDir, writePrivateFile} from '../util/files.js'

export const backupRoot = (ctx: MurderContext) => join(ctx.inv.stateDir, 'backups', ctx.inv.name)

/** Store a snapshot as <stateDir>/backups/<murder>/<host>/<timestamp>/{mailboxes.db,meta.json}, private. */
export function storeBackup(ctx: MurderContext, snap: Snapshot): string {
  const dir = join(backupRoot(ctx), snap.meta.host, snap.meta.takenAt.replace(/[:.]/g, '-'))
  for (const d of [ctx.inv.stateDir, join(ctx.inv.stateDir, 'backups'), backupRoot(ctx), join(backupRoot(ctx), snap.meta.host), dir]) ensurePrivateDir(d)
  writePrivateFile(join(dir, 'mailboxes.db'), snap.data)
  // meta.json last: a folder without it was not finished and is never taken for a backup.
  writePrivateFile(join(dir, 'meta.json'), `${JSON.stringify(snap.meta, null, 2)}\n`)
  return dir
}

const isDir = (p: string) => {
  try {
    return statSync(p).isDirectory()
  } catch {
    return false
  }
}

/** A folder murderctl wrote: its meta.json parses. Its time is the meta's, not the folder's name. */
function readMeta(dir: string): BackupMeta | undefined {
  try {
    return BackupMeta.parse(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')))
  } catch {
    return undefined
  }
}

/** The backup folders of a host murderctl wrote, newest first by their meta's time. */
function ownBackups(hostDir: string): {dir: string; meta: BackupMeta}[] {
  if (!isDir(hostDir)) return []
  return readdirSync(hostDir)
    .map((d) => join(hostDir, d))
    .filter(isDir)
    .flatMap((dir) => {
      const meta = readMeta(dir)
      return meta ? [{dir, meta}] : []
    })
    .sort((a, b) => Date.parse(b.meta.takenAt) - Date.parse(a.meta.takenAt))
}

/**
 * Keep the newest `keep` backups of a host; returns the folders removed. Only folders murderctl
 * wrote count (valid meta.json), ordered by the time in their meta; the newest is never removed
 * and anything else in the folder is left alone.
 */
export function pruneBackups(ctx: MurderContext, host: string, keep: number): string[] {
  const gone = ownBackups(join(backupRoot(ctx), host))
    .slice(Math.max(1, keep))
    .map((b) => b.dir)
  for (const d of gone) rmSync(d, {recursive: true, force: true})
  return gone
}

export interface BackupListing {
  host: string
  dir: string
  takenAt: string | null
  entries: number | null
  verified: boolean
  error?: string
}

/** Every folder under the backups root, each verified; stray files and folders are listed, never fatal. */
export function listBackups(ctx: MurderContext): BackupListing[] {
  const root = backupRoot(ctx)
  if (!isDir(root)) return []
  return readdirSync(root)
    .filter((host) => isDir(join(root, host)))
    .flatMap((host) =>
      readdirSync(join(root, host)).map((d): BackupListing => {
        try {
          const b = readVerifiedBackup(join(root, host, d))
          return {host, dir: b.dir, takenAt: b.meta.takenAt, entries: b.meta.entries, verified: true}
        } catch (error) {
          return {host, dir: join(root, host, d), takenAt: null, entries: null, verified: false, error: (error as Error).message}
        }
      }),
    )
}

/** Read a backup folder (or its mailboxes.db) and prove its checksum; refuse anything off. */
export function readVerifiedBackup(path: string): {data: Buffer; meta: BackupMeta; dir: string} {
  const dir = path.endsWith('mailboxes.db') || path.endsWith('meta.json') ? join(path, '..') : path
  let meta: BackupMeta
  try {
    meta = BackupMeta.parse(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')))
  } catch (error) {
    throw new RefusedError(`${dir} is not a murderctl backup: ${(error as Error).message.split('\n')[0]}`, {
      step: 'verify backup',
      hint: 'name a folder made by murderctl backup',
    })
  }
  let data: Buffer
  try {
    data = readFileSync(join(dir, 'mailboxes.db'))
  } catch {
    throw new RefusedError(`${dir}/mailboxes.db is missing`, {step: 'verify backup'})
  }
  const sum = createHash('sha256').update(data).digest('hex')
  if (sum !== meta.sha256 || data.length !== meta.bytes)
    throw new RefusedError(`backup ${dir} is corrupt: sha256 ${sum} does not match the recorded ${meta.sha256}`, {
      step: 'verify backup',
      hint: 'use another backup (murderctl backup --list) or another --source',
    })
  return {data, meta, dir}
}

/** The newest backup of this host that verifies, if any. */
export function latestVerifiedBackup(ctx: MurderContext, host: string): ReturnType<typeof readVerifiedBackup> | undefined {
  for (const b of ownBackups(join(backupRoot(ctx), host))) {
    try {
      return readVerifiedBackup(b.dir)
    } catch {
      // a bad one is skipped, never used
    }
  }
  return undefined
}
