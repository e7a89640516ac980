// Loading a playbook: YAML parsed into the schema, then every name it uses checked against what
// exists (actions and their params, conditions, host selectors) and against the run it is for,
// so an edited playbook with a typo is refused before it runs, naming the field.
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parse as parseYaml} from 'yaml'
import {InventoryError, RefusedError} from '../errors.js'
import {ACTIONS} from './actions/index.js'
import {CONDITIONS} from './conditions.js'
import {BUILTIN_SELECTORS, Playbook} from './schema.js'

export {Playbook, Step} from './schema.js'

/** What the running command expects of a playbook. */
export interface PlaybookFor {
  command: string
  mode?: 'standard' | 'unified'
  /** recover-master's source: a playbook written for another is refused. */
  source?: string
  /** Host selectors the command provides beyond the built-in ones. */
  selectors?: readonly string[]
}

/** The repo's playbooks/ folder, from src/engine (tests) or dist/src/engine (built) alike. */
function playbookDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'playbooks')) || !existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new InventoryError('cannot find the playbooks/ folder next to murderctl')
    dir = up
  }
  return join(dir, 'playbooks')
}

const fieldError = (path: string, field: (string | number)[], message: string) =>
  new InventoryError(`${path}: ${field.join('.') || '(top level)'}: ${message}`, {hint: 'compare with the playbooks shipped in playbooks/'})

/** Names each step uses must exist; params must be the action's own. */
function checkNames(p: Playbook, path: string, selectors: readonly string[] | undefined): void {
  const conditions = Object.keys(CONDITIONS)
  if (p.rollbackVerify !== undefined && !(p.rollbackVerify in ACTIONS)) throw fieldError(path, ['rollbackVerify'], `unknown action "${p.rollbackVerify}"`)
  for (const [i, s] of p.steps.entries()) {
    const action = (ACTIONS as Record<string, (typeof ACTIONS)[keyof typeof ACTIONS]>)[s.action]
    if (!action) throw fieldError(path, ['steps', i, 'action'], `unknown action "${s.action}" (known: ${Object.keys(ACTIONS).join(', ')})`)
    const params = action.params.safeParse(s.params)
    if (!params.success) {
      const issue = params.error.issues[0]
      const keys = issue.code === 'unrecognized_keys' ? ` ${issue.keys.map((k) => `"${k}"`).join(', ')}` : ''
      throw fieldError(
        path,
        ['steps', i, 'params', ...issue.path.map(String)],
        `${issue.message}${keys} (action ${s.action} takes: ${Object.keys(action.params.shape).join(', ') || 'nothing'})`,
      )
    }
    for (const key of ['pre', 'post'] as const) {
      const c = s[key]
      if (c !== undefined && !conditions.includes(c)) throw fieldError(path, ['steps', i, key], `unknown condition "${c}" (known: ${conditions.join(', ')})`)
    }
    if (s.undo !== undefined && !(s.undo in ACTIONS)) throw fieldError(path, ['steps', i, 'undo'], `unknown action "${s.undo}"`)
    if (selectors) {
      const known = [...BUILTIN_SELECTORS, ...selectors]
      if (!known.includes(s.hosts))
        throw fieldError(path, ['steps', i, 'hosts'], `unknown host selector "${s.hosts}" (this command knows: ${known.join(', ')})`)
    }
  }
}

export function loadPlaybook(path: string, expect?: PlaybookFor): Playbook {
  let raw: unknown
  try {
    raw = parseYaml(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new InventoryError(`${path}: cannot read playbook: ${(error as Error).message.split('\n')[0]}`, {hint: 'check the YAML'})
  }
  const r = Playbook.safeParse(raw)
  if (!r.success) {
    const i = r.error.issues[0]
    throw fieldError(
      path,
      i.path.map((x) => (typeof x === 'number' ? x : String(x))),
      i.message,
    )
  }
  checkNames(r.data, path, expect ? (expect.selectors ?? []) : undefined)
  if (expect) assertPlaybookFor(r.data, expect)
  return r.data
}

/** A playbook runs only for the command, murder mode and source it was written for. */
export function assertPlaybookFor(p: Playbook, expect: PlaybookFor): void {
  if (p.command !== expect.command) throw new RefusedError(`playbook ${p.name} is for murderctl ${p.command}, not ${expect.command}`)
  if (p.mode && expect.mode && p.mode !== expect.mode) throw new RefusedError(`playbook ${p.name} is for a ${p.mode} murder; the inventory says ${expect.mode}`)
  if (expect.source !== undefined && p.source !== expect.source)
    throw new RefusedError(`playbook ${p.name} is written for source ${p.source ?? '(none)'}; this run's source is ${expect.source}`, {
      hint: `name the source it was written for (--source ${p.source ?? '...'}), or edit its source field`,
    })
}

/** A playbook shipped in playbooks/, by name (without .yaml). */
export function builtinPlaybook(name: string, expect?: PlaybookFor): Playbook {
  const path = join(playbookDir(), `${name}.yaml`)
  if (!existsSync(path)) throw new InventoryError(`no shipped playbook ${name}`, {hint: `available: ${listPlaybooks().join(', ')}`})
  return loadPlaybook(path, expect)
}

export function listPlaybooks(): string[] {
  return readdirSync(playbookDir())
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.replace(/\.yaml$/, ''))
}
