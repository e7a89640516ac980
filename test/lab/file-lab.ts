// Every lab test file gets a murder of its own, booted before its first test and brought down
// after its last, whatever happened: a file that leaves its lab broken (a fault matrix, a split
// brain) cannot fail the files after it, and the suite passes in any order.
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll} from 'vitest'
import {labDown, labUp} from '../../src/lab/lab.js'
import {fileLabBase, fileLabOptions, setLab} from './helpers.js'

// Several checkouts may run their lab suites on one machine: each gives its own prefix
// (MURDERCTL_TEST_LAB_BASE), and each test worker takes its own range above it.
export const LAB_BASE = fileLabBase()

let dir: string | undefined

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'murderctl-lab-'))
  const started = Date.now()
  // A file may ask for another murder (useFileLab at its top level, which has run by now).
  const {topology = 'standard', mupdatePort} = fileLabOptions()
  const state = await labUp({dir, topology, base: LAB_BASE, mailboxes: 40, mupdatePort, log: (m) => process.stderr.write(`[lab] ${m}\n`)})
  process.stderr.write(
    `[lab] ${topology} lab${mupdatePort ? ` (MUPDATE on ${mupdatePort})` : ''} up in ${((Date.now() - started) / 1000).toFixed(1)}s at ${dir}\n`,
  )
  setLab({dir, inventory: state.inventory})
})

afterAll(async () => {
  if (dir) await labDown({dir})
})
