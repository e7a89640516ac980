import {Flags} from '@oclif/core'
import {BaseCommand} from '../../src/cli/base-command.js'
import {labDown} from '../../src/lab/lab.js'

export default class LabDown extends BaseCommand {
  static summary = 'Stop every process of a lab; nothing is left running or mounted.'
  static examples = ['<%= config.bin %> lab down --dir /tmp/lab', '<%= config.bin %> lab down --dir /tmp/lab --purge']

  static flags = {
    dir: Flags.string({summary: "The lab's folder.", required: true}),
    purge: Flags.boolean({summary: 'Also delete the folder.', default: false}),
  }

  async run() {
    const {flags} = await this.parse(LabDown)
    const result = await labDown({dir: flags.dir, purge: flags.purge})
    this.log(result.stopped.length ? `stopped ${result.stopped.join(', ')}` : 'no lab was running there')
    return result
  }
}
