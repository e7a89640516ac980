import {readFileSync, writeFileSync} from 'node:fs'
import {join, dirname} from 'node:path'
import {Args, Flags} from '@oclif/core'
import {BaseCommand, inventoryFlag, mutatingFlags, sshFlags} from '../src/cli/base-command.js'
import {prose} from '../src/cli/prose.js'
import {RefusedError} from '../src/errors.js'
import {withMurder} from '../src/host/context.js'
import {reconcileMarkdown, reconcileReport} from '../src/report/reconcile-report.js'
import {planText, reconcile, ReconcilePlan} from '../src/services/reconcile.js'

export default class Reconcile extends BaseCommand {
  static summary = 'After a hard failover: put every message only the old (FENCED) member holds onto the new master, then replicate over the old one.'
  static description = prose`PAIR is the pair's backend or servername. Reads the old member isolated (replica config, Cyrus
stopped or not in the murder): the mailboxes its unreplayed sync log names, and every mailbox whose
state differs from the hard failover's cutoff (--all: every mailbox). A message whose GUID the new
master lacks in the same mailbox is re-appended there over IMAP as its owner, with flags and
internaldate (a GUID already there is never appended twice). Mailboxes only on the old member are
created through the murder; messages of a mailbox deleted on the new master go into a recovery
folder under the user. Once every GUID is verified on the new master, the old member's differing
records are expunged (copied aside first), its FENCED mark lifted, sync_client -u run per affected
user and rolling replication started. Writes a Markdown and JSON report beside the journal.`

  static examples = [
    '<%= config.bin %> reconcile b1 --dry-run',
    '<%= config.bin %> reconcile b1 --out plan.json',
    '<%= config.bin %> reconcile b1 --apply plan.json --yes',
    '<%= config.bin %> reconcile b1 --resume 20261128T170000Z-reconcile-ab12',
  ]

  static args = {pair: Args.string({required: true, description: "the pair's backend (inventory name) or servername"})}

  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
    ...mutatingFlags,
    all: Flags.boolean({summary: 'Compare every mailbox of the old member, not only those its sync log names or that differ from the cutoff.', default: false}),
    'recovery-folder': Flags.string({summary: 'Folder under each user for messages of mailboxes deleted on the new master (default Recovered-<date>).'}),
    out: Flags.string({summary: 'Write the plan to this file for review; change nothing.'}),
    apply: Flags.string({summary: 'Apply a reviewed plan file exactly (refused if the hosts no longer give the same plan).'}),
    resume: Flags.string({summary: 'Continue a run that stopped part-way (its id).'}),
    'no-replicate': Flags.boolean({summary: 'Stop once the recovery is verified: the old member untouched and still FENCED.', default: false}),
    report: Flags.string({summary: 'Also write the Markdown report here (it is always kept in the run folder).'}),
  }

  async run() {
    const {args, flags} = await this.parse(Reconcile)
    const inv = this.inventory(flags.inventory)
    let apply: ReconcilePlan | undefined
    if (flags.apply) {
      try {
        apply = ReconcilePlan.parse(JSON.parse(readFileSync(flags.apply, 'utf8')))
      } catch (error) {
        throw new RefusedError(`${flags.apply} is not a reconcile plan: ${(error as Error).message.split('\n')[0]}`, {step: 'apply'})
      }
    }
    const dryRun = flags['dry-run'] || !!flags.out
    const result = await withMurder(inv, this.murderOptions(flags, {progress: true}), (ctx) =>
      reconcile(ctx, {
        pair: args.pair,
        all: flags.all,
        recoveryFolder: flags['recovery-folder'],
        dryRun,
        apply,
        resume: flags.resume,
        noReplicate: flags['no-replicate'],
        progress: (l) => this.progress(l),
        confirm: async (question, detail) => {
          if (detail && !this.jsonEnabled()) process.stderr.write(`\n${detail}\n\n`)
          return this.confirm(question, {yes: flags.yes, what: 'reconcile'})
        },
      }),
    )
    if (flags.out) writeFileSync(flags.out, `${JSON.stringify(result.plan, null, 1)}\n`)
    if (result.dryRun) {
      this.log(planText(result.plan))
      this.log(
        flags.out ? `plan written to ${flags.out}: review it, then murderctl reconcile ${args.pair} --apply ${flags.out}` : 'dry run: nothing was changed',
      )
      return {dryRun: true, plan: result.plan}
    }
    const report = reconcileReport(result)
    const md = reconcileMarkdown(report)
    if (result.journal.endsWith('.jsonl')) {
      writeFileSync(join(dirname(result.journal), 'report.md'), md)
      writeFileSync(join(dirname(result.journal), 'report.json'), `${JSON.stringify(report, null, 1)}\n`)
    }
    if (flags.report) writeFileSync(flags.report, md)
    if (!this.jsonEnabled()) this.log(md)
    this.log(`journal: ${result.journal}`)
    return {...result, report}
  }
}
