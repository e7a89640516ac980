import {Flags} from '@oclif/core'
import {BaseCommand} from '../../src/cli/base-command.js'
import {prose} from '../../src/cli/prose.js'
import {labUp} from '../../src/lab/lab.js'
import {LabTopology} from '../../src/lab/topology.js'

export default class LabUp extends BaseCommand {
  static summary = 'Boot a real Cyrus murder on this machine to rehearse recoveries on (root).'
  static description = prose`One mount namespace and loopback address per host, each with its own /etc/imapd.conf,
/etc/cyrus.conf, cyrus-master and sshd. Writes DIR/inventory.yaml, usable as is by every command.
Installs Cyrus, OpenSSH and rsyslog from Debian's packages when they are missing.`

  static examples = [
    '<%= config.bin %> lab up --dir /tmp/lab',
    '<%= config.bin %> lab up --dir /tmp/lab --topology unified --mailboxes 200',
    '<%= config.bin %> lab up --dir /tmp/big --mailboxes 40000 --base 127.0.40 --json',
    '<%= config.bin %> lab up --dir /tmp/port --mupdate-port 39050',
  ]

  static flags = {
    dir: Flags.string({summary: 'Folder for the lab (created).', required: true}),
    topology: Flags.string({summary: 'Murder topology.', options: LabTopology.options, default: 'standard'}),
    mailboxes: Flags.integer({summary: 'How many mailboxes to seed over both backends.', default: 40, min: 12}),
    base: Flags.string({summary: "First three octets of the hosts' loopback addresses.", default: '127.0.10'}),
    'mupdate-port': Flags.integer({summary: "The MUPDATE master's port (named in mupdate_server when not 3905).", default: 3905, min: 1, max: 65535}),
  }

  async run() {
    const {flags} = await this.parse(LabUp)
    const state = await labUp({
      dir: flags.dir,
      topology: flags.topology as LabTopology,
      base: flags.base,
      mailboxes: flags.mailboxes,
      mupdatePort: flags['mupdate-port'],
      log: (m) => this.progress(m),
    })
    const result = {
      inventory: state.inventory,
      sshKey: state.sshKey,
      hosts: state.hosts.map((h) => ({name: h.name, role: h.role, address: h.address})),
    }
    this.log(`lab is up (${state.topology}): ${result.hosts.map((h) => `${h.name} ${h.address}`).join(', ')}`)
    this.log(`inventory: ${state.inventory}`)
    this.log(`try: murderctl status -i ${state.inventory}`)
    return result
  }
}
