import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../src/cli/base-command.js'
import {breakLab, DISASTERS, type Disaster} from '../../src/lab/disasters.js'

export default class LabBreak extends BaseCommand {
  static summary = 'Make a disaster on purpose in a lab, to rehearse the recovery (lab only).'
  static description = `Disasters:\n${Object.entries(DISASTERS)
    .map(([k, v]) => `- ${k}: ${v}`)
    .join('\n')}`

  static examples = ['<%= config.bin %> lab break lost-master --dir /tmp/lab', '<%= config.bin %> lab break diverge --dir /tmp/lab']
  static args = {disaster: Args.string({required: true, options: Object.keys(DISASTERS), description: 'what to break'})}
  static flags = {dir: Flags.string({summary: "The lab's folder.", required: true})}

  async run() {
    const {args, flags} = await this.parse(LabBreak)
    const what = await breakLab(flags.dir, args.disaster as Disaster)
    this.log(`broken: ${what}`)
    return {disaster: args.disaster, what}
  }
}
