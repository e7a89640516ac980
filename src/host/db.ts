// A host's mailboxes.db as a file: where it is, consistent copies of it (cvt_cyrusdb), and
// installing such a copy (or a frontend's) on a stopped master. A copy is only ever used after
// its checksum and its entry count, read back by Cyrus itself, match what was recorded.
import {z} from 'zod'
import {AbortError, RemoteCommandError} from '../errors.js'
import type {Host} from '../inventory/schema.js'
import {shellQuote} from '../ssh/quote.js'
import {sha256} from '../util/hash.js'
import type {MurderContext} from './context.js'
import {countEntriesOnHost, mailboxesDbPath} from './mboxlist.js'
import {cyrusVersion, fileSha256, readImapdConf, tool} from './remote.js'

export const BackupMeta = z.object({
  kind: z.literal('murderctl-backup'),
  version: z.literal(1),
  murder: z.string(),
  host: z.string(),
  servername: z.string(),
  takenAt: z.string(),
  cyrusVersion: z.string().nullable(),
  /** The database backend (imapd.conf mboxlist_db), e.g. twoskip. */
  format: z.string(),
  source: z.string(),
  entries: z.number().int().min(0),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
})
export type BackupMeta = z.infer<typeof BackupMeta>

export interface DbInfo {
  path: string
  format: string
  configDirectory: string
}

export async function dbInfo(ctx: MurderContext, host: Host): Promise<DbInfo> {
  const imapd = await readImapdConf(ctx, host)
  return {
    path: mailboxesDbPath(imapd),
    format: imapd.get('mboxlist_db') ?? 'twoskip',
    configDirectory: (imapd.get('configdirectory') ?? '/var/lib/cyrus').replace(/\/+$/, ''),
  }
}

/** sha256 of the host's mailboxes.db (where its imapd.conf puts it), or null when there is none; a failed checksum throws. */
export async function dbSha256(ctx: MurderContext, host: Host, step?: string): Promise<string | null> {
  return fileSha256(ctx, host, (await dbInfo(ctx, host)).path, step)
}

async function remoteSha256(ctx: MurderContext, host: Host, path: string, step: string): Promise<string> {
  const sum = await fileSha256(ctx, host, path, step)
  if (sum === null)
    throw new RemoteCommandError(`cannot checksum ${path}`, {command: `sha256sum -- ${path}`, exitCode: 1, stderr: 'no such file'}, {host: host.name, step})
  return sum
}

/** Entries in a mailboxes.db file, as Cyrus reads it (`ctl_mboxlist -d -f FILE`). */
export async function countDbFile(ctx: MurderContext, host: Host, file: string, step: string): Promise<number> {
  return (await countEntriesOnHost(ctx, host, step, file)).total
}

export interface Snapshot {
  data: Buffer
  meta: BackupMeta
}

/**
 * A consistent copy of a live host's mailboxes.db: cvt_cyrusdb reads it under Cyrus's own
 * locking (the host keeps serving), the copy is counted by Cyrus, fetched, checksummed on both
 * ends, and the remote copy removed.
 */
export async function snapshotDb(ctx: MurderContext, host: Host, tag: string, step = 'snapshot'): Promise<Snapshot> {
  const snap = await startSnapshot(ctx, host, tag, step)
  return {data: snap.data, meta: {...snap.meta, entries: await snap.entries}}
}

/** A snapshot whose bytes are here (checksummed) while Cyrus still counts its entries on the host. */
export interface StartedSnapshot {
  data: Buffer
  meta: Omit<BackupMeta, 'entries'>
  /** Cyrus's count of the copy (`ctl_mboxlist -d -f`); the remote copy is removed once it is known. */
  entries: Promise<number>
}

/**
 * snapshotDb without waiting for the count: the copy is fetched while Cyrus counts it, so a
 * caller can upload it (and have it counted where it goes) meanwhile, and compare the counts last.
 */
export async function startSnapshot(ctx: MurderContext, host: Host, tag: string, step = 'snapshot'): Promise<StartedSnapshot> {
  const db = await dbInfo(ctx, host)
  const tmp = `${db.configDirectory}/murderctl-snapshot-${tag}.db`
  const q = shellQuote(tmp)
  const remove = () => ctx.pool.exec(host, ['rm', '-f', '--', tmp]).catch(() => {})
  let entries: Promise<number> | undefined
  try {
    const r = await ctx.pool.exec(host, {
      shell: `rm -f -- ${q} && ${shellQuote(tool(host, 'cvt_cyrusdb'))} ${shellQuote(db.path)} ${shellQuote(db.format)} ${q} ${shellQuote(db.format)} && test -s ${q}`,
    })
    // cvt_cyrusdb says "Conversion failed" and still exits 0: check the output and the file.
    if (r.exitCode !== 0 || /DBERROR|failed/i.test(r.stdout + r.stderr))
      throw new RemoteCommandError(
        `cvt_cyrusdb could not copy ${db.path}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`,
        {command: r.command, exitCode: r.exitCode, stderr: r.stderr},
        {host: host.name, step},
      )
    entries = countDbFile(ctx, host, tmp, step)
    const [remoteSum, data, version] = await Promise.all([remoteSha256(ctx, host, tmp, step), ctx.pool.readFile(host, tmp), cyrusVersion(ctx, host)])
    const sum = sha256(data)
    if (sum !== remoteSum)
      throw new AbortError(`the copy of ${db.path} changed in transit (sha256 ${sum} here, ${remoteSum} there)`, {host: host.name, step, hint: 'run it again'})
    const counted = entries.finally(remove)
    // Judged by the caller; a count nobody waits for is no unhandled rejection.
    counted.catch(() => {})
    return {
      data,
      entries: counted,
      meta: {
        kind: 'murderctl-backup',
        version: 1,
        murder: ctx.inv.name,
        host: host.name,
        servername: host.servername,
        takenAt: new Date().toISOString(),
        cyrusVersion: version,
        format: db.format,
        source: db.path,
        bytes: data.length,
        sha256: sum,
      },
    }
  } catch (error) {
    await entries?.catch(() => {})
    await remove()
    throw error
  }
}

/**
 * Install a mailboxes.db on a host whose cyrus-master is stopped and whose db was set aside:
 * upload beside it, prove checksum and count with Cyrus, then move it into place. `countedBy`:
 * the source's Cyrus version and db format; when this host has the same ones, the sha256 proves
 * the upload is the very file the source's Cyrus reads (and counted, when `entries` is given),
 * and it is not counted again.
 */
export async function installDb(
  ctx: MurderContext,
  host: Host,
  data: Buffer,
  expect: {entries: number | Promise<number> | null; sha256: string; countedBy?: {cyrusVersion: string | null; format: string}},
  tag: string,
  step: string,
): Promise<{path: string; entries: number | null; countedHere: boolean}> {
  const db = await dbInfo(ctx, host)
  const incoming = `${db.path}.murderctl-incoming-${tag}`
  const by = expect.countedBy
  const [, version] = await Promise.all([
    ctx.pool.writeFileAtomic(host, incoming, data, 0o600),
    by && by.format === db.format && by.cyrusVersion ? cyrusVersion(ctx, host) : null,
  ])
  const sum = await remoteSha256(ctx, host, incoming, step)
  if (sum !== expect.sha256)
    throw new AbortError(`the uploaded database does not match (sha256 ${sum}, expected ${expect.sha256})`, {host: host.name, step, hint: 'run the step again'})
  await ctx.pool.execOk(host, ['chown', '--', `${host.cyrus.user}:${host.cyrus.group}`, incoming])
  const countedHere = !(version && version === by?.cyrusVersion)
  const entries = countedHere ? await countDbFile(ctx, host, incoming, step) : await expect.entries
  // null: the bytes were not counted where they come from (a list proven by sha256 only), nothing to compare with.
  const want = await expect.entries
  if (want !== null && entries !== want)
    throw new AbortError(`the uploaded database reads as ${entries} entries, expected ${want}`, {
      host: host.name,
      step,
      hint: 'the copy is not usable; choose another --source',
    })
  const q = shellQuote(db.path)
  // Only into an empty place (the old db was moved aside by an earlier step): mv -n, the folder
  // fsync'd, then the file in place must be the one uploaded.
  const r = await ctx.pool.exec(host, {
    shell: `test ! -e ${q} || exit 4; mv -n -- ${shellQuote(incoming)} ${q} && test ! -e ${shellQuote(incoming)} && sync -- ${shellQuote(db.path.replace(/\/[^/]*$/, '') || '/')} && sha256sum -- ${q}`,
  })
  if (r.exitCode === 4)
    throw new AbortError(`${db.path} is in place already: it was not moved aside`, {
      host: host.name,
      step,
      hint: "move it aside (the playbook's set-aside step) first; nothing was replaced",
    })
  if (r.exitCode !== 0 || r.stdout.split(/\s+/)[0] !== expect.sha256)
    throw new RemoteCommandError(
      `could not move the uploaded database into ${db.path}`,
      {command: r.command, exitCode: r.exitCode, stderr: r.stderr},
      {host: host.name, step},
    )
  return {path: db.path, entries, countedHere}
}
