// Type-aware lint. Besides the usual rules it proves the layering of DESIGN §3 /
// STYLE "Layout and the import rule": services → actors, infra → shared, with
// shared/ and actors/ pure (no client libraries, no node: built-ins).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

const io = [
  '@nats-io/*',
  'kafkajs',
  'ioredis',
  'pino',
  'pino-pretty',
  'prom-client',
  'node:*',
  'testcontainers',
  '@testcontainers/*',
  '@grpc/*',
];
const ban = (groups, message) => ({
  'no-restricted-imports': ['error', { patterns: [{ group: groups, message }] }],
});
const zone = (target, from, message) => ({ target, from, message });

export default tseslint.config(
  { ignores: ['node_modules/**', '.cache/**', 'docs/**', 'dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver()] },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'import-x/no-cycle': 'error',
      'import-x/no-unresolved': 'error',
      // Layering by folder: services → actors, infra → shared.
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            zone(
              './shared',
              ['./actors', './infra', './services', './test', './scripts'],
              'shared/ imports nothing outside itself.',
            ),
            zone(
              './actors',
              ['./infra', './services', './test', './scripts'],
              'actors/ imports shared/ and xstate only.',
            ),
            zone(
              './infra',
              ['./actors', './services', './test'],
              'infra/ imports shared/ and client libraries, never actors/ or services/.',
            ),
          ],
        },
      ],
      'no-console': 'error',
    },
  },
  {
    files: ['shared/**/*.ts'],
    rules: ban([...io, 'xstate'], 'shared/ is the pure vocabulary: no I/O, no client libraries.'),
  },
  {
    files: ['actors/**/*.ts'],
    rules: ban(
      [...io, '../../shared/*/**', '!../../shared/index.js'],
      'actors/ imports shared/ through shared/index.js, and xstate; no I/O.',
    ),
  },
  {
    files: ['services/cli/**/*.ts', 'test/**/*.ts', 'scripts/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
