/**
 * Credentials never reach a terminal or a log in clear (DESIGN §9): the full
 * `NAME=value` set goes to a file only its owner can read, and what is shown names
 * it with every secret masked.
 */
import { writeFileSync } from 'node:fs';
import { redactUrl } from './redis/probe.js';

/** A value with any secret in it masked: a password variable, a URL's password. */
export function redactEnvValue(name: string, value: string): string {
  if (/(PASSWORD|SECRET|TOKEN)(_FILE)?$/.test(name) && !name.endsWith('_FILE')) return '***';
  return /^[a-z]+:\/\//i.test(value) ? redactUrl(value) : value;
}

/** Writes `NAME='value'` lines a shell can source (`set -a; . file`), mode 0600. */
export function writeEnvFile(file: string, entries: Record<string, string>): void {
  const quote = (v: string): string => `'${v.replaceAll("'", `'\\''`)}'`;
  const text = Object.entries(entries)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join('\n');
  writeFileSync(file, text + '\n', { mode: 0o600 });
}
