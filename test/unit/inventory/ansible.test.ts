// Importing from Ansible: `ansible-inventory --list` JSON, groups mapped to roles.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {execa} from 'execa'
import {describe, expect, it} from 'vitest'
import {DEFAULT_GROUP_ROLES, inventoryFromAnsible} from '../../../src/inventory/ansible.js'
import {parseInventory} from '../../../src/inventory/load.js'

// As ansible-inventory --list prints it for an INI inventory with nested groups.
const list = {
  _meta: {
    hostvars: {
      'mupdate.mail.example.org': {ansible_host: '10.1.0.10', ansible_user: 'ops', ansible_become: true, ansible_ssh_private_key_file: '/home/ops/.ssh/murder'},
      'fe1.mail.example.org': {ansible_host: '10.1.0.11'},
      'b1.mail.example.org': {ansible_host: '10.1.0.13', ansible_port: 2222},
      'b1r.mail.example.org': {ansible_host: '10.1.0.15', murderctl_servername: 'b1', murderctl_replica_of: 'b1.mail.example.org'},
      'web.example.org': {ansible_host: '10.1.9.9'},
    },
  },
  all: {children: ['ungrouped', 'mail', 'web']},
  mail: {children: ['mupdate', 'frontends', 'backends', 'replicas']},
  mupdate: {hosts: ['mupdate.mail.example.org']},
  frontends: {hosts: ['fe1.mail.example.org']},
  backends: {children: ['store1']},
  store1: {hosts: ['b1.mail.example.org']},
  replicas: {hosts: ['b1r.mail.example.org']},
  web: {hosts: ['web.example.org']},
}

describe('inventory from Ansible', () => {
  it('maps groups (children included) to roles and Ansible variables to SSH settings', () => {
    const doc = inventoryFromAnsible(list, {name: 'prod', mode: 'standard', groups: DEFAULT_GROUP_ROLES})
    expect(doc.hosts).toEqual([
      {name: 'mupdate', role: 'mupdate-master', address: '10.1.0.10', ssh: {user: 'ops', identity: '/home/ops/.ssh/murder', sudo: true}},
      {name: 'fe1', role: 'frontend', address: '10.1.0.11'},
      {name: 'b1', role: 'backend', address: '10.1.0.13', ssh: {port: 2222}},
      {name: 'b1r', role: 'replica', address: '10.1.0.15', servername: 'b1', replicaOf: 'b1'},
    ])
  })

  it('refuses a host in two roles, and groups that hold nobody', () => {
    expect(() => inventoryFromAnsible(list, {name: 'prod', mode: 'standard', groups: {...DEFAULT_GROUP_ROLES, mail: 'frontend'}})).toThrow(
      /in groups for two roles/,
    )
    expect(() => inventoryFromAnsible(list, {name: 'prod', mode: 'standard', groups: {nothing: 'backend'}})).toThrow(/has hosts/)
  })

  it('murderctl inventory import writes a file that inventory validate accepts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ans-'))
    writeFileSync(join(dir, 'inv.json'), JSON.stringify(list))
    const bin = resolve(import.meta.dirname, '../../../bin/run.js')
    const r = await execa(
      'node',
      [bin, 'inventory', 'import', '--from-ansible', '-', '--name', 'prod', '--mode', 'standard', '--out', join(dir, 'murder.yaml')],
      {input: JSON.stringify(list), reject: false},
    )
    expect(r.exitCode, r.stderr).toBe(0)
    const inv = parseInventory(readFileSync(join(dir, 'murder.yaml'), 'utf8'), join(dir, 'murder.yaml'))
    expect(inv.hosts.map((h) => `${h.name}:${h.role}`)).toEqual(['mupdate:mupdate-master', 'fe1:frontend', 'b1:backend', 'b1r:replica'])
    const bad = await execa('node', [bin, 'inventory', 'import', '--from-ansible', join(dir, 'nope.json'), '--name', 'prod', '--mode', 'standard'], {
      reject: false,
    })
    expect(bad.exitCode).toBe(3)
    expect(bad.stderr).toMatch(/not the JSON of ansible-inventory --list/)
  })
})
