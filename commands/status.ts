import {Flags} from '@oclif/core'
import {BaseCommand, inventoryFlag, sshFlags} from '../src/cli/base-command.js'
import {prose} from '../src/cli/prose.js'
import {withMurder} from '../src/host/context.js'
import {exitCodeOf, type ExitCodeName} from '../src/errors.js'
import {type HostStatus, murderStatus} from '../src/services/status.js'
import {table} from '../src/report/table.js'
import {renderDot, renderMermaid, topology} from '../src/report/topology.js'

export default class Status extends BaseCommand {
  static summary = 'Show every host of the murder: reachable, role, MUPDATE state, counts, replication.'
  static description = prose`Read-only. Hosts are read in parallel over SSH; the MUPDATE banner is read over TCP.
An unreachable host is reported with the reason, not fatal.`

  static examples = [
    '<%= config.bin %> status -i murder.yaml',
    '<%= config.bin %> status --json',
    '<%= config.bin %> status --no-counts',
    '<%= config.bin %> status --format mermaid > murder.mmd',
    '<%= config.bin %> status --format dot | dot -Tsvg > murder.svg',
  ]

  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
    format: Flags.string({summary: 'table, or the murder as a diagram: mermaid or dot (Graphviz).', options: ['table', 'mermaid', 'dot'], default: 'table'}),
    counts: Flags.boolean({summary: 'Count mailboxes (ctl_mboxlist -d on every host).', default: true, allowNo: true}),
  }

  async run() {
    const {flags} = await this.parse(Status)
    const inv = this.inventory(flags.inventory)
    const status = await withMurder(inv, this.murderOptions(flags), (ctx) => murderStatus(ctx, {counts: flags.counts}))
    if (flags.format !== 'table') {
      const t = topology(status, inv)
      if (!this.jsonEnabled()) process.stdout.write(flags.format === 'dot' ? renderDot(t) : renderMermaid(t))
      return status
    }
    this.log(`${status.mode} murder "${status.murder}", ${status.hosts.length} hosts, read in ${(status.durationMs / 1000).toFixed(1)}s\n`)
    this.log(
      table(
        ['host', 'role', 'ssh', 'cyrus', 'version', 'mupdate', 'banner', 'slave link', 'mailboxes (local/remote)', 'replication'],
        status.hosts.map((h) => [
          h.name,
          h.role,
          h.reachable ? 'ok' : 'DOWN',
          h.reachable ? (h.cyrusMaster.running ? `up ${h.cyrusMaster.pid}` : 'STOPPED') : null,
          h.version,
          mupdateCell(h),
          h.mupdate.banner,
          h.mupdate.slaveConnected === null ? null : h.mupdate.slaveConnected ? 'connected' : 'DISCONNECTED',
          h.mailboxes ? `${h.mailboxes.total} (${h.mailboxes.local}/${h.mailboxes.remote})` : null,
          replicationCell(h),
        ]),
      ),
    )
    const notes = status.hosts.flatMap((h) => [...(h.error ? [h.error] : []), ...h.notes.map((n) => `host ${h.name}: ${n}`)])
    if (status.lock)
      notes.push(
        `the murder's run lock is held: ${status.lock.owner ?? `run ${status.lock.run}`}${status.lock.ageSeconds === null ? '' : `, for ${status.lock.ageSeconds} s`}`,
      )
    if (notes.length) this.log(`\n${notes.map((n) => `! ${n}`).join('\n')}`)
    // A host that cannot be read is a failure, with the code every command gives it.
    const down = status.hosts.filter((h) => !h.reachable).map((h) => ({code: (h.errorCode ?? 'unreachable') as ExitCodeName}))
    if (down.length) process.exitCode = exitCodeOf(down)
    return status
  }
}

function mupdateCell(h: HostStatus): string | null {
  if (!h.reachable) return null
  if (!h.mupdate.service) return h.mupdatePush ? 'push at start' : 'none'
  return `${h.mupdate.service}${h.mupdate.enabled ? '' : ' (disabled)'}`
}

function replicationCell(h: HostStatus): string | null {
  if (!h.reachable) return null
  // A pair member is master or replica by its config, whichever the inventory calls it.
  if (h.pairConfig === 'replica') return 'replica'
  if (!h.replication.syncLog && h.replication.rollingClient === 'none') return h.pairConfig === 'mixed' ? 'MIXED config' : 'none'
  return `to ${h.replication.syncHost ?? '?'}, client ${h.replication.rollingClient}${h.pairConfig === 'mixed' ? ' (MIXED config)' : ''}`
}
