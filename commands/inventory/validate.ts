import {Flags} from '@oclif/core'
import {BaseCommand, inventoryFlag} from '../../src/cli/base-command.js'
import {InventoryError} from '../../src/errors.js'
import {inventoryFileProblems} from '../../src/inventory/load.js'

export default class InventoryValidate extends BaseCommand {
  static summary =
    'Check an inventory file: schema, roles, replica pairs, unique names and addresses, and the files it names (identity, known_hosts, stateDir).'
  static examples = ['<%= config.bin %> inventory validate -i murder.yaml']
  static flags = {
    inventory: inventoryFlag,
    'schema-only': Flags.boolean({summary: 'Check only the file itself, not the files it names (an inventory written for another machine).', default: false}),
  }

  async run() {
    const {flags} = await this.parse(InventoryValidate)
    const inv = this.inventory(flags.inventory)
    const problems = flags['schema-only'] ? [] : inventoryFileProblems(inv)
    if (problems.length) throw new InventoryError(`${inv.path}: ${problems.join('; ')}`)
    this.log(`${inv.path}: valid, ${inv.mode} murder "${inv.name}" with ${inv.hosts.length} hosts`)
    for (const role of new Set(inv.hosts.map((h) => h.role)))
      this.log(
        `  ${role}: ${inv.hosts
          .filter((h) => h.role === role)
          .map((h) => h.name)
          .join(', ')}`,
      )
    return {
      path: inv.path,
      name: inv.name,
      mode: inv.mode,
      hosts: inv.hosts.map(({name, role, address, servername, replicaOf}) => ({name, role, address, servername, replicaOf})),
    }
  }
}
