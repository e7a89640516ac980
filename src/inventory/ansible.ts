// An inventory from Ansible's: `ansible-inventory --list` output (JSON) and a map from Ansible
// groups to murder roles. Connection settings come from the usual Ansible host variables.
import {stringify} from 'yaml'
import {z} from 'zod'
import {InventoryError} from '../errors.js'
import {InventoryFile, type Role, roles} from './schema.js'

/** What `ansible-inventory --list` prints: groups with hosts and children, host variables in _meta. */
export const AnsibleList = z.looseObject({
  _meta: z.looseObject({hostvars: z.record(z.string(), z.record(z.string(), z.unknown())).default({})}).optional(),
})
export type AnsibleList = z.infer<typeof AnsibleList>

const Group = z.looseObject({hosts: z.array(z.string()).optional(), children: z.array(z.string()).optional()})

/** The groups Debian-style playbooks tend to use; --group GROUP=ROLE overrides or adds. */
export const DEFAULT_GROUP_ROLES: Record<string, Role> = {
  mupdate: 'mupdate-master',
  frontends: 'frontend',
  backends: 'backend',
  replicas: 'replica',
}

export interface AnsibleImportOptions {
  name: string
  mode: 'standard' | 'unified'
  groups: Record<string, Role>
  knownHosts?: string
}

/** Every host of a group, its children's included. */
function groupHosts(list: AnsibleList, group: string, seen = new Set<string>()): string[] {
  if (seen.has(group)) return []
  seen.add(group)
  const g = Group.safeParse((list as Record<string, unknown>)[group])
  if (!g.success) return []
  return [...(g.data.hosts ?? []), ...(g.data.children ?? []).flatMap((c) => groupHosts(list, c, seen))]
}

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined)
const bool = (v: unknown) => v === true || (typeof v === 'string' && /^(yes|true|1)$/i.test(v))

/**
 * The inventory document (validated like a file) for the hosts in the mapped groups. Host
 * variables read: ansible_host, ansible_user, ansible_port, ansible_ssh_private_key_file,
 * ansible_become; murderctl_servername and murderctl_replica_of for a pair's shared name and
 * its replica's backend.
 */
export function inventoryFromAnsible(list: AnsibleList, opts: AnsibleImportOptions): InventoryFile {
  const vars = list._meta?.hostvars ?? {}
  const roleOf = new Map<string, Role>()
  for (const [group, role] of Object.entries(opts.groups)) {
    if (!roles.includes(role)) throw new InventoryError(`--group ${group}=${role}: not a role (roles: ${roles.join(', ')})`)
    for (const h of groupHosts(list, group)) {
      const before = roleOf.get(h)
      if (before && before !== role)
        throw new InventoryError(`Ansible host ${h} is in groups for two roles (${before}, ${role})`, {hint: 'map each host to one role with --group'})
      roleOf.set(h, role)
    }
  }
  if (!roleOf.size)
    throw new InventoryError(`none of the groups ${Object.keys(opts.groups).join(', ')} has hosts in the Ansible inventory`, {
      hint: 'map your groups to roles with --group GROUP=ROLE',
    })
  const hosts = [...roleOf].map(([name, role]) => {
    const v = vars[name] ?? {}
    const ssh: Record<string, unknown> = {}
    if (str(v.ansible_user)) ssh.user = str(v.ansible_user)
    if (str(v.ansible_port)) ssh.port = Number(str(v.ansible_port))
    if (str(v.ansible_ssh_private_key_file)) ssh.identity = str(v.ansible_ssh_private_key_file)
    if (bool(v.ansible_become) && str(v.ansible_user) !== 'root') ssh.sudo = true
    const short = name.split('.')[0]
    return {
      name: short,
      role,
      address: str(v.ansible_host) ?? name,
      ...(str(v.murderctl_servername) ? {servername: str(v.murderctl_servername)} : {}),
      ...(role === 'replica' && str(v.murderctl_replica_of) ? {replicaOf: str(v.murderctl_replica_of)!.split('.')[0]} : {}),
      ...(Object.keys(ssh).length ? {ssh} : {}),
    }
  })
  const doc = {name: opts.name, mode: opts.mode, ...(opts.knownHosts ? {knownHosts: opts.knownHosts} : {}), hosts}
  const r = InventoryFile.safeParse(doc)
  if (!r.success) {
    const i = r.error.issues[0]
    throw new InventoryError(`the imported inventory is not valid: ${i.path.join('.')}: ${i.message}`, {
      hint: 'check the groups and host variables (murderctl_replica_of for replicas)',
    })
  }
  return doc as InventoryFile
}

export const renderInventoryYaml = (doc: InventoryFile, source: string) =>
  `# murderctl inventory imported from ${source}; review it, then: murderctl inventory validate -i FILE\n${stringify(doc)}`
