import {readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, isAbsolute, resolve} from 'node:path'
import {parse as parseYaml, YAMLParseError} from 'yaml'
import type {z} from 'zod'
import {InventoryError} from '../errors.js'
import {CyrusSettings, type Host, type Inventory, InventoryFile, SshSettings} from './schema.js'

export const DEFAULT_INVENTORY = 'murder.yaml'

/** The inventory path from the flag, then MURDERCTL_INVENTORY, then ./murder.yaml. */
export function inventoryPath(flag?: string): string {
  return resolve(flag ?? process.env.MURDERCTL_INVENTORY ?? DEFAULT_INVENTORY)
}

/** Expand ~ and make a path from the inventory absolute, relative to the inventory file. */
export function resolvePath(base: string, p: string): string {
  if (p === '~' || p.startsWith('~/')) return resolve(homedir(), p.slice(2))
  return isAbsolute(p) ? p : resolve(dirname(base), p)
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') : '(top level)'
  return `${where}: ${issue.message}`
}

export function parseInventory(text: string, path: string): Inventory {
  let raw: unknown
  try {
    raw = parseYaml(text)
  } catch (error) {
    const line = error instanceof YAMLParseError && error.linePos ? ` (line ${error.linePos[0].line})` : ''
    throw new InventoryError(`${path}${line}: not valid YAML: ${(error as Error).message.split('\n')[0]}`)
  }
  const parsed = InventoryFile.safeParse(raw)
  if (!parsed.success) {
    const issues = parsed.error.issues.map(describeIssue)
    throw new InventoryError(`${path}: ${issues[0]}${issues.length > 1 ? ` (and ${issues.length - 1} more: ${issues.slice(1).join('; ')})` : ''}`)
  }
  const inv = parsed.data
  const hosts: Host[] = inv.hosts.map((h) => {
    const ssh = SshSettings.parse({...inv.defaults?.ssh, ...h.ssh})
    if (ssh.identity) ssh.identity = resolvePath(path, ssh.identity)
    return {
      name: h.name,
      role: h.role,
      address: h.address,
      replicaOf: h.replicaOf,
      servername: h.servername ?? h.name,
      ssh,
      cyrus: CyrusSettings.parse({...inv.defaults?.cyrus, ...h.cyrus}),
    }
  })
  return {
    path,
    name: inv.name,
    mode: inv.mode,
    knownHosts: resolvePath(path, inv.knownHosts),
    stateDir: resolvePath(path, inv.stateDir),
    thresholds: inv.thresholds,
    ...(inv.imap ? {imap: {...inv.imap, passwordFile: resolvePath(path, inv.imap.passwordFile)}} : {}),
    hosts,
  }
}

export function loadInventory(flag?: string): Inventory {
  const path = inventoryPath(flag)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new InventoryError(
      code === 'ENOENT' ? `${path}: no such inventory file` : `${path}: cannot read: ${(error as Error).message}`,
      {hint: 'pass -i/--inventory PATH, set MURDERCTL_INVENTORY, or create ./murder.yaml (see README)'},
    )
  }
  return parseInventory(text, path)
}

// Lookups commands need over and over.
export function hostsByRole(inv: Inventory, ...roles: Host['role'][]): Host[] {
  return inv.hosts.filter((h) => roles.includes(h.role))
}

export function master(inv: Inventory): Host {
  return inv.hosts.find((h) => h.role === 'mupdate-master')!
}

/** The hosts running a mupdate slave: every frontend, and in a unified murder every backend too. */
export function slaveHosts(inv: Inventory): Host[] {
  return hostsByRole(inv, 'frontend', ...(inv.mode === 'unified' ? (['backend'] as const) : []))
}

export function findHost(inv: Inventory, name: string): Host {
  const h = inv.hosts.find((x) => x.name === name)
  if (!h) throw new InventoryError(`no host named "${name}" in ${inv.path}`, {hint: `known hosts: ${inv.hosts.map((x) => x.name).join(', ')}`})
  return h
}
