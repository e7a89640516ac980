// A running lab's state file and the ways into its hosts without SSH (set-up and disasters only).
import {existsSync, readdirSync, readFileSync, readlinkSync} from 'node:fs'
import {connect} from 'node:net'
import {join, resolve} from 'node:path'
import {execa} from 'execa'
import {AbortError} from '../errors.js'
import type {LabHost, LabTopology} from './topology.js'

export const LAB_PASSWORD_FILE = 'lab-password'

export interface LabState {
  dir: string
  topology: LabTopology
  base: string
  hosts: (LabHost & {pid: number})[]
  rsyslogPid?: number
  inventory: string
  sshKey: string
  /** The master's MUPDATE port, when not 3905. */
  mupdatePort?: number
}

export const statePath = (dir: string) => join(dir, 'lab-state.json')
export const hostDir = (dir: string, name: string) => join(dir, 'hosts', name)

export function readLabState(dir: string): LabState | undefined {
  const p = statePath(resolve(dir))
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as LabState) : undefined
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export function labPassword(dir: string): string {
  return readFileSync(join(dir, LAB_PASSWORD_FILE), 'utf8').trim()
}

/** Run a command inside a lab host without SSH: for setting the lab up and for tests' disasters. */
export async function labExec(dir: string, host: string, argv: string[], opts: {input?: string; reject?: boolean; timeout?: number} = {}) {
  const state = readLabState(dir)
  const h = state?.hosts.find((x) => x.name === host)
  if (!h || !alive(h.pid)) throw new AbortError(`lab host ${host} is not running in ${dir}`, {host, hint: 'murderctl lab up'})
  return execa('nsenter', ['-t', String(h.pid), '-m', '--', ...argv], {input: opts.input, reject: opts.reject ?? true, timeout: opts.timeout})
}

export function waitPort(address: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  return new Promise((resolvePromise, reject) => {
    const attempt = () => {
      const s = connect({host: address, port})
      s.once('connect', () => {
        s.destroy()
        resolvePromise()
      })
      s.once('error', () => {
        s.destroy()
        if (Date.now() > deadline) reject(new AbortError(`nothing listens on ${address}:${port} after ${timeoutMs / 1000}s`))
        else setTimeout(attempt, 100)
      })
    }
    attempt()
  })
}

/** Every process whose mount namespace is the one this holder pid lives in. */
export function processesInNamespace(pid: number): number[] {
  let ns: string
  try {
    ns = readlinkSync(`/proc/${pid}/ns/mnt`)
  } catch {
    return []
  }
  const out: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      if (readlinkSync(`/proc/${p}/ns/mnt`) === ns) out.push(Number(p))
    } catch {
      // gone already
    }
  }
  return out
}
