// Type-aware lint. Besides the usual rules it proves the layering of DESIGN §3 /
// STYLE "Layout and the import rule": services → actors, infra → shared, with
// shared/ and actors/ pure (no client libraries, no node: built-ins).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

const io = [
  '@nats-io/*',
  'kafkajs',
  'ioredis',
  'pino',
  'pino-pretty',
  'node:*',
  'testcontainers',
  '@testcontainers/*',
];
const ban = (groups, message) => ({
  'no-restricted-imports': ['error', { patterns: [{ group: groups, message }] }],
});

export default tseslint.config(
  { ignores: ['node_modules/**', '.cache/**', 'docs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'import-x/no-cycle': 'error',
      'no-console': 'error',
    },
  },
  {
    files: ['shared/**/*.ts'],
    rules: ban(
      ['../*', ...io, 'xstate'],
      'shared/ is the pure vocabulary: no I/O, no client libraries, nothing outside shared/.',
    ),
  },
  {
    files: ['actors/**/*.ts'],
    rules: ban(
      [...io, '../../infra/*', '../../services/*', '../../shared/*/**', '!../../shared/index.js'],
      'actors/ imports shared/ (through shared/index.js) and xstate only.',
    ),
  },
  {
    files: ['infra/**/*.ts'],
    rules: ban(
      ['../../actors/*', '../../services/*', '../actors/*', '../services/*'],
      'infra/ imports shared/ and client libraries, never actors/ or services/.',
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
