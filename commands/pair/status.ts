import {Args} from '@oclif/core'
import {BaseCommand, inventoryFlag, sshFlags} from '../../src/cli/base-command.js'
import {withMurder} from '../../src/host/context.js'
import {table} from '../../src/report/table.js'
import {pairStatus} from '../../src/services/pair.js'

export default class PairStatus extends BaseCommand {
  static summary = 'Show each replication pair: active member, configs, processes, sync log backlog, last error, FENCED, history.'
  static description = 'Read-only. The active member is read from the hosts (mupdate_server, sync_log, the rolling sync_client), never from the inventory.'
  static examples = ['<%= config.bin %> pair status', '<%= config.bin %> pair status b1 --json']
  static args = {pair: Args.string({required: false, description: "a pair's backend or servername (default: every pair)"})}
  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
  }

  async run() {
    const {args, flags} = await this.parse(PairStatus)
    const inv = this.inventory(flags.inventory)
    const pairs = await withMurder(inv, this.murderOptions(flags), (ctx) => pairStatus(ctx, args.pair))
    for (const p of pairs) {
      this.log(`pair ${p.pair} (servername ${p.servername}): active ${p.active ?? 'NONE'}${p.conflict ? `  !! ${p.conflict}` : ''}`)
      this.log(
        table(
          ['member', 'ssh', 'config', 'cyrus', 'rolling client', 'sync log backlog', 'sync_host', 'FENCED'],
          p.members.map((m) => [
            m.name,
            m.reachable ? 'ok' : 'DOWN',
            m.config,
            m.reachable ? (m.cyrusMaster.running ? `up ${m.cyrusMaster.pid}` : 'STOPPED') : null,
            m.rollingClient,
            m.backlog
              ? `${m.backlog.bytes} B, ${m.backlog.ageSeconds}s (${
                  m.backlog.files
                    .filter((f) => f.bytes > 0)
                    .map((f) => f.file)
                    .join(' ') || 'empty'
                })`
              : null,
            m.syncHost,
            m.fenced ? `since ${m.fenced.at}` : '',
          ]),
        ),
      )
      for (const m of p.members) if (m.lastReplicationError) this.log(`  last replication error on ${m.name}: ${m.lastReplicationError}`)
      for (const m of p.members) if (m.error) this.log(`  ! ${m.error}`)
      if (p.history.length) {
        this.log('  history:')
        for (const h of p.history.slice(-10))
          this.log(
            `    ${h.startedAt} ${h.kind} ${h.from} -> ${h.to}: ${h.outcome}${h.serviceGapMs !== null ? `, gap ${(h.serviceGapMs / 1000).toFixed(1)} s` : ''} (${h.run})`,
          )
      }
      this.log('')
    }
    return {pairs}
  }
}
