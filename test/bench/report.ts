/**
 * Benchmarks write their figures to docs/bench/<name>.json and a section of a doc
 * (docs/performance.md unless told) between `<!-- <name>:start -->` and
 * `<!-- <name>:end -->`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { format, resolveConfig } from 'prettier';
import { repoRoot } from '../../infra/index.js';

/** The p-th percentile (nearest rank) of `xs`; NaN when empty. */
export { percentile as pct } from '../../shared/index.js';

export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} × ${cpu}, Node ${process.version}`;
}

export async function writeReport(
  name: string,
  data: unknown,
  markdown: string,
  options: { doc?: string } = {},
): Promise<void> {
  const dir = join(repoRoot, 'docs', 'bench');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(data, null, 2)}\n`);
  const file = join(repoRoot, 'docs', options.doc ?? 'performance.md');
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  let doc = existsSync(file)
    ? readFileSync(file, 'utf8')
    : '# Performance\n\nEach section is written by its benchmark (`test/bench`); rerun it to refresh the figures.\n';
  const section = `${start}\n${markdown.trim()}\n${end}`;
  if (doc.includes(start) && doc.includes(end)) {
    doc = doc.slice(0, doc.indexOf(start)) + section + doc.slice(doc.indexOf(end) + end.length);
  } else {
    doc = `${doc.trimEnd()}\n\n${section}\n`;
  }
  // Formatted as the repository's check expects (tables aligned).
  const config = await resolveConfig(file);
  writeFileSync(file, await format(doc, { ...config, filepath: file }));
}

export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/**
 * A tool's flags: its usage on `--help` or `-h` (exit 0) or on a flag it does not
 * know (exit 2), never a stack trace.
 */
export function toolArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  tool: string,
  usage: string,
  options: O,
) {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(usage);
    process.exit(0);
  }
  try {
    return parseArgs({ args, options }).values;
  } catch (err) {
    return usageError(tool, usage, (err as Error).message);
  }
}

/** `value` as a whole number from 1 to `max`, or the usage and exit 2. */
export function wholeArg(tool: string, usage: string, name: string, value: string, max: number) {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max)
    usageError(tool, usage, `--${name} ${value}: a whole number from 1 to ${max}`);
  return Number(value);
}

function usageError(tool: string, usage: string, message: string): never {
  process.stderr.write(`${tool}: ${message}\n\n${usage}`);
  process.exit(2);
}
