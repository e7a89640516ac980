import {defineConfig} from 'vitest/config'

// Three projects: unit tests (parsers, planners, the engine and services on a fake shell: Node
// only, the fast loop, `npm run test:unit`); integration tests beside them that drive real
// processes (a throwaway OpenSSH sshd, headless Chromium, the built CLI); and the lab suite,
// which boots real Cyrus murders and runs commands through SSH. `npm test` runs all three.
const PROCESS_TESTS = [
  'test/unit/ssh/pool.test.ts',
  'test/unit/report/browser.test.ts',
  'test/unit/report/cli.test.ts',
  'test/unit/cli.test.ts',
  'test/unit/cli-help.test.ts',
]

export default defineConfig({
  test: {
    disableConsoleIntercept: true,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          exclude: PROCESS_TESTS,
          testTimeout: 30_000,
          // The same as the lab's: projects with one maxWorkers run as one group, side by side.
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'integration',
          include: PROCESS_TESTS,
          testTimeout: 30_000,
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'lab',
          include: ['test/lab/**/*.test.ts'],
          // Two files at a time, each on a lab of its own at its worker's addresses
          // (test/lab/file-lab.ts): most of a lab test's time is Cyrus waiting on its disk.
          fileParallelism: true,
          maxWorkers: 2,
          setupFiles: ['test/lab/file-lab.ts'],
          testTimeout: 240_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
})
