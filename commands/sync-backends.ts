import {readFileSync} from 'node:fs'
import {Flags} from '@oclif/core'
import {BaseCommand, inventoryFlag, mutatingFlags, sshFlags} from '../src/cli/base-command.js'
import {prose} from '../src/cli/prose.js'
import {AbortError, exitCodeOf, type ExitCodeName, RefusedError, UsageError} from '../src/errors.js'
import {Journal, newRunId} from '../src/engine/journal.js'
import {withMurder} from '../src/host/context.js'
import {applySync, changeCount, freshPlanMatching, checkApplicable, planSync, selectBackends, SyncPlan} from '../src/services/sync.js'
import {renderOutcome, renderPlan} from '../src/report/sync-view.js'
import {writePrivateFile} from '../src/util/files.js'

export default class SyncBackends extends BaseCommand {
  static summary = 'After a master outage: diff every backend against the mupdate master, confirm, push, verify.'
  static description = prose`Runs ctl_mboxlist -m -w on each backend (in parallel) and murderctl's own conflict check
(a local mailbox the master places elsewhere, which -w does not print in a unified murder).
--dry-run stops after the diff. A real run copies every mailboxes.db it will change aside,
asks, runs ctl_mboxlist -m, and is done when -m -w prints nothing and the master and its
slaves agree. Local deletions are never applied without --local-authoritative or
--allow-local-deletes.`

  static examples = [
    '<%= config.bin %> sync-backends --dry-run',
    '<%= config.bin %> sync-backends --dry-run --out plan.json && <%= config.bin %> sync-backends --apply plan.json',
    '<%= config.bin %> sync-backends --backend b1 --yes --json',
  ]

  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
    ...mutatingFlags,
    backend: Flags.string({summary: 'Only this backend (repeatable).', multiple: true}),
    out: Flags.string({summary: 'Write the full plan (JSON) here.'}),
    apply: Flags.string({summary: 'Apply exactly this reviewed plan file; refused if a backend changed since.', exclusive: ['backend']}),
    'local-authoritative': Flags.boolean({summary: 'Push with ctl_mboxlist -m -a: local copies win, nothing local is deleted.', default: false}),
    'allow-local-deletes': Flags.boolean({
      summary: 'Let -m delete local mailboxes the master places elsewhere (delayed delete only).',
      default: false,
      exclusive: ['local-authoritative'],
    }),
    'skip-failed': Flags.boolean({summary: 'Apply on the backends that planned fine even if others failed.', default: false}),
  }

  async run() {
    const {flags} = await this.parse(SyncBackends)
    const inv = this.inventory(flags.inventory)
    return withMurder(inv, {concurrency: flags.concurrency, acceptNewHostKeys: flags['accept-new-host-keys']}, async (ctx) => {
      let plan: SyncPlan
      if (flags.apply) {
        this.progress(`checking that ${flags.apply} still describes the hosts`)
        plan = await freshPlanMatching(ctx, loadPlan(flags.apply, inv.name))
      } else {
        this.progress(
          `diffing ${selectBackends(ctx, flags.backend)
            .map((b) => b.name)
            .join(', ')} against master`,
        )
        plan = await planSync(ctx, selectBackends(ctx, flags.backend))
      }
      const journal = new Journal(inv.stateDir, newRunId('sync-backends'))
      const planText = `${JSON.stringify(plan, null, 2)}\n`
      const planPath = flags.out ? writePrivateFile(flags.out, planText) : journal.keep('plan.json', planText)
      this.log(renderPlan(plan, planPath))

      const changes = plan.backends.reduce((n, b) => n + changeCount(b) + b.conflicts.length, 0)
      const failed = plan.backends.filter((b) => !b.ok).length
      if (flags['dry-run']) {
        this.log(
          `\ndry run: nothing was changed. ${changes} changes on ${plan.backends.filter((b) => changeCount(b)).length} backends${failed ? `, ${failed} failed` : ''}.`,
        )
        if (failed) process.exitCode = exitCodeOf(plan.backends.filter((b) => !b.ok).map((b) => ({code: (b.error?.code ?? 'failed') as ExitCodeName})))
        return {dryRun: true, plan, planPath}
      }
      checkApplicable(plan, {
        localAuthoritative: flags['local-authoritative'],
        allowLocalDeletes: flags['allow-local-deletes'],
        skipFailed: flags['skip-failed'],
      })
      const unifiedConflicts = plan.backends.filter((b) => b.conflicts.length && !b.warn?.removeLocal.length)
      if (unifiedConflicts.length && !flags['local-authoritative'])
        throw new RefusedError(
          `${unifiedConflicts.map((b) => `${b.backend} has ${b.conflicts.length} local mailboxes the master places elsewhere`).join('; ')}: ctl_mboxlist -m would skip them silently`,
          {
            host: unifiedConflicts[0].backend,
            step: 'plan',
            hint: 'decide which server really holds each one; --local-authoritative makes the master point at this backend',
          },
        )
      if (changes === 0) {
        this.log('\nevery backend is in sync with the master: nothing to do.')
        return {dryRun: false, plan, planPath, result: null}
      }
      const ok = await this.confirm(
        `\nPush these changes to the mupdate master from ${plan.backends
          .filter((b) => changeCount(b))
          .map((b) => b.backend)
          .join(', ')}?`,
        {yes: flags.yes, what: 'sync-backends'},
      )
      if (!ok) throw new AbortError('cancelled: nothing was changed', {step: 'confirm'})
      journal.write({event: 'run-start', data: {command: 'sync-backends', plan: planPath}})
      // The consent, journaled as every command does (the report lists who agreed, and how).
      journal.write({event: 'note', step: 'confirm', data: {confirmed: true, by: flags.yes ? '--yes' : 'prompt'}})
      const result = await applySync(ctx, plan, {
        journal,
        localAuthoritative: flags['local-authoritative'],
        allowLocalDeletes: flags['allow-local-deletes'],
        skipFailed: flags['skip-failed'],
      })
      journal.write({event: 'run-end', data: {agreed: result.agreed}})
      this.log(`\n${renderOutcome(result)}\njournal: ${journal.path}`)
      if (!result.agreed || result.backends.some((b) => !b.verified)) process.exitCode = 1
      return {dryRun: false, plan, planPath, result, journal: journal.path}
    })
  }
}

function loadPlan(path: string, murder: string): SyncPlan {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new UsageError(`${path}: not a readable plan: ${(error as Error).message}`, {hint: 'make one with sync-backends --dry-run --out FILE'})
  }
  const parsed = SyncPlan.safeParse(raw)
  if (!parsed.success)
    throw new UsageError(`${path}: not a murderctl sync plan (${parsed.error.issues[0]?.message})`, {hint: 'make one with sync-backends --dry-run --out FILE'})
  if (parsed.data.murder !== murder) throw new RefusedError(`${path} is a plan for murder "${parsed.data.murder}", not "${murder}"`)
  return parsed.data
}
