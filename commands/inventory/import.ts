import {readFileSync} from 'node:fs'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../../src/cli/base-command.js'
import {prose} from '../../src/cli/prose.js'
import {InventoryError} from '../../src/errors.js'
import {AnsibleList, DEFAULT_GROUP_ROLES, inventoryFromAnsible, renderInventoryYaml} from '../../src/inventory/ansible.js'
import type {Role} from '../../src/inventory/schema.js'
import {writeFileAtomic} from '../../src/util/files.js'

export default class InventoryImport extends BaseCommand {
  static summary = "Build an inventory from Ansible's: the JSON of ansible-inventory --list, groups mapped to roles."
  static description = prose`Reads ansible_host, ansible_user, ansible_port, ansible_ssh_private_key_file and ansible_become, plus
murderctl_servername and murderctl_replica_of for replication pairs. Default groups: ${Object.entries(DEFAULT_GROUP_ROLES)
    .map(([g, r]) => `${g}=${r}`)
    .join(', ')}.`

  static examples = [
    'ansible-inventory -i hosts.ini --list | <%= config.bin %> inventory import --from-ansible - --name prod --mode standard > murder.yaml',
    '<%= config.bin %> inventory import --from-ansible inv.json --name prod --mode unified --group imap=backend --group mupdate=mupdate-master --out /etc/murderctl/murder.yaml',
  ]

  static flags = {
    'from-ansible': Flags.string({summary: 'The output of ansible-inventory --list (a file, or - for stdin).', required: true}),
    name: Flags.string({summary: "The murder's name.", required: true}),
    mode: Flags.string({summary: 'The murder mode.', options: ['standard', 'unified'], required: true}),
    group: Flags.string({
      summary: 'GROUP=ROLE: hosts of this Ansible group (and its children) take this role (repeatable; replaces the defaults).',
      multiple: true,
    }),
    'known-hosts': Flags.string({summary: 'known_hosts file for the inventory (default ~/.ssh/known_hosts).'}),
    out: Flags.string({summary: 'Write the inventory here (mode 0600) instead of stdout.'}),
  }

  async run() {
    const {flags} = await this.parse(InventoryImport)
    const source = flags['from-ansible']
    let list: AnsibleList
    try {
      list = AnsibleList.parse(JSON.parse(readFileSync(source === '-' ? 0 : source, 'utf8')))
    } catch (error) {
      throw new InventoryError(`${source === '-' ? 'stdin' : source}: not the JSON of ansible-inventory --list: ${(error as Error).message.split('\n')[0]}`, {
        hint: 'run: ansible-inventory -i YOUR_INVENTORY --list > inv.json',
      })
    }
    const groups: Record<string, Role> = flags.group?.length
      ? Object.fromEntries(
          flags.group.map((g) => {
            const [group, role] = g.split('=')
            if (!group || !role) throw new InventoryError(`--group ${g}: expected GROUP=ROLE`)
            return [group, role as Role]
          }),
        )
      : DEFAULT_GROUP_ROLES
    const doc = inventoryFromAnsible(list, {name: flags.name, mode: flags.mode as 'standard' | 'unified', groups, knownHosts: flags['known-hosts']})
    const yaml = renderInventoryYaml(doc, source === '-' ? 'ansible-inventory (stdin)' : source)
    if (flags.out) {
      writeFileAtomic(flags.out, yaml, {mode: 0o600})
      this.progress(`wrote ${flags.out}: ${doc.hosts.length} hosts`)
    } else if (!this.jsonEnabled()) process.stdout.write(yaml)
    return doc
  }
}
