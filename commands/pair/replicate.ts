import {Args} from '@oclif/core'
import {BaseCommand, inventoryFlag, mutatingFlags, sshFlags} from '../../src/cli/base-command.js'
import {withMurder} from '../../src/host/context.js'
import {startReplication} from '../../src/services/failover.js'

export default class PairReplicate extends BaseCommand {
  static summary = "Start rolling replication from a pair's master towards its other member (refused while that one is FENCED)."
  static description =
    "Starts the other member as replica if its Cyrus is stopped (it must hold the replica config), then enables the master's rolling sync_client. For after a hard failover, once reconcile has lifted the FENCED mark."
  static examples = ['<%= config.bin %> pair replicate b1 --yes']
  static args = {pair: Args.string({required: true, description: "the pair's backend or servername"})}
  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
    ...mutatingFlags,
  }

  async run() {
    const {args, flags} = await this.parse(PairReplicate)
    const inv = this.inventory(flags.inventory)
    const result = await withMurder(inv, this.murderOptions(flags), (ctx) =>
      startReplication(ctx, {
        pair: args.pair,
        dryRun: flags['dry-run'],
        progress: (l) => this.progress(l),
        confirm: (q) => this.confirm(q, {yes: flags.yes, what: 'pair replicate'}),
      }),
    )
    for (const s of result.steps) this.log(`${s.status}: ${s.title}${s.detail ? `: ${s.detail}` : ''}`)
    this.log(`journal: ${result.journal}`)
    return result
  }
}
