/**
 * CLI output conventions: readable tables by default, `--json` for scripts, errors
 * on stderr that say what to do, and exit codes that mean something.
 */
import { stringify as stringifyYaml } from 'yaml';
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
  /** The server refused these credentials, or this user may not do that. */
  denied: 5,
} as const;

export class CliError extends AlcorError {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super('cli', message);
  }
}

/** How results are printed: `-o table|wide|json|yaml`, and `--no-headers` for tables. */
export type OutputFormat = 'table' | 'wide' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'wide', 'json', 'yaml'];

const output = { format: 'table' as OutputFormat, headers: true };

/** Set once from the global flags, before a command runs. */
export function setOutput(format: OutputFormat, headers: boolean): void {
  output.format = format;
  output.headers = headers;
}

/** Whether tables keep their header (and summary) lines: not with `--no-headers`. */
export const headers = (): boolean => output.headers;

/** Whether `-o wide` asked for the extra columns. */
export const wide = (): boolean => output.format === 'wide';

/** A plain aligned table: numbers right-aligned, text left-aligned; `--no-headers` drops the first line. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = headers.map((h, i) =>
    Math.max(output.headers ? h.length : 0, ...cells.map((r) => r[i]?.length ?? 0)),
  );
  const numeric = headers.map(
    (_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'),
  );
  const line = (r: string[]): string =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [...(output.headers ? [line(headers)] : []), ...cells.map(line)].join('\n');
}

/** `someKey` → `some_key`; keys already in snake_case (or data such as error codes) stay. */
const snake = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * A report as scripts read it: every key in snake_case, at every depth. Reports
 * keep ids in values (arrays of records), never as keys, so no id is rewritten.
 */
export function snakeKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeKeys);
  if (value instanceof Date) return value.toISOString();
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[snake(k)] = snakeKeys(v);
  return out;
}

/** A few of a list for a table cell: `-`, all of up to three, or three and how many. */
export const few = (xs: readonly string[]): string =>
  xs.length === 0
    ? '-'
    : xs.length <= 3
      ? xs.join(',')
      : `${xs.slice(0, 3).join(',')},… (${xs.length})`;

export const fixed = (n: number, digits: number): number => Number(n.toFixed(digits));

/**
 * A command's result on stdout: its readable form (table, wide), or the report as
 * JSON or YAML with snake_case keys (`-o json|yaml`; `--json` is `-o json`).
 */
export function print<T>(json: boolean, report: T, render: (report: T) => string): void {
  const format = json ? 'json' : output.format;
  const text =
    format === 'json'
      ? JSON.stringify(snakeKeys(report), null, 2)
      : format === 'yaml'
        ? stringifyYaml(snakeKeys(report)).trimEnd()
        : render(report);
  process.stdout.write(`${text}\n`);
}

/**
 * A server's refusal as one line that says what it means here and what to do,
 * with its exit code; undefined for an error that is not the server's.
 */
export function explainServerError(err: unknown, natsUrl: string): CliError | undefined {
  if (!(err instanceof Error)) return undefined;
  const { name, message } = err;
  const missing = (stream?: string): CliError =>
    new CliError(
      `the NATS at ${natsUrl} ${stream ? `has no stream ${stream}` : "lacks this system's streams (stream not found)"}: it is not this system's NATS, or no controller has started on it yet (controllers create the streams and buckets)`,
      EXIT.notFound,
    );
  if (name === 'StreamNotFoundError') return missing();
  const direct = /no responders: '\$JS\.API\.DIRECT\.GET\.([^.']+)/.exec(message);
  if (direct) return missing(direct[1]);
  if (/no responders: '\$JS\.API/.test(message) || name === 'JetStreamNotEnabledError')
    return new CliError(
      `JetStream does not answer on the NATS at ${natsUrl}: it is not enabled there, or this user's account has none`,
    );
  if (name === 'PermissionViolationError' || /permissions violation/i.test(message))
    return new CliError(
      `the NATS at ${natsUrl} refused it (${message}): these credentials may not do that — the operator role reads only (docs/runbook.md, "Credentials")`,
      EXIT.denied,
    );
  if (name === 'TimeoutError' || /^timeout$/i.test(message))
    return new CliError(`the NATS at ${natsUrl} did not answer in time (${message})`);
  return undefined;
}

/** A connection that failed, in one line: where, why, and what to do. */
export function explainConnectError(err: unknown, natsUrl: string): CliError {
  const message = (err as Error).message;
  if (/authorization violation|authentication/i.test(message))
    return new CliError(
      `the NATS at ${natsUrl} refused the connection (${message}): pass credentials with --creds <file>, --nkey <file> or a --context (docs/runbook.md, "Credentials")`,
      EXIT.denied,
    );
  return new CliError(
    `cannot reach NATS at ${natsUrl} (${message}): start the system (README) or pass --nats-url / NATS_URL`,
  );
}
