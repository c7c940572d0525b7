/**
 * CLI output conventions: readable tables by default, `--json` for scripts, errors
 * on stderr that say what to do, and exit codes that mean something.
 */
import { AlcorError } from '../../shared/index.js';
export const EXIT = {
  ok: 0,
  /** The system could not be reached or failed. */
  failure: 1,
  /** Bad flags or arguments. */
  usage: 2,
  /** What was asked for does not exist (yet). */
  notFound: 3,
  /** The command ran, but not all of it took (e.g. some intents were rejected). */
  incomplete: 4,
} as const;

export class CliError extends AlcorError {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super('cli', message);
  }
}

/** A plain aligned table: numbers right-aligned, text left-aligned. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const numeric = headers.map(
    (_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'),
  );
  const line = (r: string[]): string =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

export const fixed = (n: number, digits: number): number => Number(n.toFixed(digits));

/** A command's result on stdout: JSON for `--json`, else its readable form. */
export function print<T>(json: boolean, report: T, render: (report: T) => string): void {
  process.stdout.write(`${json ? JSON.stringify(report, null, 2) : render(report)}\n`);
}
