import {Args, Flags} from '@oclif/core'
import {BaseCommand, inventoryFlag, mutatingFlags, sshFlags} from '../src/cli/base-command.js'
import {prose} from '../src/cli/prose.js'
import {withMurder} from '../src/host/context.js'
import {failover, rollbackFailover} from '../src/services/failover.js'
import {renderPushDiffs} from '../src/report/diff-view.js'
import {renderPlan} from '../src/report/plan-view.js'

export default class Failover extends BaseCommand {
  static summary = "Move a replication pair's master role to the other member (controlled), or promote the replica of a dead master (--hard)."
  static description = prose`PAIR is the pair's backend as named in the inventory, or its servername. Which member is master is
read from the hosts. Controlled: preflight (lag limit, same mailbox lists, anti-flapping), stop the
master, drain its sync log (sync_client -r -f), prove both members agree mailbox by mailbox, switch
both configs, move the service address, start the new master (ctl_mboxlist -m -w must be empty),
start the old one as replica with rolling replication towards it, verify through a frontend.

--hard: no drain, the cutoff recorded, the old master marked FENCED. Every config is copied aside
first; --resume RUN finishes a run that stopped. --rollback RUN undoes one that stopped before the
new master started (address back, configs back, both members as they ran); after that start, the
new master may have taken mail: finish the run, then fail back.`

  static examples = [
    '<%= config.bin %> failover b1 --dry-run',
    '<%= config.bin %> failover b1 --to b1r',
    '<%= config.bin %> failover b1 --hard --yes',
    '<%= config.bin %> failover b1 --resume 20261128T170000Z-failover-ab12',
    '<%= config.bin %> failover b1 --rollback 20261128T170000Z-failover-ab12 --dry-run',
  ]

  static args = {pair: Args.string({required: true, description: "the pair's backend (inventory name) or servername"})}

  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
    ...mutatingFlags,
    to: Flags.string({summary: 'The member expected to become master; refused if it already is.'}),
    hard: Flags.boolean({summary: 'The master is dead: promote the replica without drain, mark the old one FENCED.', default: false}),
    force: Flags.boolean({summary: 'Past the lag limit and the anti-flapping period.', default: false}),
    full: Flags.boolean({summary: 'Also run a full sync_client -A before the drain.', default: false}),
    resume: Flags.string({summary: 'Continue a run that stopped part-way (its id).', exclusive: ['to', 'hard', 'playbook']}),
    playbook: Flags.string({summary: 'Run this playbook file instead of the shipped one (failover-controlled.yaml / failover-hard.yaml).'}),
    rollback: Flags.string({
      summary: 'Undo a run that stopped before its new master started (its id): address, configs and services back, verified.',
      exclusive: ['resume', 'to', 'hard', 'force', 'full', 'playbook'],
    }),
  }

  async run() {
    const {args, flags} = await this.parse(Failover)
    const inv = this.inventory(flags.inventory)
    if (flags.rollback) {
      const run = flags.rollback
      return this.rollback(inv, flags, (ctx, hooks) => rollbackFailover(ctx, args.pair, run, flags['dry-run'], hooks))
    }
    const result = await withMurder(inv, this.murderOptions(flags, {progress: true}), (ctx) =>
      failover(
        ctx,
        {
          pair: args.pair,
          to: flags.to,
          hard: flags.hard,
          dryRun: flags['dry-run'],
          force: flags.force,
          full: flags.full,
          resume: flags.resume,
          playbookFile: flags.playbook,
        },
        this.playbookHooks(flags, {
          show: (diffs, fullPath) => `${renderPushDiffs(diffs)}\nfull diff: ${fullPath}`,
          question: (_step, diffs) =>
            diffs.some((d) => d.activate.length + d.removeFromMupdate.length + d.removeRemoteFlag.length + d.removeLocal.length > 0)
              ? `Run ctl_mboxlist -m on ${diffs.map((d) => d.backend).join(', ')} with these changes?`
              : `ctl_mboxlist -m -w on ${diffs.map((d) => d.backend).join(', ')} printed nothing. Go on?`,
        }),
      ),
    )
    if (result.dryRun) {
      this.log(`\n${renderPlan(result.plan)}`)
      this.log(`\ndry run of a ${result.kind} failover ${result.from} -> ${result.to}: nothing was changed`)
    } else {
      // What each step found or did, in its own words.
      for (const u of result.results) if (typeof u.data?.detail === 'string' && u.data.detail) this.log(`  ${u.step}: ${u.data.detail}`)
      this.log(
        `\n${result.kind} failover of ${result.pair} done: ${result.to} is master${result.serviceGapMs !== undefined ? `, service gap ${(result.serviceGapMs / 1000).toFixed(1)} s` : ''}`,
      )
      if (result.fenced)
        this.log(
          `${result.fenced} is FENCED; when it is reachable again: murderctl pair fence ${result.fenced}, then reconcile, then murderctl pair replicate ${result.pair}`,
        )
      if (result.cutoff) this.log(`cutoff: ${result.cutoff}`)
    }
    this.log(`journal: ${result.journal}`)
    return result
  }
}
