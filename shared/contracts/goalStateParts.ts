/**
 * Splitting a goal-state message into parts that each fit a hop's limit (issue 22),
 * pure. Sizes are the bytes of the message's JSON encoding, which is what goes on
 * the wire; the caller gives the limit it learned from the server (with headroom
 * for headers), never a constant.
 */
import { fail, ok, type Result } from './validation.js';
import type { GoalStateMessage, GoalStateOp } from './goalState.js';

const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8');

/**
 * The message as parts of at most `maxBytes` each (encoded), in op order; the
 * message itself when it fits. A part split again keeps its place in the whole
 * (`part.first` counts from the whole message's first op). An op that alone
 * cannot fit is an error naming it (code `too_large`, path `ops.<i>`).
 */
export function splitGoalState(
  message: GoalStateMessage,
  maxBytes: number,
): Result<GoalStateMessage[]> {
  const whole = utf8(JSON.stringify(message));
  if (whole <= maxBytes) return ok([message]);
  const base = message.part?.first ?? 0;
  const total = message.part?.total ?? message.ops.length;
  // The envelope of a part with the widest numbers it can carry, and no op.
  const { ops: _ops, ...envelope } = message;
  const frame = utf8(JSON.stringify({ ...envelope, part: { first: total, total }, ops: [] }));
  const parts: GoalStateMessage[] = [];
  let ops: GoalStateOp[] = [];
  let first = base;
  let size = frame;
  message.ops.forEach((op, i) => {
    const bytes = utf8(JSON.stringify(op)) + 1; // and its comma
    if (ops.length > 0 && size + bytes > maxBytes) {
      parts.push({ ...envelope, part: { first, total }, ops });
      ops = [];
      first = base + i;
      size = frame;
    }
    ops.push(op);
    size += bytes;
  });
  if (ops.length > 0) parts.push({ ...envelope, part: { first, total }, ops });
  for (const [n, part] of parts.entries()) {
    if (part.ops.length === 1 && utf8(JSON.stringify(part)) > maxBytes) {
      const op = part.ops[0]!;
      const index = part.part!.first - base;
      return fail(
        'too_large',
        `ops.${index} (${op.kind} ${op.key}) takes ${utf8(JSON.stringify(op))} bytes alone; a part may take ${maxBytes} (part ${n + 1} of ${parts.length})`,
        `ops.${index}`,
      );
    }
  }
  return ok(parts);
}
