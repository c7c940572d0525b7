/**
 * The resync gate (services/controller/hosts/resyncGate.ts): a few answers at once,
 * the rest in arrival order; a request that would wait past its requester's
 * patience, or finds the queue full, is told when to ask again.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ResyncGate, type Admission } from '../../services/controller/hosts/resyncGate.js';

const test = suite('resync gate');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('admits up to its concurrency at once, then in arrival order as answers end', async () => {
  const gate = new ResyncGate({ concurrency: 2, maxWaitMs: 10_000, maxQueued: 100 });
  const order: number[] = [];
  const admissions: Admission[] = [];
  const entered = [0, 1, 2, 3].map((i) =>
    gate.enter().then((a) => {
      order.push(i);
      admissions[i] = a;
      return a;
    }),
  );
  await sleep(5);
  assert.equal(order, [0, 1], 'two at once');
  assert.is(gate.inFlight, 2);
  assert.is(gate.queued, 2);
  for (const a of admissions.slice(0, 2)) if (a.admitted) a.done();
  await Promise.all(entered);
  assert.equal(order, [0, 1, 2, 3], 'the waiting ones in arrival order');
  assert.ok(admissions.every((a) => a.admitted));
  for (const a of admissions) if (a.admitted) a.done();
  assert.is(gate.inFlight, 0, 'every slot given back');
});

test('done twice gives back one slot', async () => {
  const gate = new ResyncGate({ concurrency: 1, maxWaitMs: 10_000, maxQueued: 100 });
  const a = await gate.enter();
  const b = gate.enter();
  const c = gate.enter();
  if (a.admitted) {
    a.done();
    a.done();
  }
  await sleep(5);
  assert.is(gate.inFlight, 1, 'b only');
  assert.is(gate.queued, 1, 'c still waits');
  for (const x of [await b]) if (x.admitted) x.done();
  const last = await c;
  assert.ok(last.admitted);
});

test('a request that waits past maxWaitMs is told to ask again; the others are not', async () => {
  const gate = new ResyncGate({ concurrency: 1, maxWaitMs: 30, maxQueued: 100 });
  const first = await gate.enter();
  const late = await gate.enter();
  assert.not.ok(late.admitted, 'the slot was never freed in time');
  if (!late.admitted) assert.ok(late.retryAfterMs >= 250 && late.retryAfterMs <= 10_000);
  assert.is(gate.queued, 0, 'it left the queue');
  assert.is(gate.deferred, 1);
  // Positive control: freed in time, the next one is admitted.
  const next = gate.enter();
  if (first.admitted) first.done();
  assert.ok((await next).admitted);
});

test('a full queue answers at once, with advice that grows with the queue', async () => {
  const advice = async (maxQueued: number): Promise<number> => {
    const gate = new ResyncGate({ concurrency: 1, maxWaitMs: 10_000, maxQueued });
    const held = await gate.enter();
    const waiting = Array.from({ length: maxQueued }, () => gate.enter());
    const over = await gate.enter();
    assert.not.ok(over.admitted, 'one more than the queue holds is refused');
    assert.is(gate.queued, maxQueued, 'the waiters stay');
    assert.is(gate.deferred, 1);
    if (held.admitted) held.done();
    for (const w of waiting) {
      const a = await w;
      if (a.admitted) a.done();
    }
    return over.admitted ? 0 : over.retryAfterMs;
  };
  const short = await advice(3);
  const long = await advice(200);
  assert.is(short, 250, 'a short queue: the least advice');
  assert.ok(long > short && long <= 10_000, `a long queue: longer advice (${long} ms)`);
});

test('no concurrency limit (0) admits everyone', async () => {
  const gate = new ResyncGate({ concurrency: 0, maxWaitMs: 1, maxQueued: 0 });
  const all = await Promise.all(Array.from({ length: 50 }, () => gate.enter()));
  assert.ok(all.every((a) => a.admitted));
  assert.is(gate.inFlight, 50);
});

test.run();
