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
          // Files run one after another, each on a lab of its own (test/lab/file-lab.ts).
          fileParallelism: false,
          setupFiles: ['test/lab/file-lab.ts'],
          testTimeout: 240_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
})
