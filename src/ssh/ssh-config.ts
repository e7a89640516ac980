// The operator's OpenSSH client config (~/.ssh/config, then /etc/ssh/ssh_config), read as ssh
// reads it, through the maintained `ssh-config` parser: Host and Match sections, the first value
// obtained for a setting wins, IdentityFile accumulates. murderctl takes from it what decides
// where and as whom it connects: HostName, User, Port, IdentityFile, ProxyJump. Settings the
// inventory gives win over the file, as ssh's command line does (README: "SSH client config").
import {readdirSync, readFileSync} from 'node:fs'
import {homedir, userInfo} from 'node:os'
import {basename, dirname, isAbsolute, join, resolve} from 'node:path'
import SSHConfig, {LineType, type Line} from 'ssh-config'
import {InventoryError} from '../errors.js'
import type {Host} from '../inventory/schema.js'

/** What ssh reads when not given -F: the user's file, then the system's. */
export function defaultSshConfigFiles(home = homedir()): string[] {
  return [join(home, '.ssh', 'config'), '/etc/ssh/ssh_config']
}

/** A host as murderctl connects to it: address = HostName, and the IdentityFiles the config names. */
export type ResolvedHost = Host & {
  /** From the config's IdentityFile lines when the inventory sets no ssh.identity: tried in order, missing ones skipped (as ssh does). */
  identityFiles?: string[]
  /** HashKnownHosts for this host (Debian's /etc/ssh/ssh_config says yes): names of accepted keys are written hashed. */
  hashKnownHosts?: boolean
}

/** Include nests at most this deep, as in OpenSSH (READCONF_MAX_DEPTH). */
const MAX_INCLUDE_DEPTH = 16

/**
 * Parse config files into one config, in order (first value wins across them, as ssh reads the
 * user's file before the system's). A missing file is skipped unless `required`. Top-level
 * Include lines are expanded in place (relative paths: ~/.ssh for the user's file, /etc/ssh for
 * the system's; `*` and `?` in the last path component).
 */
export function readSshConfig(files: readonly string[], opts: {required?: boolean; home?: string} = {}): SSHConfig {
  const home = opts.home ?? homedir()
  const out = new SSHConfig()
  for (const f of files) {
    const base = resolve(f).startsWith('/etc/ssh/') ? '/etc/ssh' : join(home, '.ssh')
    out.push(...readOne(f, {required: opts.required ?? false, home, base, depth: 0}))
  }
  return out
}

function readOne(file: string, o: {required: boolean; home: string; base: string; depth: number}): Line[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    if (!o.required && (error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new InventoryError(`cannot read the SSH client config ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      hint: 'point --ssh-config (-F) or ssh.configFile at a readable file, or at "none"',
    })
  }
  return parseSshConfig(text).flatMap((line): Line[] => {
    if (line.type !== LineType.DIRECTIVE || !/^include$/i.test(line.param)) return [line]
    if (o.depth >= MAX_INCLUDE_DEPTH) throw new InventoryError(`${file}: Include nested more than ${MAX_INCLUDE_DEPTH} deep`)
    const values = Array.isArray(line.value) ? line.value.map((v) => v.val) : [line.value]
    return values.flatMap((v) => includeFiles(v, o.home, o.base).flatMap((inc) => readOne(inc, {...o, required: false, depth: o.depth + 1})))
  })
}

/** The files one Include argument names, sorted as glob(3) sorts them. */
function includeFiles(pattern: string, home: string, base: string): string[] {
  const p = pattern === '~' || pattern.startsWith('~/') ? join(home, pattern.slice(1)) : isAbsolute(pattern) ? pattern : join(base, pattern)
  const name = basename(p)
  if (!/[*?]/.test(name)) return [p]
  const re = new RegExp(
    `^${name
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  )
  try {
    return readdirSync(dirname(p))
      .filter((f) => re.test(f) && !f.startsWith('.'))
      .sort()
      .map((f) => join(dirname(p), f))
  } catch {
    return []
  }
}

export function parseSshConfig(text: string): SSHConfig {
  return SSHConfig.parse(text)
}

/** The settings murderctl takes from the config, for one host as named on ssh's command line. */
export interface SshConfigValues {
  hostName?: string
  user?: string
  port?: number
  identityFiles: string[]
  /** 'none' when the config says so (no jump, even if a later section names one). */
  proxyJump?: string
  hashKnownHosts?: boolean
}

/**
 * What the config says for `alias`. `user` is the user given on the command line (it wins over
 * User, and Match user sees it). `Match exec` is never run (a config must not make murderctl run
 * programs): such a section does not apply.
 */
export function sshConfigValues(config: SSHConfig, alias: string, opts: {user?: string} = {}): SshConfigValues {
  const host = alias.toLowerCase()
  const c = config.compute({Host: host, ...(opts.user ? {User: opts.user} : {})}, {ignoreCase: true, matchExec: false})
  const one = (k: string): string | undefined => {
    const v = c[k]
    return Array.isArray(v) ? v[0] : v
  }
  const port = one('port')
  if (port !== undefined && !/^\d{1,5}$/.test(port)) throw new InventoryError(`the SSH client config gives ${alias} a bad Port: ${port}`)
  const hostName = one('hostname')
  const idf = c.identityfile
  return {
    ...(hostName ? {hostName: hostName.replace(/%(%|h)/g, (_, t: string) => (t === '%' ? '%' : host))} : {}),
    ...(one('user') ? {user: one('user')} : {}),
    ...(port ? {port: Number(port)} : {}),
    identityFiles: idf === undefined ? [] : Array.isArray(idf) ? idf : [idf],
    ...(one('proxyjump') ? {proxyJump: one('proxyjump')} : {}),
    ...(one('hashknownhosts') ? {hashKnownHosts: /^yes$/i.test(one('hashknownhosts')!)} : {}),
  }
}

/** ~ and the % tokens IdentityFile takes (ssh_config(5) TOKENS): %d %h %p %r %u %%. */
export function expandIdentityFile(path: string, t: {home: string; host: string; port: number; user: string; localUser: string}): string {
  const expanded = path.replace(/%([%dhpru])/g, (_, k: string) => ({'%': '%', d: t.home, h: t.host, p: String(t.port), r: t.user, u: t.localUser})[k] ?? '')
  return expanded === '~' || expanded.startsWith('~/') ? join(t.home, expanded.slice(1)) : expanded
}

/**
 * The host with what the config adds: the inventory's own ssh settings first (user and port only
 * when the inventory gave them, not murderctl's defaults: see Host.sshDefaulted), then the
 * config's, then murderctl's defaults. The config is looked up by the inventory's address, as
 * `ssh ADDRESS` would; HostName then becomes the address SSH connects to and checks known_hosts by.
 */
export function applySshConfig(host: Host, config: SSHConfig, env: {home?: string; localUser?: string} = {}): ResolvedHost {
  const defaulted = new Set(host.sshDefaulted ?? [])
  const v = sshConfigValues(config, host.address, defaulted.has('user') ? {} : {user: host.ssh.user})
  const user = defaulted.has('user') ? (v.user ?? host.ssh.user) : host.ssh.user
  const port = defaulted.has('port') ? (v.port ?? host.ssh.port) : host.ssh.port
  const address = v.hostName ?? host.address
  const jump = host.ssh.proxyJump ?? (v.proxyJump && v.proxyJump.toLowerCase() !== 'none' ? v.proxyJump : undefined)
  if (jump && !host.ssh.proxyJump && jump.includes(','))
    throw new InventoryError(`the SSH client config gives ${host.name} (${host.address}) a ProxyJump of several hops (${jump}): murderctl goes through one`, {
      host: host.name,
      hint: 'set ssh.proxyJump for this host in the inventory to the last bastion, reachable directly',
    })
  const home = env.home ?? homedir()
  const identityFiles =
    host.ssh.identity || !v.identityFiles.length
      ? undefined
      : v.identityFiles.map((f) => expandIdentityFile(f, {home, host: address, port, user, localUser: env.localUser ?? localUserName()}))
  return {
    ...host,
    address,
    ssh: {...host.ssh, user, port, proxyJump: jump},
    ...(identityFiles ? {identityFiles} : {}),
    ...(v.hashKnownHosts !== undefined ? {hashKnownHosts: v.hashKnownHosts} : {}),
  }
}

function localUserName(): string {
  try {
    return userInfo().username
  } catch {
    return process.env.USER ?? ''
  }
}
