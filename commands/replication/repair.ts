import {Args, Flags} from '@oclif/core'
import {BaseCommand, inventoryFlag, mutatingFlags, sshFlags} from '../../src/cli/base-command.js'
import {prose} from '../../src/cli/prose.js'
import {withMurder} from '../../src/host/context.js'
import {renderConflicts} from '../../src/report/audit-view.js'
import {renderPlan} from '../../src/report/plan-view.js'
import {findPair} from '../../src/services/audit.js'
import {repairPair} from '../../src/services/repair.js'

export default class ReplicationRepair extends BaseCommand {
  static summary = 'Repair UID conflicts of a replication pair: re-append both versions to the master, expunge the conflicting UID on both, sync, verify.'
  static description = prose`The Fastmail procedure (info-cyrus 2009), for conflicts Cyrus did not resolve (an older server, a
stalled replication) or on request. Runs playbooks/replication-repair.yaml; for each UID that holds
different messages on the two members:
  1. inspect both messages (headers, size, SHA1 = GUID) from their spool files;
  2. copy both spool files aside on their hosts and into the run folder, checksummed and journaled;
  3. re-append both versions to the master over IMAP as the mailbox's owner (proxy authorization),
     with their flags (\\Seen kept) and internaldate, so each gets a new UID;
  4. once both GUIDs are verified on the master, expunge the conflicting UID on both members;
  5. sync_client -u for the owner;
  6. verify both GUIDs are on both members exactly once, same UID.

Refuses while the master's rolling sync_client runs (Cyrus 3.6 renumbers by itself then) unless --force.
Needs the inventory's imap settings (an admin in the backends' proxyservers, password in a file) and
IMAP on both members.`

  static examples = [
    '<%= config.bin %> replication repair b1 --dry-run',
    '<%= config.bin %> replication repair b1 --user alice --yes',
    '<%= config.bin %> replication repair b1 --resume 20261128T170000Z-replication-repair-ab12',
  ]

  static args = {pair: Args.string({description: 'A pair member (inventory name) or the servername of the pair.', required: true})}

  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
    ...mutatingFlags,
    user: Flags.string({summary: "Only this user's mailboxes (repeatable).", multiple: true}),
    mailbox: Flags.string({summary: 'Only mailboxes matching this IMAP pattern, internal form (repeatable).', multiple: true}),
    resume: Flags.string({summary: 'Continue a run that stopped part-way (its id, shown when it stopped).'}),
    force: Flags.boolean({summary: "Repair even though the master's rolling sync_client runs.", default: false}),
  }

  async run() {
    const {args, flags} = await this.parse(ReplicationRepair)
    const inv = this.inventory(flags.inventory)
    const pair = findPair(inv, args.pair)
    const result = await withMurder(inv, this.murderOptions(flags, {progress: true}), (ctx) =>
      repairPair(
        ctx,
        pair,
        {users: flags.user, mailboxes: flags.mailbox, dryRun: flags['dry-run'], resume: flags.resume, force: flags.force},
        this.playbookHooks(flags, {question: (step) => `Go on after step ${step.id}?`}),
      ),
    )
    this.log(renderConflicts(result))
    if (!result.conflicts.length) this.log('nothing to repair')
    else if (result.dryRun) this.log(`${renderPlan(result.plan)}\n\ndry run: nothing was changed; journal: ${result.journal}`)
    else {
      for (const v of result.verified)
        this.log(
          `verified ${v.mailbox} UID ${v.uid}: ${Object.entries(v.uids)
            .map(([g, u]) => `${g.slice(0, 12)} now UID ${u} on both`)
            .join(', ')}`,
        )
      this.log(`journal: ${result.journal}`)
    }
    return result
  }
}
