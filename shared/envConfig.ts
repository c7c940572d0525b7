/**
 * Service settings from the environment: numeric `ALCOR_*` variables mapped onto
 * config keys, and a config error on a key reported under the variable it came
 * from, so a bad setting fails at start naming what to fix.
 */
import { ConfigError } from './errors.js';

export type EnvNames = Readonly<Record<string, string>>;

/** The numeric variables of `names` that are set, by config key. */
export function numbersFromEnv(env: NodeJS.ProcessEnv, names: EnvNames): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, key] of Object.entries(names)) {
    const value = env[name];
    if (value === undefined) continue;
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n))
      throw new ConfigError(name, `${JSON.stringify(value)} is not a number`);
    out[key] = n;
  }
  return out;
}

/** Runs `parse`; a ConfigError on a key of `names` is re-raised under its variable. */
export function withEnvNames<T>(names: EnvNames, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof ConfigError) {
      const name = Object.entries(names).find(([, key]) => key === err.field)?.[0];
      if (name) throw new ConfigError(name, err.message);
    }
    throw err;
  }
}
