import {Args, Flags} from '@oclif/core'
import {BaseCommand, inventoryFlag, sshFlags} from '../../src/cli/base-command.js'
import {prose} from '../../src/cli/prose.js'
import {AbortError, asMurderctlError} from '../../src/errors.js'
import {withMurder} from '../../src/host/context.js'
import {renderAudit} from '../../src/report/audit-view.js'
import {type AuditReport, auditExitCode, auditPairs, findPair, replicationPairs} from '../../src/services/audit.js'

export default class ReplicationAudit extends BaseCommand {
  static summary = 'Prove a backend and its replica hold the same mail: per-mailbox state, then per-message GUIDs and flags where it differs.'
  static description = prose`Read-only, never prompts. PAIR is either member's inventory name or the servername they share;
--all audits every pair. Which member is the master is read from the hosts (rolling sync_client,
sync_log, mupdate_server), not from the inventory, so it stays right after a failover.

The cheap pass compares UIDVALIDITY, last UID, HIGHESTMODSEQ, message count and Cyrus's own
SYNC_CRC of every mailbox, computed on the hosts; per-message GUID, flags and internaldate are
compared only where those differ (or everywhere with --deep). The members' syslog is read for
SYNCERROR guid mismatches, and each is judged against the mailbox now (renumbered by Cyrus, or
stalled). Exit codes as \`check\`: 0 in sync, 1 drift, 2 conflict or a member unreadable, 3 unknown.`

  static examples = [
    '<%= config.bin %> replication audit b1',
    '<%= config.bin %> replication audit --all --json',
    '<%= config.bin %> replication audit b1 --user alice --deep',
  ]

  static args = {pair: Args.string({description: 'A pair member (inventory name) or the servername of the pair.'})}

  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
    all: Flags.boolean({summary: 'Audit every replication pair.', default: false}),
    user: Flags.string({summary: "Only this user's mailboxes (repeatable).", multiple: true}),
    mailbox: Flags.string({summary: 'Only mailboxes matching this IMAP pattern, internal form (repeatable), e.g. "user.alice.*".', multiple: true}),
    deep: Flags.boolean({summary: 'Compare every mailbox message by message, not only those whose state differs.', default: false}),
    settle: Flags.integer({
      summary: 'Seconds to wait before looking again at mailboxes that differ (replication may be a moment behind).',
      default: 3,
      min: 0,
      max: 600,
    }),
    verbose: Flags.boolean({char: 'v', summary: 'List in-sync mailboxes too.', default: false}),
    logs: Flags.boolean({summary: "Read the members' syslog for SYNCERROR events.", default: true, allowNo: true}),
  }

  async run() {
    const {args, flags} = await this.parse(ReplicationAudit)
    if (!args.pair === !flags.all) throw new AbortError('name one pair, or --all', {hint: 'murderctl replication audit b1'}, 'usage')
    const inv = this.inventory(flags.inventory)
    const pairs = flags.all ? replicationPairs(inv) : [findPair(inv, args.pair!)]
    const report = await withMurder(inv, this.murderOptions(flags), (ctx) =>
      auditPairs(ctx, pairs, {
        selection: {users: flags.user ?? [], mailboxes: flags.mailbox ?? []},
        deep: flags.deep,
        settleSeconds: flags.settle,
        all: flags.verbose,
        logs: flags.logs,
      }),
    )
    if (!this.jsonEnabled()) process.stdout.write(renderAudit(report))
    process.exitCode = auditExitCode(report)
    return report
  }

  /** As `check`: whatever went wrong, the exit code is UNKNOWN (3), in the requested format. */
  protected override async catch(err: Error & {oclif?: {exit?: number}}): Promise<unknown> {
    if (err.constructor.name === 'ExitError' && err.oclif?.exit === 0) return super.catch(err)
    const e = asMurderctlError(err)
    if (this.jsonEnabled())
      this.logJson({version: 1, state: 'UNKNOWN', summary: e.oneLine(), pairs: [], error: e.toJSON()} satisfies Partial<AuditReport> & {error: unknown})
    else process.stderr.write(`murderctl: ${e.oneLine()}\n`)
    process.exitCode = 3
    return undefined
  }
}
