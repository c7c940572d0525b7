/**
 * promtool, to check the alert rules in deploy/prometheus (the tests' static
 * checks): built once from Prometheus's Go module (its go.mod has replace
 * directives, so `go install pkg@version` refuses it: the module is downloaded and
 * built in place), cached under .cache/bin. Undefined without a Go toolchain.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, cached } from './cache.js';
import { run, which } from './exec.js';

export const PROMETHEUS_VERSION = 'v0.304.2';
const MODULE = 'github.com/prometheus/prometheus';

export async function ensurePromtool(): Promise<string | undefined> {
  const override = process.env.ALCOR_PROMTOOL_BIN;
  if (override) return override;
  const target = join(cacheDir('bin'), `promtool-${PROMETHEUS_VERSION}`);
  if (existsSync(target)) return target;
  const go = await which('go');
  if (!go) return undefined;
  await cached(target, async (tmp) => {
    const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' };
    const { stdout } = await run(
      go,
      ['mod', 'download', '-json', `${MODULE}@${PROMETHEUS_VERSION}`],
      {
        env,
        timeoutMs: 900_000,
      },
    );
    const dir = (JSON.parse(stdout) as { Dir?: string }).Dir;
    if (!dir) throw new Error(`go mod download gave no directory for ${MODULE}`);
    await run(go, ['build', '-o', tmp, './cmd/promtool'], { env, cwd: dir, timeoutMs: 900_000 });
  });
  return target;
}
