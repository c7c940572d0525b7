#!/usr/bin/env node
// The `alcor` command: the compiled CLI (dist/, made by `npm run build`, which the
// README's commands run), or the TypeScript sources through tsx when there is no
// build or ALCOR_CLI_FROM_SOURCE=1.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const compiled = new URL('../../dist/services/cli/main.js', import.meta.url);
if (process.env.ALCOR_CLI_FROM_SOURCE !== '1' && existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./main.ts');
}
