/**
 * Where provisioned binaries and jars are cached between runs (git-ignored), and
 * where each run keeps its servers' data and logs.
 */
import { mkdirSync, mkdtempSync, existsSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository (or installed package) root: the nearest directory above this
 * file holding package.json — the same from the sources and from the compiled
 * output under dist/.
 */
export const repoRoot = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 6; up++, dir = dirname(dir))
    if (existsSync(join(dir, 'package.json'))) return dir;
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
})();

export function cacheDir(...parts: string[]): string {
  const base = process.env.ALCOR_CACHE_DIR ?? join(repoRoot, '.cache');
  const dir = join(base, ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A fresh directory for one run's server data and logs. */
export function runDir(prefix = 'alcor-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Builds `target` through `build(tmp)` into a temporary sibling and renames it into
 * place, so an interrupted build never leaves a half-made cache entry.
 */
const inFlight = new Map<string, Promise<string>>();

export function cached(target: string, build: (tmp: string) => Promise<void>): Promise<string> {
  if (existsSync(target)) return Promise.resolve(target);
  // Callers in the same process (two Kafka clusters starting at once) share one build.
  let pending = inFlight.get(target);
  if (!pending) {
    pending = buildInto(target, build).finally(() => inFlight.delete(target));
    inFlight.set(target, pending);
  }
  return pending;
}

async function buildInto(target: string, build: (tmp: string) => Promise<void>): Promise<string> {
  mkdirSync(dirname(target), { recursive: true });
  const tmp = `${target}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    await build(tmp);
    renameSync(tmp, target);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return target;
}
