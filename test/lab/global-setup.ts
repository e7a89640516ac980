// Boots one standard lab for the whole lab suite and brings it down after, whatever happened.
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {TestProject} from 'vitest/node'
import {labDown, labUp} from '../../src/lab/lab.js'

// Several checkouts may run their lab suites on one machine: each gives its own prefix.
export const LAB_BASE = process.env.MURDERCTL_TEST_LAB_BASE ?? '127.0.20'

export default async function setup(project: TestProject) {
  const dir = process.env.MURDERCTL_TEST_LAB ?? mkdtempSync(join(tmpdir(), 'murderctl-lab-'))
  const started = Date.now()
  const state = await labUp({dir, topology: 'standard', base: LAB_BASE, mailboxes: 40, log: (m) => process.stderr.write(`[lab] ${m}\n`)})
  process.stderr.write(`[lab] standard lab up in ${((Date.now() - started) / 1000).toFixed(1)}s at ${dir}\n`)
  project.provide('labDir', dir)
  project.provide('labInventory', state.inventory)
  return async () => {
    await labDown({dir})
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    labDir: string
    labInventory: string
  }
}
