/**
 * Goal states too large for a hop (issue 22): split into parts that each fit,
 * re-split at a smaller hop, reassembled by the agent once every op is in.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  GoalStateMessageSchema,
  parseGoalState,
  splitGoalState,
  type GoalStateMessage,
  type GoalStateOp,
} from '../../shared/index.js';
import { nca } from '../../actors/index.js';
import { parseWith } from '../../shared/contracts/validation.js';

const bytes = (m: unknown): number => Buffer.byteLength(JSON.stringify(m), 'utf8');

function portOp(i: number): GoalStateOp {
  return {
    op: 'upsert',
    kind: 'neighbor',
    key: `neighbor:p${i}`,
    rev: 10 + i,
    value: {
      portId: `p${i}`,
      subnetId: 's1',
      ip: `10.0.${Math.floor(i / 250)}.${(i % 250) + 2}`,
      mac: `02:00:00:00:${(Math.floor(i / 256) % 256).toString(16).padStart(2, '0')}:${(i % 256).toString(16).padStart(2, '0')}`,
      hostId: `h${i % 7}`,
      securityGroupIds: ['sg-default'],
    },
  };
}

const big = (n: number, mode: 'full' | 'delta' = 'full'): GoalStateMessage => ({
  vpcId: 'vpc-big',
  bucket: 9,
  revision: 5000,
  mode,
  target: 'h1',
  ops: Array.from({ length: n }, (_, i) => portOp(i)),
});

const S = suite('splitting a goal state to fit a limit');

S('a message that fits is itself, with no part', () => {
  const m = big(3);
  const r = splitGoalState(m, 64 * 1024);
  assert.ok(r.ok);
  assert.equal(r.ok && r.value, [m]);
});

S('a large full: every part fits, parses, and the parts hold the ops in order', () => {
  const m = big(1000);
  assert.ok(bytes(m) > 100_000, 'the message is well over the limit');
  const r = splitGoalState(m, 8 * 1024);
  assert.ok(r.ok);
  const parts = r.ok ? r.value : [];
  assert.ok(parts.length > 10, `${parts.length} parts`);
  let next = 0;
  for (const p of parts) {
    assert.ok(bytes(p) <= 8 * 1024, `part of ${bytes(p)} bytes`);
    const parsed = parseGoalState(JSON.parse(JSON.stringify(p)));
    assert.ok(parsed.ok, JSON.stringify(!parsed.ok && parsed.error));
    assert.is(p.part!.first, next);
    assert.is(p.part!.total, 1000);
    next += p.ops.length;
  }
  assert.is(next, 1000);
  assert.equal(
    parts.flatMap((p) => p.ops),
    m.ops,
  );
});

S('a part split again at a smaller hop keeps its place in the whole', () => {
  const first = splitGoalState(big(400), 16 * 1024);
  assert.ok(first.ok);
  const again = (first.ok ? first.value : []).flatMap((p) => {
    const r = splitGoalState(p, 4 * 1024);
    assert.ok(r.ok);
    return r.ok ? r.value : [];
  });
  assert.ok(again.length > (first.ok ? first.value.length : 0));
  for (const p of again) assert.ok(bytes(p) <= 4 * 1024);
  const asm = new nca.PartsAssembler();
  const outcomes = again.map((p) => asm.add(p, 0));
  assert.equal(
    outcomes.map((o) => o.state),
    [...again.slice(1).map(() => 'waiting'), 'complete'],
  );
  const done = outcomes.at(-1)!;
  assert.equal(done.state === 'complete' && done.message, big(400));
});

S('an op that cannot fit alone is an error naming it', () => {
  const m = big(50);
  const r = splitGoalState(m, 250);
  assert.not.ok(r.ok);
  assert.is(!r.ok && r.error.code, 'too_large');
  assert.is(!r.ok && r.error.path, 'ops.0');
  assert.match(!r.ok ? r.error.message : '', /neighbor neighbor:p0/);
});

const A = suite('the agent reassembles parts');

const partsOf = (m: GoalStateMessage, limit: number): GoalStateMessage[] => {
  const r = splitGoalState(m, limit);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
};

A('parts in any order, some twice: the whole once, when the last op is in', () => {
  const m = big(300);
  const parts = partsOf(m, 6 * 1024);
  const shuffled = [...parts].reverse();
  const asm = new nca.PartsAssembler();
  const seen = [...shuffled.slice(0, 2), ...shuffled].map((p) => asm.add(p, 0).state);
  assert.is(seen.filter((s) => s === 'complete').length, 1);
  assert.is(seen.at(-1 - (shuffled.length - parts.length)), 'complete');
  assert.is(asm.size, 0);
});

A('a whole message passes through; a part alone waits (positive control)', () => {
  const asm = new nca.PartsAssembler();
  const small = big(2);
  assert.equal(asm.add(small, 0), { state: 'complete', message: small });
  assert.is(asm.add(partsOf(big(300), 6 * 1024)[0]!, 0).state, 'waiting');
  assert.is(asm.size, 1);
});

A('parts past the bound are dropped and their VPC named for a resync', () => {
  const asm = new nca.PartsAssembler();
  asm.add(partsOf(big(300), 6 * 1024)[0]!, 1000);
  assert.equal(asm.expire(5000, 10_000), [], 'not yet');
  assert.equal(asm.expire(11_001, 10_000), ['vpc-big']);
  assert.is(asm.size, 0);
});

A('a part claiming another total than those held: a conflict, the message dropped', () => {
  const asm = new nca.PartsAssembler();
  const [p0, p1] = partsOf(big(300), 6 * 1024);
  asm.add(p0!, 0);
  const odd = { ...p1!, part: { first: p1!.part!.first, total: 999 } };
  assert.equal(asm.add(odd, 0), { state: 'conflict', vpcId: 'vpc-big' });
  assert.is(asm.size, 0);
});

A('over the pending limit the oldest is dropped and named', () => {
  const asm = new nca.PartsAssembler({ maxPending: 2 });
  for (const revision of [1, 2, 3]) asm.add({ ...partsOf(big(300), 6 * 1024)[0]!, revision }, 0);
  assert.is(asm.size, 2);
  assert.equal(asm.expire(0, 10_000), ['vpc-big']);
});

const B = suite('goal-state parts: bad input');

B('a part must hold ops inside its total', () => {
  const m = { ...big(2), part: { first: 0, total: 5 } };
  assert.ok(parseGoalState(m).ok, 'positive control');
  const cases: Array<[unknown, string, string]> = [
    [{ ...m, part: { first: 5, total: 5 } }, 'out_of_range', 'part'],
    [{ ...m, part: { first: 4, total: 5 } }, 'out_of_range', 'part'],
    [{ ...m, ops: [] }, 'out_of_range', 'part'],
    [{ ...m, part: { first: -1, total: 5 } }, 'out_of_range', 'part.first'],
    [{ ...m, part: { first: 0, total: 0 } }, 'out_of_range', 'part.total'],
    [{ ...m, part: { first: 0, total: 5, n: 1 } }, 'unknown_field', 'part.n'],
    [{ ...m, part: { first: 0, total: 2 ** 24 } }, 'out_of_range', 'part.total'],
  ];
  for (const [input, code, path] of cases) {
    const r = parseGoalState(input);
    assert.not.ok(r.ok, JSON.stringify((input as { part: unknown }).part));
    if (!r.ok) assert.is(`${r.error.code}@${r.error.path}`, `${code}@${path}`);
  }
});

B("prev must be a revision below the message's", () => {
  const m = { ...big(2), mode: 'delta' };
  assert.ok(parseGoalState({ ...m, prev: m.revision - 1 }).ok, 'positive control');
  const cases: Array<[unknown, string, string]> = [
    [{ ...m, prev: m.revision }, 'out_of_range', 'prev'],
    [{ ...m, prev: m.revision + 4 }, 'out_of_range', 'prev'],
    [{ ...m, prev: -1 }, 'out_of_range', 'prev'],
    [{ ...m, prev: '3' }, 'invalid_type', 'prev'],
  ];
  for (const [input, code, path] of cases) {
    const r = parseGoalState(input);
    assert.not.ok(r.ok, JSON.stringify((input as { prev: unknown }).prev));
    if (!r.ok) assert.is(`${r.error.code}@${r.error.path}`, `${code}@${path}`);
  }
});

S.run();
A.run();
B.run();

const P = suite('parseGoalState: each op checked against its own schema, as the whole schema does');

P('valid and invalid messages: the same verdict and the same error as the whole schema', () => {
  const valid = big(5);
  const cases: unknown[] = [
    valid,
    { ...valid, ops: [] },
    { ...valid, part: { first: 0, total: 9 } },
    { ...valid, part: { first: 6, total: 9 } },
    { ...valid, mode: 'half' },
    { ...valid, extra: 1 },
    { ...valid, ops: [...valid.ops, { op: 'upsert', kind: 'neighbor', key: 'k', rev: 1 }] },
    { ...valid, ops: [{ ...valid.ops[0], kind: 'port' }] },
    { ...valid, ops: [{ ...valid.ops[0], op: 'move' }] },
    { ...valid, ops: [{ op: 'delete', kind: 'neighbor', key: 'k', rev: 3 }] },
    { ...valid, ops: [{ op: 'delete', kind: 'neighbor', key: 'k', rev: 3, value: {} }] },
    { ...valid, ops: [{ op: 'delete', kind: 'nothing', key: 'k', rev: 3 }] },
    { ...valid, ops: [null] },
    { ...valid, ops: ['op'] },
    { ...valid, ops: [{ ...(valid.ops[1] as object), value: { portId: 'p', ip: '10.0.0.300' } }] },
    { ...valid, ops: 'none' },
    null,
  ];
  for (const input of cases) {
    const fast = parseGoalState(input);
    const whole = parseWith(GoalStateMessageSchema, input, 'goal state');
    assert.equal(fast, whole, JSON.stringify(input).slice(0, 200));
  }
});

P.run();
