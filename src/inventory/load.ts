import {accessSync, constants, existsSync, readFileSync, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, isAbsolute, resolve} from 'node:path'
import {type Document, isNode, LineCounter, parseDocument} from 'yaml'
import type {z} from 'zod'
import {InventoryError, UsageError} from '../errors.js'
import {sha256} from '../util/hash.js'
import {stateDirProblem} from '../util/files.js'
import {PRESETS} from './presets.js'
import {CyrusSettings, type Host, type Inventory, InventoryFile, SshSettings} from './schema.js'

export const DEFAULT_INVENTORY = 'murder.yaml'
/** Where a host-wide installation keeps its inventory (as /etc/ansible/hosts is Ansible's). */
export const SYSTEM_INVENTORY = '/etc/murderctl/murder.yaml'

/** The inventory path from the flag, then MURDERCTL_INVENTORY, then ./murder.yaml, then /etc/murderctl/murder.yaml. */
export function inventoryPath(flag?: string): string {
  const chosen = flag ?? process.env.MURDERCTL_INVENTORY
  if (chosen) return resolve(chosen)
  return existsSync(DEFAULT_INVENTORY) || !existsSync(SYSTEM_INVENTORY) ? resolve(DEFAULT_INVENTORY) : SYSTEM_INVENTORY
}

/** Expand ~ and make a path from the inventory absolute, relative to the inventory file. */
export function resolvePath(base: string, p: string): string {
  if (p === '~' || p.startsWith('~/')) return resolve(homedir(), p.slice(2))
  return isAbsolute(p) ? p : resolve(dirname(base), p)
}

/** The line of the YAML node an issue is about (or of its nearest parent that exists). */
function lineOf(doc: Document, lc: LineCounter, path: readonly PropertyKey[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n) as (string | number)[], true)
    if (isNode(node) && node.range) return lc.linePos(node.range[0]).line
  }
  return undefined
}

function describeIssue(issue: z.core.$ZodIssue, line?: number): string {
  const where = issue.path.length
    ? issue.path
        .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
        .join('')
        .replace(/^\./, '')
    : '(top level)'
  return `${line ? `line ${line}: ` : ''}${where}: ${issue.message}`
}

/** A host's cyrus settings: its own and the defaults' first, then its preset's, then Debian's. */
function cyrusSettings(given: Partial<CyrusSettings>): CyrusSettings {
  return CyrusSettings.parse({...(given.preset ? PRESETS[given.preset] : {}), ...given})
}

export function parseInventory(text: string, path: string): Inventory {
  const lc = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lc, prettyErrors: false})
  const bad = doc.errors[0]
  if (bad) throw new InventoryError(`${path} (line ${lc.linePos(bad.pos[0]).line}): not valid YAML: ${bad.message.split('\n')[0]}`)
  const raw: unknown = doc.toJS()
  const parsed = InventoryFile.safeParse(raw)
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => describeIssue(i, lineOf(doc, lc, i.path)))
    throw new InventoryError(`${path}: ${issues[0]}${issues.length > 1 ? ` (and ${issues.length - 1} more: ${issues.slice(1).join('; ')})` : ''}`)
  }
  const inv = parsed.data
  const hosts: Host[] = inv.hosts.map((h) => {
    const given = {...inv.defaults?.ssh, ...h.ssh}
    const ssh = SshSettings.parse(given)
    if (ssh.identity) ssh.identity = resolvePath(path, ssh.identity)
    if (ssh.configFile && ssh.configFile !== 'none') ssh.configFile = resolvePath(path, ssh.configFile)
    return {
      name: h.name,
      role: h.role,
      address: h.address,
      replicaOf: h.replicaOf,
      servername: h.servername ?? h.name,
      ssh,
      cyrus: cyrusSettings({...inv.defaults?.cyrus, ...h.cyrus}),
      sshDefaulted: (['user', 'port'] as const).filter((k) => given[k] === undefined),
    }
  })
  return {
    path,
    name: inv.name,
    mode: inv.mode,
    knownHosts: resolvePath(path, inv.knownHosts),
    stateDir: resolvePath(path, inv.stateDir),
    thresholds: inv.thresholds,
    pairs: inv.pairs,
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
    throw new InventoryError(code === 'ENOENT' ? `${path}: no such inventory file` : `${path}: cannot read: ${(error as Error).message}`, {
      hint: 'pass -i/--inventory PATH, set MURDERCTL_INVENTORY, or create ./murder.yaml (see README)',
    })
  }
  return parseInventory(text, path)
}

/**
 * The inventory with every host reading the SSH client config `file` (the --ssh-config/-F flag:
 * it overrides ssh.configFile, as ssh -F does). A file that is not there is a usage error.
 */
export function withSshConfigFile(inv: Inventory, file: string): Inventory {
  const path = file === 'none' ? file : resolve(file)
  if (path !== 'none' && !existsSync(path)) throw new UsageError(`--ssh-config ${file}: no such file`, {hint: 'name an OpenSSH client config file, or "none"'})
  return {...inv, hosts: inv.hosts.map((h) => ({...h, ssh: {...h.ssh, configFile: path}}))}
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

/**
 * What a run depends on in the inventory, as one checksum: the murder, its mode and each host's
 * name, role, address and servername. A run is resumed only against the same.
 */
export function inventoryFingerprint(inv: Inventory): string {
  const hosts = inv.hosts.map((h) => [h.name, h.role, h.address, h.servername, h.replicaOf ?? '']).sort((a, b) => a[0].localeCompare(b[0]))
  return sha256(JSON.stringify({name: inv.name, mode: inv.mode, hosts}))
}

/**
 * What the schema cannot see: the files the inventory names. Each problem is one line; empty
 * when the identity files exist, known_hosts is a readable file and stateDir a writable folder.
 */
export function inventoryFileProblems(inv: Inventory): string[] {
  const problems: string[] = []
  const readableFile = (p: string, what: string) => {
    try {
      if (!statSync(p).isFile()) return `${what} ${p} is not a file`
      accessSync(p, constants.R_OK)
      return null
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      return `${what} ${p} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`
    }
  }
  for (const id of new Set(inv.hosts.map((h) => h.ssh.identity).filter((x): x is string => Boolean(x)))) {
    const p = readableFile(id, 'identity file')
    if (p)
      problems.push(
        `${p} (used by ${inv.hosts
          .filter((h) => h.ssh.identity === id)
          .map((h) => h.name)
          .join(', ')})`,
      )
  }
  for (const cf of new Set(inv.hosts.map((h) => h.ssh.configFile).filter((x): x is string => Boolean(x) && x !== 'none'))) {
    const p = readableFile(cf, 'ssh.configFile')
    if (p) problems.push(p)
  }
  const kh = readableFile(inv.knownHosts, 'knownHosts')
  if (kh) problems.push(`${kh}${kh.endsWith('does not exist') ? ' (create it with ssh-keyscan, or run once with --accept-new-host-keys)' : ''}`)
  const sd = stateDirProblem(inv.stateDir)
  if (sd) problems.push(`stateDir: ${sd}`)
  return problems
}
