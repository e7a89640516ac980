// Progress of a playbook on a terminal, through listr2: one small task list per step, so that
// nothing is rendering while a confirmation is asked between steps. Output goes to stderr;
// stdout stays for results.
import {Listr, ListrLogger, ProcessOutput} from 'listr2'
import type {EngineHooks, UnitResult} from '../engine/engine.js'

const line = (u: UnitResult) => `${u.status === 'failed' ? 'FAILED' : u.status}${u.host ? ` ${u.host}` : ''}${u.detail ? `: ${u.detail}` : ''}`

export const listrStep: NonNullable<EngineHooks['runStep']> = async (step, index, total, run) => {
  let units: UnitResult[] = []
  let thrown: unknown
  const list = new Listr(
    [
      {
        title: `[${index + 1}/${total}] ${step.title}`,
        task: async (_ctx, task) => {
          try {
            units = await run()
          } catch (error) {
            thrown = error
            throw error
          }
          task.output = units.map(line).join('\n')
          const failed = units.filter((u) => u.status === 'failed')
          if (failed.length) throw new Error(failed.map((u) => u.detail).join('; '))
        },
        rendererOptions: {persistentOutput: true},
      },
    ],
    {
      concurrent: false,
      exitOnError: false,
      registerSignalListeners: false,
      renderer: 'default',
      rendererOptions: {logger: new ListrLogger({processOutput: new ProcessOutput(process.stderr, process.stderr)})},
    },
  )
  await list.run().catch(() => {})
  if (thrown) throw thrown
  return units
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
  if (out.terminal) return listrStep({id: 'work', title, hosts: 'none', action: 'none', confirm: false, recheck: false, params: {}}, 0, 1, run)
  out.progress(title)
  const units = await run()
  for (const u of units) out.progress(`    ${line(u)}`)
  return units
}
