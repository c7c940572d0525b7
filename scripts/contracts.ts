/**
 * `npm run contracts` (node --import tsx scripts/contracts.ts): writes the JSON
 * Schemas (docs/schemas), the AsyncAPI document (docs/asyncapi.yaml) and the
 * generated tables of docs/contracts.md from shared/contracts and
 * scripts/contracts/channels.ts. `--check` writes nothing and exits 1 naming each
 * stale file. Schema files no longer generated are removed.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REGENERATE, SCHEMA_DIR, generateContracts } from './contracts/generate.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const check = process.argv.includes('--check');
const files = await generateContracts(root);
const stale: string[] = [];
for (const [path, content] of files) {
  const full = join(root, path);
  let current: string | undefined;
  try {
    current = readFileSync(full, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === content) continue;
  stale.push(path);
  if (!check) {
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
  }
}
const dir = join(root, SCHEMA_DIR);
for (const name of existsSync(dir) ? readdirSync(dir) : []) {
  const path = `${SCHEMA_DIR}/${name}`;
  if (files.has(path)) continue;
  stale.push(`${path} (no longer generated)`);
  if (!check) rmSync(join(root, path));
}
if (check && stale.length > 0) {
  console.error(`stale: ${stale.join(', ')}; run ${REGENERATE}`);
  process.exit(1);
}
console.log(stale.length === 0 ? `${files.size} files up to date` : `wrote ${stale.join(', ')}`);
