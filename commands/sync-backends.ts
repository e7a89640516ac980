import {Flags} from '@oclif/core'
import {BaseCommand, inventoryFlag, mutatingFlags, sshFlags} from '../src/cli/base-command.js'
import {prose} from '../src/cli/prose.js'
import {exitCodeOf, type ExitCodeName} from '../src/errors.js'
import {withMurder} from '../src/host/context.js'
import {changeCount, loadPlanFile, rollbackSync, syncBackends} from '../src/services/sync.js'
import {renderOutcome, renderPlan, renderSyncDiffs} from '../src/report/sync-view.js'
import {renderPlan as renderSteps} from '../src/report/plan-view.js'

export default class SyncBackends extends BaseCommand {
  static summary = 'After a master outage: diff every backend against the mupdate master, confirm, push, verify.'
  static description = prose`Runs playbooks/sync-backends.yaml: under the murder's lock, ctl_mboxlist -m -w on each backend
(in parallel) and murderctl's own conflict check (a local mailbox the master places elsewhere,
which -w does not print in a unified murder); the whole plan reviewed, shown and confirmed; every
mailboxes.db the push changes copied aside; ctl_mboxlist -m on each backend that differs, done
when -m -w prints nothing; the master and its slaves agreeing. --dry-run stops after the review.
Local deletions are never applied without --local-authoritative or --allow-local-deletes.
A run that stops after its first change says where; --resume RUN finishes it, --rollback RUN undoes it
instead: every mailboxes.db it copied aside put back (cyrus-master stopped meanwhile, the file in
place kept aside too), the lock given back, then verified.`

  static examples = [
    '<%= config.bin %> sync-backends --dry-run',
    '<%= config.bin %> sync-backends --dry-run --out plan.json && <%= config.bin %> sync-backends --apply plan.json',
    '<%= config.bin %> sync-backends --backend b1 --yes --json',
    '<%= config.bin %> sync-backends --resume 20261128T103000Z-sync-backends-ab12',
    '<%= config.bin %> sync-backends --rollback 20261128T103000Z-sync-backends-ab12 --dry-run',
  ]

  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
    ...mutatingFlags,
    backend: Flags.string({summary: 'Only this backend (repeatable).', multiple: true}),
    out: Flags.string({summary: 'Write the full plan (JSON) here.'}),
    apply: Flags.string({summary: 'Apply exactly this reviewed plan file; refused if a backend changed since.', exclusive: ['backend']}),
    resume: Flags.string({
      summary: 'Continue a run that stopped part-way (its id, shown when it stopped).',
      exclusive: ['backend', 'apply', 'local-authoritative', 'allow-local-deletes', 'skip-failed', 'dry-run'],
    }),
    rollback: Flags.string({
      summary: 'Undo a run that stopped part-way (its id): its copies put back, its lock released, verified.',
      exclusive: ['resume', 'backend', 'apply', 'out', 'local-authoritative', 'allow-local-deletes', 'skip-failed'],
    }),
    'local-authoritative': Flags.boolean({summary: 'Push with ctl_mboxlist -m -a: local copies win, nothing local is deleted.', default: false}),
    'allow-local-deletes': Flags.boolean({
      summary: 'Let -m delete local mailboxes the master places elsewhere (delayed delete only).',
      default: false,
      exclusive: ['local-authoritative'],
    }),
    'skip-failed': Flags.boolean({summary: 'Push from the backends that diffed fine even if others failed.', default: false}),
  }

  async run() {
    const {flags} = await this.parse(SyncBackends)
    const inv = this.inventory(flags.inventory)
    if (flags.rollback) {
      const run = flags.rollback
      return this.rollback(inv, flags, (ctx, hooks) => rollbackSync(ctx, run, flags['dry-run'], hooks))
    }
    const reviewed = flags.apply ? loadPlanFile(flags.apply, inv.name) : undefined
    const r = await withMurder(inv, this.murderOptions(flags, {progress: true}), (ctx) =>
      syncBackends(
        ctx,
        {
          backends: flags.backend,
          reviewed,
          localAuthoritative: flags['local-authoritative'],
          allowLocalDeletes: flags['allow-local-deletes'],
          skipFailed: flags['skip-failed'],
          dryRun: flags['dry-run'],
          resume: flags.resume,
          out: flags.out,
        },
        this.playbookHooks(flags, {
          show: (diffs, fullPath) => renderSyncDiffs(diffs, fullPath),
          question: (_step, diffs) =>
            `Run ctl_mboxlist -m on ${
              diffs
                .filter((d) => d.activate.length + d.removeFromMupdate.length + d.removeRemoteFlag.length + d.removeLocal.length + (d.conflicts?.length ?? 0))
                .map((d) => d.backend)
                .join(', ') || 'no backend (nothing differs)'
            }?`,
        }),
      ),
    )
    const plan = r.plan!
    if (r.dryRun) {
      const changes = plan.backends.reduce((n, b) => n + changeCount(b) + b.conflicts.length, 0)
      const failed = plan.backends.filter((b) => !b.ok)
      this.log(renderPlan(plan, r.planPath))
      this.log(`\n${renderSteps(r.steps)}`)
      if (r.wouldRefuse) this.log(`\na real run would refuse: ${r.wouldRefuse}`)
      this.log(
        `\ndry run: nothing was changed. ${changes} changes on ${plan.backends.filter((b) => changeCount(b) + b.conflicts.length).length} backends${failed.length ? `, ${failed.length} failed` : ''}.`,
      )
      if (failed.length) process.exitCode = exitCodeOf(failed.map((b) => ({code: (b.error?.code ?? 'failed') as ExitCodeName})))
      return r
    }
    const outcome = r.result!
    if (!outcome.backends.some((b) => b.applied)) this.log('every backend is in sync with the master: nothing was pushed.')
    this.log(`\n${renderOutcome(outcome)}\nplan: ${r.planPath}\njournal: ${r.journal}`)
    return r
  }
}
