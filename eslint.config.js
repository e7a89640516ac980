// Lint: the recommended JavaScript and TypeScript rules; formatting is prettier's job.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {ignores: ['dist/', 'node_modules/', 'coverage/', '.ci/']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {files: ['**/*.mjs'], languageOptions: {globals: {process: 'readonly', console: 'readonly'}}},
  {
    rules: {
      // Test fixtures and JSON from Cyrus are untyped by nature; an explicit `any` is a decision.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none'}],
      // An empty catch says "this failure is expected and harmless" with its comment.
      'no-empty': ['error', {allowEmptyCatch: true}],
    },
  },
)
