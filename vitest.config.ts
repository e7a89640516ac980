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
        },
      },
      {
        test: {
          name: 'lab',
          include: ['test/lab/**/*.test.ts'],
          // One lab for the whole suite: files run one after another in one worker.
          fileParallelism: false,
          globalSetup: ['test/lab/global-setup.ts'],
          testTimeout: 240_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
})
