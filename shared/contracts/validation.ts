/**
 * From schema issues to the wire's error detail `{code, message, path}`: one
 * specific code per kind of mistake, the offending field as a dotted path.
 */
import type { z } from 'zod';
import type { ErrorDetail } from '../errors.js';

export type Result<T> = { ok: true; value: T } | { ok: false; error: ErrorDetail };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = (
  code: string,
  message: string,
  path?: string,
): { ok: false; error: ErrorDetail } => ({
  ok: false,
  error: path === undefined || path === '' ? { code, message } : { code, message, path },
});

export function pathOf(path: ReadonlyArray<PropertyKey>, prefix?: string): string {
  const parts = prefix ? [prefix] : [];
  for (const p of path) parts.push(String(p));
  return parts.join('.');
}

/** The first issue, as a wire error. */
export function issueToError(issue: z.core.$ZodIssue, prefix?: string): ErrorDetail {
  const path = pathOf(issue.path, prefix);
  const where = path === '' ? 'the message' : path;
  const detail = (code: string, message: string): ErrorDetail =>
    path === '' ? { code, message } : { code, message, path };
  switch (issue.code) {
    case 'custom': {
      const params = (issue as { params?: { code?: string } }).params;
      return detail(params?.code ?? 'invalid_value', `${where}: ${issue.message}`);
    }
    case 'unrecognized_keys': {
      const key = issue.keys[0] ?? '?';
      const at = pathOf([...issue.path, key], prefix);
      return {
        code: 'unknown_field',
        message: `${at}: unknown field (unknown fields are rejected, not ignored)`,
        path: at,
      };
    }
    case 'invalid_type':
      // Parsed JSON never holds undefined, so an undefined input is a missing field.
      if ((issue as { input?: unknown }).input === undefined) {
        return detail('missing_field', `${where}: required ${issue.expected} is missing`);
      }
      if (path === '' && issue.expected === 'object')
        return detail('not_object', 'the message must be a JSON object');
      return detail(
        'invalid_type',
        `${where}: expected ${issue.expected}, got ${describe((issue as { input?: unknown }).input)}`,
      );
    case 'invalid_value':
      return detail(
        'invalid_value',
        `${where}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`,
      );
    case 'too_big':
      if (issue.origin === 'array')
        return detail('too_many', `${where}: at most ${String(issue.maximum)} items`);
      if (issue.origin === 'string')
        return detail('too_long', `${where}: at most ${String(issue.maximum)} characters`);
      return detail('out_of_range', `${where}: at most ${String(issue.maximum)}`);
    case 'too_small':
      if (issue.origin === 'array')
        return detail('too_few', `${where}: at least ${String(issue.minimum)} items`);
      if (issue.origin === 'string')
        return detail('too_short', `${where}: at least ${String(issue.minimum)} characters`);
      return detail('out_of_range', `${where}: at least ${String(issue.minimum)}`);
    default:
      return detail('invalid_value', `${where}: ${issue.message}`);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** Validates `input` against `schema`: the value, or the first issue as a wire error. */
export function parseWith<T>(schema: z.ZodType<T>, input: unknown, what: string): Result<T> {
  const parsed = schema.safeParse(input, { reportInput: true });
  if (parsed.success) return ok(parsed.data);
  const first = parsed.error.issues[0];
  return first
    ? { ok: false, error: issueToError(first) }
    : fail('invalid_value', `invalid ${what}`);
}
