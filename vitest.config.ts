import {defineConfig} from 'vitest/config'

// Two projects: fast unit tests (parsers, planners, SSH against a throwaway sshd),
// and the lab suite, which boots one real Cyrus murder and runs commands through SSH.
export default defineConfig({
  test: {
    disableConsoleIntercept: true,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 30_000,
          // The same as the lab's: projects with one maxWorkers run as one group, side by side.
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
