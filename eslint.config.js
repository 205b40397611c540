// @ts-check
// ESLint flat config (issue 19). Formatting is Prettier's job (`npm run format`; eslint-config-prettier,
// last below, turns off every rule that would fight it); import cycles are checked by madge in `npm run lint`,
// because it counts type-only imports, which import-x/no-cycle always skips.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Node built-ins under both spellings (`fs`, `node:fs`) but buffer, and crypto (below); `node:`-only ones (`node:test`) by prefix. */
const ioBuiltins = [...builtinModules.filter((name) => name !== 'buffer' && name !== 'crypto'), 'node:*', '!node:buffer', '!node:crypto'];

export default defineConfig([
  globalIgnores(['dist/', 'bench/results/', 'coverage/']),
  {
    files: ['**/*.{ts,js}'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        // Each file gets its nearest tsconfig.json: src/ the root one, test/ and bench/ their own.
        projectService: { allowDefaultProject: ['vitest.config.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `void promise` is how this code base marks a deliberate fire-and-forget; any other unhandled promise is a bug.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      // Fastify plugins and handlers, SDK tool callbacks and Promise-returning interface methods are `async` by contract
      // even when their body has nothing to await; making them return Promise.resolve(...) by hand would be noise.
      '@typescript-eslint/require-await': 'off',
      // A conditional call written as a parenthesized ternary statement is a deliberate style here (held-listen.ts).
      '@typescript-eslint/no-unused-expressions': ['error', { allowTernary: true }],
      // Unused bindings are errors, but `_`-prefixed ones (a callback's unused parameter, a destructured rest) are deliberate.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Tests and benchmarks read wire JSON (`await res.json()`, `JSON.parse`) as `any` and poke at it; `expect` is the
    // check there, and typing every probe would add nothing. Production code (src/) keeps all of these on.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // Pure protocol functions: no I/O, no clock-or-randomness-bearing modules, no layer above them.
    files: ['src/mcp/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          // A digest is computation, not I/O: the deterministic `inputRequests` keys are sha256 of method and params.
          paths: ['node:crypto', 'crypto'].map((name) => ({
            name,
            allowImportNames: ['createHash'],
            message: 'src/mcp/ is pure: only createHash (deterministic) may come from node:crypto.',
          })),
          patterns: [
            {
              group: ioBuiltins,
              message: 'src/mcp/ is pure protocol code: no Node I/O modules (Buffer is a global; node:buffer is allowed).',
            },
            {
              group: ['undici', 'undici/*', 'fastify', 'fastify/*', '@fastify/*', 'pino', 'pino/*', 'prom-client', '@opentelemetry/*'],
              message: 'src/mcp/ is pure protocol code: no HTTP, logging, metrics or tracing libraries.',
            },
            {
              regex: '^(\\.\\./)+(upstream|proxy|http|flows|observability|session)(/|$)',
              message: 'src/mcp/ is the bottom layer: it must not import the I/O layers above it.',
            },
            {
              regex: '^(\\.\\./)+(app|main|config)\\.js$',
              message: 'src/mcp/ is the bottom layer: it must not import the application wiring.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  prettier,
]);
