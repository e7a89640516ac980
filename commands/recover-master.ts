import {Flags} from '@oclif/core'
import {BaseCommand, inventoryFlag, mutatingFlags, sshFlags} from '../src/cli/base-command.js'
import {prose} from '../src/cli/prose.js'
import {RefusedError, UsageError} from '../src/errors.js'
import type {Inventory} from '../src/inventory/schema.js'
import {withMurder} from '../src/host/context.js'
import {breakRecoveryLock, recoverMaster, rollbackRecovery} from '../src/services/recover.js'
import {renderPushDiffs} from '../src/report/diff-view.js'
import {renderPlan} from '../src/report/plan-view.js'

/** The murder without the hosts the operator named as dead; the master cannot be skipped. */
function skipHosts(inv: Inventory, names: string[]): Inventory {
  for (const n of names) {
    const h = inv.hosts.find((x) => x.name === n)
    if (!h) throw new UsageError(`--skip-host ${n}: no such host in ${inv.path}`, {hint: `hosts: ${inv.hosts.map((x) => x.name).join(', ')}`})
    if (h.role === 'mupdate-master') throw new RefusedError(`${n} is the mupdate master: it is what is being recovered`, {hint: 'remove --skip-host ' + n})
  }
  const hosts = inv.hosts.filter((h) => !names.includes(h.name))
  if (!hosts.some((h) => h.role === 'backend')) throw new RefusedError('no backend left to recover from', {hint: 'skip fewer hosts'})
  return {...inv, hosts}
}

export default class RecoverMaster extends BaseCommand {
  static summary = 'The lost-mupdate-master runbook: restore or rebuild the master, push from every backend, verify.'
  static description = prose`Picks the playbook for the murder's mode and source (playbooks/recover-master-<mode>-<source>.yaml):
- unified: slaves off first, then the master rebuilt from the backends' LOCAL mailboxes (or a backup),
  each backend's push shown as a diff and confirmed, slaves back on, verified.
- standard: from a frontend's mailboxes.db (the "easy" path), a murderctl backup, or rebuilt from the
  backends (the "hard" path: frontends stopped and their lists moved aside).

Every file a step changes is copied or moved aside on its host first, with its checksum; the journal
says where. A run that stops says where, and --resume RUN finishes it without redoing done steps;
--rollback RUN undoes it instead: in reverse order, each done step's undo (start what it stopped,
unlock) and every mailboxes.db and Cyrus config it changed copied back from its journaled copy
(the file in place kept aside too), then verified.`

  static examples = [
    '<%= config.bin %> recover-master --dry-run',
    '<%= config.bin %> recover-master --source frontend=fe1',
    '<%= config.bin %> recover-master --source backup --yes --json',
    '<%= config.bin %> recover-master --resume 20261122T103000Z-recover-master-ab12',
    '<%= config.bin %> recover-master --rollback 20261122T103000Z-recover-master-ab12 --dry-run',
  ]

  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
    ...mutatingFlags,
    source: Flags.string({summary: 'auto, backends, frontend[=NAME] or backup[=DIR].', default: 'auto'}),
    playbook: Flags.string({summary: 'Run this playbook file instead of the shipped one.'}),
    resume: Flags.string({summary: 'Continue a run that stopped part-way (its id, shown when it stopped).', exclusive: ['source', 'playbook']}),
    rollback: Flags.string({
      summary: 'Undo a run that stopped part-way (its id): its steps reversed, its copies put back, verified.',
      exclusive: ['resume', 'source', 'playbook', 'force'],
    }),
    force: Flags.boolean({summary: 'Run even though the master does not look lost.', default: false}),
    tmpfs: Flags.boolean({
      summary: "Rebuild the master's list on a tmpfs, then install it on disk (--no-tmpfs: write it on disk all along).",
      default: true,
      allowNo: true,
    }),
    'skip-host': Flags.string({summary: 'Leave this (dead) frontend, backend or replica out of the run (repeatable).', multiple: true}),
    'break-lock': Flags.boolean({
      summary: "Show who holds the murder's lock and remove it once confirmed (never a live run's).",
      default: false,
      exclusive: ['resume', 'rollback', 'source', 'playbook', 'dry-run'],
    }),
  }

  async run() {
    const {flags} = await this.parse(RecoverMaster)
    const inv = skipHosts(this.inventory(flags.inventory), flags['skip-host'] ?? [])
    if (flags['break-lock'])
      return withMurder(inv, this.murderOptions(flags), async (ctx) => {
        const r = await breakRecoveryLock(ctx, (q) => this.confirm(q, {yes: flags.yes, what: 'breaking the lock'}))
        this.log(r.broken ? 'the lock was removed' : 'no lock is held')
        return r
      })
    if (flags.rollback) {
      const run = flags.rollback
      return this.rollback(inv, flags, (ctx, hooks) => rollbackRecovery(ctx, run, flags['dry-run'], hooks))
    }
    const result = await withMurder(inv, this.murderOptions(flags, {progress: true}), (ctx) =>
      recoverMaster(
        ctx,
        {source: flags.source, playbookFile: flags.playbook, resume: flags.resume, force: flags.force, tmpfs: flags.tmpfs, dryRun: flags['dry-run']},
        this.playbookHooks(flags, {
          show: (diffs, fullPath) => `${renderPushDiffs(diffs)}\nfull diff: ${fullPath}`,
          question: (_step, diffs) => `Run ctl_mboxlist -m on ${diffs.map((d) => d.backend).join(', ')} with these changes?`,
        }),
      ),
    )
    if (result.dryRun) this.log(`\n${renderPlan(result.plan)}`)
    this.log(`\n${result.dryRun ? 'dry run: nothing was changed' : 'recovery complete and verified'}; journal: ${result.journal}`)
    const onDisk = result.results.find((u) => u.step === 'master-db-to-memory' && u.data?.where === 'disk')?.data?.reason
    if (onDisk && !result.dryRun) this.log(`the master's list was rebuilt on its disk, not in memory: ${onDisk}`)
    const skipped = flags['skip-host'] ?? []
    if (skipped.length && !result.dryRun)
      this.log(`left out: ${skipped.join(', ')}; once back, run murderctl sync-backends (backends) or check their slaves (frontends)`)
    return result
  }
}
