/**
 * The VPC actor's lifecycle, with its effects provided as controllable promises
 * and time from xstate's SimulatedClock: no I/O, no sleeping.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SimulatedClock, createActor, fromPromise, initialTransition } from 'xstate';
import { vpc } from '../../actors/index.js';

interface Pending<T> {
  input: unknown;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

/** The machine with effects that wait for the test to settle them. */
function start(options: { idle?: number } = {}) {
  const calls = {
    hydrate: [] as Pending<number>[],
    catchUp: [] as Pending<number>[],
    snapshot: [] as Pending<void>[],
  };
  const effect = <T>(list: Pending<T>[]) =>
    fromPromise<T, unknown>(
      ({ input }) => new Promise<T>((resolve, reject) => list.push({ input, resolve, reject })),
    );
  const machine = vpc.vpcActorMachine.provide({
    actors: {
      hydrate: effect(calls.hydrate),
      catchUp: effect(calls.catchUp),
      snapshot: effect(calls.snapshot),
    } as never,
    delays: { idle: options.idle ?? 1000, retry: 50 },
  });
  const clock = new SimulatedClock();
  const actor = createActor(machine, { input: { vpcId: 'vpc-1' }, clock });
  actor.start();
  const state = () => actor.getSnapshot();
  /** Lets the provided promises' callbacks run. */
  const settle = () => new Promise((r) => setImmediate(r));
  return { actor, calls, clock, state, settle };
}

const Lifecycle = suite('the VPC actor lifecycle');

Lifecycle(
  'starts by hydrating, and the initial transition names no effect but the hydration',
  () => {
    const [snapshot] = initialTransition(vpc.vpcActorMachine, { vpcId: 'vpc-1' });
    assert.is(snapshot.value, 'hydrating');
    assert.equal(snapshot.context, {
      vpcId: 'vpc-1',
      wanted: 0,
      handled: 0,
      handoff: false,
      failures: 0,
    });
  },
);

Lifecycle(
  'hydrated and not behind: idle; a wake beyond the cursor runs catch-up up to it',
  async () => {
    const t = start();
    assert.equal(t.calls.hydrate[0]?.input, { vpcId: 'vpc-1' });
    t.calls.hydrate[0]!.resolve(10);
    await t.settle();
    assert.equal(t.state().value, { active: 'idle' });
    t.actor.send({ type: 'WAKE', seq: 7 });
    assert.equal(
      t.state().value,
      { active: 'idle' },
      'a wake at or below the cursor changes nothing',
    );
    assert.is(t.calls.catchUp.length, 0);
    t.actor.send({ type: 'WAKE', seq: 15 });
    assert.equal(t.state().value, { active: 'working' });
    assert.equal(t.calls.catchUp[0]?.input, { vpcId: 'vpc-1', upTo: 15 });
    t.calls.catchUp[0]!.resolve(15);
    await t.settle();
    assert.equal(t.state().value, { active: 'idle' });
    assert.is(t.state().context.handled, 15);
  },
);

Lifecycle('wakes during a catch-up are gathered and run once more after it', async () => {
  const t = start();
  t.calls.hydrate[0]!.resolve(0);
  await t.settle();
  t.actor.send({ type: 'WAKE', seq: 3 });
  t.actor.send({ type: 'WAKE', seq: 9 });
  t.actor.send({ type: 'WAKE', seq: 5 });
  assert.is(t.calls.catchUp.length, 1);
  t.calls.catchUp[0]!.resolve(3);
  await t.settle();
  assert.is(t.calls.catchUp.length, 2);
  assert.equal(t.calls.catchUp[1]?.input, { vpcId: 'vpc-1', upTo: 9 });
  t.calls.catchUp[1]!.resolve(9);
  await t.settle();
  assert.equal(t.state().value, { active: 'idle' });
});

Lifecycle('an idle actor passivates after the idle delay: snapshot, then stopped', async () => {
  const t = start({ idle: 1000 });
  t.calls.hydrate[0]!.resolve(4);
  await t.settle();
  t.clock.increment(999);
  assert.equal(t.state().value, { active: 'idle' });
  t.clock.increment(1);
  assert.is(t.state().value, 'passivating');
  t.calls.snapshot[0]!.resolve();
  await t.settle();
  assert.is(t.state().status, 'done');
  assert.equal(t.state().output, { reason: 'passivated', handled: 4 });
});

Lifecycle('a wake while passivating keeps the actor active', async () => {
  const t = start({ idle: 10 });
  t.calls.hydrate[0]!.resolve(4);
  await t.settle();
  t.clock.increment(10);
  t.actor.send({ type: 'WAKE', seq: 6 });
  t.calls.snapshot[0]!.resolve();
  await t.settle();
  assert.equal(t.state().value, { active: 'working' });
  assert.equal(t.calls.catchUp[0]?.input, { vpcId: 'vpc-1', upTo: 6 });
});

Lifecycle('a failed catch-up rehydrates after the retry delay and goes on', async () => {
  const t = start();
  t.calls.hydrate[0]!.resolve(0);
  await t.settle();
  t.actor.send({ type: 'WAKE', seq: 2 });
  t.calls.catchUp[0]!.reject(new Error('nats: timeout'));
  await t.settle();
  assert.is(t.state().value, 'recovering');
  assert.is(t.state().context.failures, 1);
  t.clock.increment(50 * 2);
  assert.is(t.state().value, 'hydrating');
  assert.is(t.calls.hydrate.length, 2);
  t.calls.hydrate[1]!.resolve(1);
  await t.settle();
  assert.equal(t.calls.catchUp[1]?.input, { vpcId: 'vpc-1', upTo: 2 });
});

Lifecycle('a fenced failure stops the actor without retrying', async () => {
  const t = start();
  t.calls.hydrate[0]!.resolve(0);
  await t.settle();
  t.actor.send({ type: 'WAKE', seq: 2 });
  t.calls.catchUp[0]!.reject({ fenced: true });
  await t.settle();
  assert.is(t.state().status, 'done');
  assert.equal(t.state().output, { reason: 'fenced', handled: 0 });
  t.clock.increment(60_000);
  assert.is(t.calls.hydrate.length, 1);
});

Lifecycle('a handoff during a catch-up waits for it, snapshots, then stops', async () => {
  const t = start();
  t.calls.hydrate[0]!.resolve(0);
  await t.settle();
  t.actor.send({ type: 'WAKE', seq: 5 });
  t.actor.send({ type: 'HANDOFF' });
  assert.equal(t.state().value, { active: 'working' });
  assert.is(t.calls.snapshot.length, 0, 'no snapshot while a decision is in flight');
  t.calls.catchUp[0]!.resolve(5);
  await t.settle();
  assert.is(t.state().value, 'handingOff');
  t.calls.snapshot[0]!.resolve();
  await t.settle();
  assert.equal(t.state().output, { reason: 'handedOff', handled: 5 });
});

Lifecycle.run();
