// Run the built CLI exactly as an operator would, and small lab helpers for making disasters.
import {resolve} from 'node:path'
import {execa} from 'execa'
import {inject} from 'vitest'
import {labExec, readLabState} from '../../src/lab/lab.js'

const BIN = resolve(import.meta.dirname, '../../bin/run.js')

export interface CliResult {
  exitCode: number
  stdout: string
  stderr: string
  json: any
}

export async function murderctl(args: string[], opts: {env?: Record<string, string>; timeoutMs?: number} = {}): Promise<CliResult> {
  const r = await execa('node', [BIN, ...args], {reject: false, env: {...opts.env, FORCE_COLOR: '0', NODE_ENV: 'production'}, stdin: 'ignore', timeout: opts.timeoutMs ?? 300_000})
  let json: unknown
  if (args.includes('--json')) {
    try {
      json = JSON.parse(r.stdout)
    } catch {
      json = undefined
    }
  }
  return {exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, json}
}

export const lab = () => ({dir: inject('labDir'), inventory: inject('labInventory')})

export function labHost(name: string) {
  const h = readLabState(lab().dir)?.hosts.find((x) => x.name === name)
  if (!h) throw new Error(`no lab host ${name}`)
  return h
}

/** Run a shell command on a lab host behind murderctl's back (to make disasters). */
export async function onHost(name: string, script: string, input?: string) {
  return labExec(lab().dir, name, ['sh', '-c', script], {input})
}

export const CTL = '/usr/lib/cyrus/bin/ctl_mboxlist'
