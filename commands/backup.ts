import {Flags} from '@oclif/core'
import {BaseCommand, inventoryFlag, sshFlags} from '../src/cli/base-command.js'
import {prose} from '../src/cli/prose.js'
import {asMurderctlError, exitCodeOf} from '../src/errors.js'
import {master} from '../src/inventory/load.js'
import {snapshotDb} from '../src/host/db.js'
import {listBackups, pruneBackups, storeBackup} from '../src/store/backups.js'
import {withMurder} from '../src/host/context.js'
import {table} from '../src/report/table.js'
import {hostsProgress} from '../src/report/listr-progress.js'
import {mapLimitSettled, type Settled} from '../src/util/limit.js'

type BackupDone = Awaited<ReturnType<typeof snapshotDb>>['meta'] & {dir: string; pruned: string[]}

export default class Backup extends BaseCommand {
  static summary = "Take consistent copies of the master's mailboxes.db (or every host's) to this machine; for cron."
  static description = prose`cvt_cyrusdb copies the live database under Cyrus's own locking; the copy is counted by Cyrus,
fetched, and its sha256 checked on both ends. Kept in <stateDir>/backups/<murder>/<host>/<time>/
with meta.json (time, host, Cyrus version, entry count, sha256). recover-master --source backup
uses only a backup whose checksum and count verify. Read-only on the hosts but for a temporary
file beside the database, removed at once.`

  static examples = ['<%= config.bin %> backup', '<%= config.bin %> backup --all-hosts --keep 48 --json', '<%= config.bin %> backup --list']

  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
    'all-hosts': Flags.boolean({summary: 'Every host with a mailboxes.db, not only the master.', default: false}),
    keep: Flags.integer({summary: 'Keep this many backups per host (older ones are removed).', min: 1}),
    list: Flags.boolean({summary: 'List the backups kept and whether each verifies.', default: false}),
  }

  async run() {
    const {flags} = await this.parse(Backup)
    const inv = this.inventory(flags.inventory)
    return withMurder(inv, this.murderOptions(flags), async (ctx) => {
      if (flags.list) {
        const rows = listBackups(ctx)
        this.log(
          table(
            ['host', 'taken', 'entries', 'verifies', 'folder'],
            rows.map((r) => [r.host, r.takenAt, r.entries, r.verified ? 'yes' : 'NO', r.dir]),
          ),
        )
        return {backups: rows}
      }
      const hosts = flags['all-hosts'] ? inv.hosts : [master(inv)]
      let results: Settled<BackupDone>[] = []
      // Progress per host (listr2 on a terminal, plain lines otherwise), as a playbook step shows.
      await hostsProgress(
        `Back up the mailboxes.db of ${hosts.map((h) => h.name).join(', ')} (cvt_cyrusdb, fetched, sha256 checked on both ends)`,
        async () => {
          results = await mapLimitSettled(hosts, ctx.concurrency, async (h) => {
            const snap = await snapshotDb(ctx, h, `backup-${Date.now()}`)
            const dir = storeBackup(ctx, snap)
            const pruned = flags.keep ? pruneBackups(ctx, h.name, flags.keep) : []
            return {...snap.meta, dir, pruned}
          })
          return results.map((r, i) =>
            r.status === 'fulfilled'
              ? {step: 'backup', host: hosts[i].name, status: 'done', detail: `${r.value.entries} entries, ${r.value.bytes} bytes`}
              : {step: 'backup', host: hosts[i].name, status: 'failed', detail: asMurderctlError(r.reason).message},
          )
        },
        {terminal: process.stderr.isTTY && !this.jsonEnabled(), progress: (l) => this.progress(l)},
      )
      const backups = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
      const failures = results.flatMap((r, i) =>
        r.status === 'rejected' ? [{host: hosts[i].name, error: asMurderctlError(r.reason).oneLine(), code: asMurderctlError(r.reason).code}] : [],
      )
      this.log(
        table(
          ['host', 'entries', 'bytes', 'sha256', 'folder'],
          backups.map((b) => [b.host, b.entries, b.bytes, b.sha256.slice(0, 16), b.dir]),
        ),
      )
      for (const f of failures) process.stderr.write(`murderctl: ${f.error}\n`)
      if (failures.length) process.exitCode = exitCodeOf(failures)
      return {backups, failures}
    })
  }
}
