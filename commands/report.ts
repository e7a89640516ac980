import {writeFileSync} from 'node:fs'
import {Args, Flags} from '@oclif/core'
import {BaseCommand, inventoryFlag, sshFlags} from '../src/cli/base-command.js'
import {prose} from '../src/cli/prose.js'
import {InventoryError} from '../src/errors.js'
import {withMurder} from '../src/host/context.js'
import {gatherRun, recentRuns, runIds} from '../src/services/report.js'
import {renderRunHtml} from '../src/report/run-html.js'
import {renderRunMarkdown} from '../src/report/run-markdown.js'
import {buildRunReport, formatDuration, runLine} from '../src/report/run-report.js'
import {table} from '../src/report/table.js'

export default class Report extends BaseCommand {
  static summary = 'The post-mortem of a run: what it did where, who consented, what it pushed, what it kept, how it ended.'
  static description = prose`Reads the run's journal (any mutating command's) and the diffs kept beside it, and checks over
SSH that every copy the run saved is still on its host with its checksum (--offline skips that).
Markdown (default), a self-contained HTML page (a timeline chart, no external assets), or JSON.
--list shows the recent runs, one per line, with their outcome.`

  static examples = [
    '<%= config.bin %> report --list',
    '<%= config.bin %> report 20261122T103000Z-recover-master-ab12',
    '<%= config.bin %> report --last --format html --out report.html',
    '<%= config.bin %> report 20261122T103000Z-recover-master-ab12 --offline --format md --out postmortem.md',
  ]

  static args = {run: Args.string({description: 'The run id (murderctl report --list shows them).'})}

  static flags = {
    inventory: inventoryFlag,
    ...sshFlags,
    list: Flags.boolean({summary: 'List the recent runs, one per line, with their outcome.', default: false, exclusive: ['last', 'format', 'out', 'offline']}),
    limit: Flags.integer({summary: 'How many runs --list shows.', default: 20, min: 1}),
    last: Flags.boolean({summary: 'Report on the newest run.', default: false}),
    format: Flags.string({summary: 'md, html or json.', options: ['md', 'html', 'json'], default: 'md'}),
    out: Flags.string({summary: 'Write the report to this file instead of standard output.'}),
    offline: Flags.boolean({summary: 'Do not check over SSH that the saved copies still exist.', default: false}),
  }

  async run() {
    const {args, flags} = await this.parse(Report)
    const inv = this.inventory(flags.inventory)
    if (flags.list) {
      const lines = recentRuns(inv.stateDir, flags.limit).map(runLine)
      if (!lines.length) this.log(`no runs in ${inv.stateDir}/runs`)
      else
        this.log(
          table(
            ['run', 'command', 'outcome', 'start', 'took'],
            lines.map((l) => [l.run, l.command, l.outcome, l.start, formatDuration(l.durationMs)]),
          ),
        )
      return lines
    }
    const run = flags.last ? runIds(inv.stateDir)[0] : args.run
    if (!run)
      throw new InventoryError(flags.last ? `no runs in ${inv.stateDir}/runs` : 'which run? give its id, or --last', {
        hint: 'murderctl report --list shows the runs',
      })
    const gathered = flags.offline ? await gatherRun(inv, run, undefined) : await withMurder(inv, this.murderOptions(flags), (ctx) => gatherRun(inv, run, ctx))
    const report = buildRunReport(gathered)
    if (!this.jsonEnabled()) {
      const text =
        flags.format === 'html' ? renderRunHtml(report) : flags.format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderRunMarkdown(report)
      if (flags.out) {
        writeFileSync(flags.out, text)
        this.progress(`report of ${run} (${report.outcome}) written to ${flags.out}`)
      } else process.stdout.write(text)
    }
    return report
  }
}
