import {join} from 'node:path'
import {Flags} from '@oclif/core'
import {BaseCommand, inventoryFlag, sshFlags} from '../src/cli/base-command.js'
import {prose} from '../src/cli/prose.js'
import {exitCodeFor, type CheckReport} from '../src/check/model.js'
import {fitNagios, formatNagios, formatNagiosUnknown} from '../src/check/nagios.js'
import {formatPrometheus, formatPrometheusFailure, writeTextfileAtomic} from '../src/check/prometheus.js'
import {asMurderctlError, InventoryError} from '../src/errors.js'
import {loadInventory} from '../src/inventory/load.js'
import {stateDirProblem} from '../src/util/files.js'
import type {Inventory} from '../src/inventory/schema.js'
import {withMurder} from '../src/host/context.js'
import {CHECK_NAMES, type CheckName, runChecks} from '../src/services/health.js'

export default class Check extends BaseCommand {
  static summary = 'Health checks for cron and monitoring: Nagios/Icinga exit codes, JSON, Prometheus text.'
  static description = prose`Read-only, never prompts. Checks: ${CHECK_NAMES.join(', ')}.

Exit codes follow the Nagios plugin rules whatever the format: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
(bad arguments and internal errors are UNKNOWN). The whole run returns within --timeout.
JSON reports follow schemas/check-report.schema.json. With --prometheus-file the exposition is
written atomically for node_exporter's textfile collector.`

  static examples = [
    '<%= config.bin %> check',
    '<%= config.bin %> check --format json --only backend-consistency --only replication',
    '<%= config.bin %> check -t 20 -w 5 -c 20',
    '<%= config.bin %> check --quiet',
    '<%= config.bin %> check --format prometheus --prometheus-file /var/lib/prometheus/node-exporter/murder.prom',
  ]

  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
    format: Flags.string({summary: 'Output format.', options: ['nagios', 'json', 'prometheus'], default: 'nagios'}),
    only: Flags.string({summary: 'Run only this check (repeatable).', multiple: true, options: [...CHECK_NAMES]}),
    timeout: Flags.integer({char: 't', summary: 'Seconds the whole check may take; past them: UNKNOWN.', default: 30, min: 2, max: 3600}),
    warning: Flags.integer({
      char: 'w',
      summary: 'WARNING when the master count fell by more than this percent since the last run (inventory: thresholds.masterDropWarnPercent).',
      min: 0,
      max: 100,
    }),
    critical: Flags.integer({
      char: 'c',
      summary: 'CRITICAL when it fell by more than this percent (inventory: thresholds.masterDropCritPercent).',
      min: 0,
      max: 100,
    }),
    quiet: Flags.boolean({char: 'q', summary: 'Print nothing when every check is OK (cron mails only problems); the exit code still tells.', default: false}),
    'max-bytes': Flags.integer({summary: 'Cut Nagios output to this many bytes, summary first (NRPE passes 1 KiB); 0: no limit.', default: 1024, min: 0}),
    'prometheus-file': Flags.string({summary: 'Also write Prometheus text here, atomically (textfile collector).'}),
    'state-file': Flags.string({summary: 'Where the last master count is kept (default <stateDir>/check-state.json).'}),
  }

  private readonly startedAt = new Date()

  private format(): string {
    if (this.jsonEnabled()) return 'json'
    const i = this.argv.findIndex((a) => a === '--format' || a.startsWith('--format='))
    if (i < 0) return 'nagios'
    return this.argv[i].includes('=') ? this.argv[i].split('=')[1] : (this.argv[i + 1] ?? 'nagios')
  }

  async run() {
    const {flags} = await this.parse(Check)
    const loaded = this.inventory(flags.inventory)
    // A stateDir under /proc or that is a file: a clear UNKNOWN, not a hang or a stack trace.
    const problem = flags['state-file'] ? null : stateDirProblem(loaded.stateDir)
    if (problem) throw new InventoryError(`stateDir: ${problem}`)
    const thresholds = {
      ...loaded.thresholds,
      ...(flags.warning === undefined ? {} : {masterDropWarnPercent: flags.warning}),
      ...(flags.critical === undefined ? {} : {masterDropCritPercent: flags.critical}),
    }
    const inv = clampTimeouts({...loaded, thresholds}, flags.timeout)
    const report = await withMurder(inv, this.murderOptions(flags), (ctx) =>
      runChecks(ctx, {
        only: flags.only as CheckName[] | undefined,
        deadlineMs: flags.timeout * 1000 - 500,
        statePath: flags['state-file'] ?? join(inv.stateDir, 'check-state.json'),
      }),
    )
    if (flags['prometheus-file']) writeTextfileAtomic(flags['prometheus-file'], formatPrometheus(report, new Date()))
    if (!(flags.quiet && report.state === 'OK')) this.emit(report, flags.format, flags['max-bytes'])
    process.exitCode = exitCodeFor(report.state)
    return this.jsonEnabled() ? report : undefined
  }

  private emit(report: CheckReport, format: string, maxBytes: number) {
    if (this.jsonEnabled()) return
    if (format === 'json') process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
    else if (format === 'prometheus') process.stdout.write(formatPrometheus(report, new Date()))
    else process.stdout.write(fitNagios(formatNagios(report), maxBytes))
  }

  /** A flag's value straight from argv: for the failure path, where parsing itself may have failed. */
  private argvValue(long: string, short?: string): string | undefined {
    for (let i = 0; i < this.argv.length; i++) {
      const a = this.argv[i]
      if (a.startsWith(`--${long}=`)) return a.slice(long.length + 3)
      if (a === `--${long}` || (short && a === `-${short}`)) return this.argv[i + 1]
    }
    return undefined
  }

  /** Whatever went wrong, a monitoring system must read UNKNOWN (3), on stdout, in its format. */
  protected override async catch(err: Error & {oclif?: {exit?: number}}): Promise<unknown> {
    if (err.constructor.name === 'ExitError' && err.oclif?.exit === 0) return super.catch(err)
    const reason = asMurderctlError(err)
      .oneLine()
      .replace(/^.*?BugError: /, '')
    const format = this.format()
    const now = new Date()
    // The murder's real label when its inventory loads, so `murder_check_up == 0` alerts on it.
    let murder = 'unknown'
    try {
      murder = loadInventory(this.argvValue('inventory', 'i')).name
    } catch {}
    const file = this.argvValue('prometheus-file')
    if (file) {
      try {
        writeTextfileAtomic(file, formatPrometheusFailure(murder, now))
      } catch {}
    }
    if (format === 'json') {
      const unknown: CheckReport = {
        version: 1,
        murder,
        state: 'UNKNOWN',
        summary: reason,
        checks: [],
        startedAt: this.startedAt.toISOString(),
        durationMs: now.getTime() - this.startedAt.getTime(),
      }
      process.stdout.write(`${JSON.stringify(unknown)}\n`)
    } else if (format === 'prometheus') process.stdout.write(formatPrometheusFailure(murder, now))
    else process.stdout.write(formatNagiosUnknown(reason))
    process.exitCode = 3
    return undefined
  }
}

/** No single SSH command may outlive the check's own deadline. */
function clampTimeouts(inv: Inventory, seconds: number): Inventory {
  return {
    ...inv,
    hosts: inv.hosts.map((h) => ({
      ...h,
      ssh: {...h.ssh, commandTimeout: Math.min(h.ssh.commandTimeout, seconds * 0.6), connectTimeout: Math.min(h.ssh.connectTimeout, seconds * 0.3)},
    })),
  }
}
