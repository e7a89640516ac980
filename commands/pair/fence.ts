import {Args} from '@oclif/core'
import {BaseCommand, inventoryFlag, mutatingFlags, sshFlags} from '../../src/cli/base-command.js'
import {prose} from '../../src/cli/prose.js'
import {withMurder} from '../../src/host/context.js'
import {fenceMember} from '../../src/services/failover.js'

export default class PairFence extends BaseCommand {
  static summary = 'Rewrite a returning old master to the replica config without starting Cyrus (after failover --hard).'
  static description = prose`Stops its cyrus-master if it runs, copies imapd.conf and cyrus.conf aside, and writes the replica
config: out of the murder, no sync_log, no rolling client, no ctl_mboxlist -m at start. Cyrus is not
started, and nothing replicates towards it while it is marked FENCED (reconcile lifts the mark).`
  static examples = ['<%= config.bin %> pair fence b1 --dry-run', '<%= config.bin %> pair fence b1 --yes']
  static args = {member: Args.string({required: true, description: 'the member to fence (inventory name)'})}
  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
    ...mutatingFlags,
  }

  async run() {
    const {args, flags} = await this.parse(PairFence)
    const inv = this.inventory(flags.inventory)
    const result = await withMurder(inv, this.murderOptions(flags), (ctx) =>
      fenceMember(ctx, {
        member: args.member,
        dryRun: flags['dry-run'],
        progress: (l) => this.progress(l),
        confirm: (q) => this.confirm(q, {yes: flags.yes, what: 'pair fence'}),
      }),
    )
    for (const s of result.steps) this.log(`${s.status}: ${s.title}${s.detail ? `\n${s.detail}` : ''}`)
    this.log(`journal: ${result.journal}`)
    return result
  }
}
