import {BaseCommand, inventoryFlag} from '../../src/cli/base-command.js'

export default class InventoryValidate extends BaseCommand {
  static summary = 'Check an inventory file: schema, roles, replica pairs, paths.'
  static examples = ['<%= config.bin %> inventory validate -i murder.yaml']
  static flags = {inventory: inventoryFlag}

  async run() {
    const {flags} = await this.parse(InventoryValidate)
    const inv = this.inventory(flags.inventory)
    this.log(`${inv.path}: valid, ${inv.mode} murder "${inv.name}" with ${inv.hosts.length} hosts`)
    for (const role of new Set(inv.hosts.map((h) => h.role)))
      this.log(`  ${role}: ${inv.hosts.filter((h) => h.role === role).map((h) => h.name).join(', ')}`)
    return {path: inv.path, name: inv.name, mode: inv.mode, hosts: inv.hosts.map(({name, role, address, servername, replicaOf}) => ({name, role, address, servername, replicaOf}))}
  }
}
