// Progress of a playbook on a terminal, through listr2: one small task list per step, so that
// nothing is rendering while a confirmation is asked between steps. Output goes to stderr;
// stdout stays for results.
import {Listr, ListrLogger, ProcessOutput} from 'listr2'
import type {EngineHooks, UnitResult} from '../engine/engine.js'
import type {Step} from '../engine/schema.js'
import {BugError} from '../errors.js'

const line = (u: UnitResult) => `${u.status === 'failed' ? 'FAILED' : u.status}${u.host ? ` ${u.host}` : ''}${u.detail ? `: ${u.detail}` : ''}`

/** A batch of steps (one, or steps that run alongside each other) as one task list: its tasks run at once. */
export const listrSteps: NonNullable<EngineHooks['runSteps']> = async (batch, total) => {
  // A task listr never ran counts as failed, not as a step with nothing to do.
  const settled: PromiseSettledResult<UnitResult[]>[] = batch.map((r) => ({status: 'rejected', reason: new BugError(`step ${r.step.id} did not run`)}))
  const list = new Listr(
    batch.map((r, j) => ({
      title: `[${r.index + 1}/${total}] ${r.step.title}`,
      task: async (_ctx: unknown, task: {output: string}) => {
        let units: UnitResult[]
        try {
          units = await r.run()
        } catch (error) {
          settled[j] = {status: 'rejected', reason: error}
          throw error
        }
        settled[j] = {status: 'fulfilled', value: units}
        task.output = units.map(line).join('\n')
        const failed = units.filter((u) => u.status === 'failed')
        if (failed.length) throw new Error(failed.map((u) => u.detail).join('; '))
      },
      rendererOptions: {persistentOutput: true},
    })),
    {
      concurrent: true,
      exitOnError: false,
      registerSignalListeners: false,
      renderer: 'default',
      rendererOptions: {logger: new ListrLogger({processOutput: new ProcessOutput(process.stderr, process.stderr)})},
    },
  )
  await list.run().catch(() => {})
  return settled
}

/** One step's progress (a batch of one). */
export async function listrStep(step: Step, index: number, total: number, run: () => Promise<UnitResult[]>): Promise<UnitResult[]> {
  const [x] = await listrSteps([{step, index, run}], total)
  if (x.status === 'rejected') throw x.reason
  return x.value
}

/**
 * Progress of one piece of work over several hosts that is not a playbook step (a backup): the
 * same display as a step, listr2 on a terminal, else a line before and one per host after.
 */
export async function hostsProgress(
  title: string,
  run: () => Promise<UnitResult[]>,
  out: {terminal: boolean; progress: (line: string) => void},
): Promise<UnitResult[]> {
  if (out.terminal)
    return listrStep({id: 'work', title, hosts: 'none', action: 'none', confirm: false, recheck: false, alongside: false, params: {}}, 0, 1, run)
  out.progress(title)
  const units = await run()
  for (const u of units) out.progress(`    ${line(u)}`)
  return units
}
