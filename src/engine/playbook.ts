// Runbooks as data: a playbook is a YAML list of steps, each naming the hosts it runs on, its
// action, the condition that must hold before it, the one that proves it done, and its undo.
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parse as parseYaml} from 'yaml'
import {z} from 'zod'
import {InventoryError} from '../errors.js'
import {refineUnique} from '../util/zod.js'

export const HostSelector = z.enum(['master', 'frontends', 'backends', 'slaves', 'none'])
export type HostSelector = z.infer<typeof HostSelector>

export const ActionName = z.enum([
  'preflight',
  'lock',
  'unlock',
  'disable-mupdate-slave',
  'enable-mupdate-slave',
  'stop-cyrus',
  'start-cyrus',
  'set-aside-db',
  'copy-aside-db',
  'install-db-from-frontend',
  'install-db-from-backup',
  'diff-push',
  'push',
  'verify-murder',
])
export type ActionName = z.infer<typeof ActionName>

export const ConditionName = z.enum(['cyrus-running', 'cyrus-stopped', 'slave-stopped', 'slave-connected', 'mw-empty', 'local-mw-empty', 'db-absent', 'db-present', 'locked'])
export type ConditionName = z.infer<typeof ConditionName>

export const Step = z
  .object({
    id: z.string().regex(/^[a-z0-9-]+$/),
    title: z.string(),
    hosts: HostSelector,
    action: ActionName,
    /** Must hold on each host before the action runs. */
    pre: ConditionName.optional(),
    /** Proves the action done on each host; when it already holds, the action is skipped. */
    post: ConditionName.optional(),
    /** The action that reverses this one, for the operator's undo notes. */
    undo: ActionName.optional(),
    /** Show the collected diff and ask before going on. */
    confirm: z.boolean().default(false),
    params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  })
  .strict()
export type Step = z.infer<typeof Step>

export const Playbook = z
  .object({
    name: z.string(),
    summary: z.string(),
    mode: z.enum(['standard', 'unified']),
    source: z.enum(['backends', 'frontend', 'backup']),
    steps: z.array(Step).min(1),
  })
  .strict()
  .superRefine((p, ctx) => refineUnique(ctx, p.steps, (s) => s.id, (i) => ['steps', i, 'id'], 'step id'))
export type Playbook = z.infer<typeof Playbook>

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

export function loadPlaybook(path: string): Playbook {
  let raw: unknown
  try {
    raw = parseYaml(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new InventoryError(`${path}: cannot read playbook: ${(error as Error).message.split('\n')[0]}`, {hint: 'check the YAML'})
  }
  const r = Playbook.safeParse(raw)
  if (!r.success) {
    const i = r.error.issues[0]
    throw new InventoryError(`${path}: ${i.path.join('.') || '(top level)'}: ${i.message}`, {hint: 'compare with the playbooks shipped in playbooks/'})
  }
  return r.data
}

/** The shipped playbook for a murder mode and source. */
export function builtinPlaybook(mode: 'standard' | 'unified', source: Playbook['source']): Playbook {
  const path = join(playbookDir(), `recover-master-${mode}-${source}.yaml`)
  if (!existsSync(path)) throw new InventoryError(`no shipped playbook for a ${mode} murder from ${source}`, {hint: `available: ${listPlaybooks().join(', ')}`})
  return loadPlaybook(path)
}

export function listPlaybooks(): string[] {
  return readdirSync(playbookDir())
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.replace(/\.yaml$/, ''))
}
