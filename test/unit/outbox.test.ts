/**
 * A VPC's outbox (services/controller/vpcs/outbox.ts) with a publisher that records
 * what it stores and refuses while "the stream elects a leader": groups go out in
 * revision order even when their publishes fail and are sent again, and the
 * watermark only moves over groups that are out.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { DecisionPublisher, GoalStateEnvelope } from '../../shared/index.js';
import { Outbox, type OutboxEntry } from '../../services/controller/vpcs/outbox.js';
import { createLogger } from '../../infra/index.js';
import { eventually } from '../support/eventually.js';

function outbox(down: () => boolean): {
  box: Outbox;
  stored: number[];
  sent: GoalStateEnvelope['message'][];
  calls: () => number;
} {
  const stored: number[] = [];
  const sent: GoalStateEnvelope['message'][] = [];
  let calls = 0;
  const publisher: DecisionPublisher = {
    goalStates: (messages) => {
      calls += 1;
      if (down()) return Promise.reject(new Error('no responders: electing a leader'));
      for (const m of messages) {
        stored.push(m.message.revision);
        sent.push(m.message);
      }
      return Promise.resolve({ stored: messages.length, duplicates: 0 });
    },
    status: () => Promise.resolve(),
  };
  const box = new Outbox(
    { vpcId: 'v1', publisher, logger: createLogger({ name: 'test', level: 'silent' }), window: 8 },
    0,
  );
  return { box, stored, sent, calls: () => calls };
}

function group(revision: number): OutboxEntry {
  const message = { vpcId: 'v1', revision } as unknown as GoalStateEnvelope['message'];
  return {
    revision,
    statuses: [],
    goalStates: [{ subject: `gs.h1`, msgId: `v1:${revision}:h1`, message }],
  };
}

const Order = suite('outbox: order under failed publishes');

Order('a group sent again does not land ahead of the one before it', async () => {
  // Group 1 fails three times (at 0, 250 and 750 ms; its next try is 1 s later);
  // group 2 then fails once, and the stream is back: group 2's retry (250 ms) must
  // wait for group 1's.
  let down = true;
  const { box, stored, calls } = outbox(() => down);
  void box.push(group(1));
  const poll = { timeoutMs: 5000, intervalMs: 5 };
  await eventually(() => (calls() >= 3 ? true : undefined), { ...poll, what: '3 tries' });
  void box.push(group(2));
  await eventually(() => (calls() >= 4 ? true : undefined), { ...poll, what: "group 2's try" });
  down = false;
  await eventually(() => (box.publishedThrough === 2 ? true : undefined), {
    timeoutMs: 5000,
    intervalMs: 20,
    what: 'both groups out',
  });
  assert.equal(stored, [1, 2]);
});

Order('positive control: with no failure the groups go out at once, in order', async () => {
  const { box, stored } = outbox(() => false);
  for (let r = 1; r <= 5; r++) void box.push(group(r));
  await box.drain();
  assert.equal(stored, [1, 2, 3, 4, 5]);
  assert.is(box.publishedThrough, 5);
});

Order.run();

const Prev = suite("outbox: each delta names its target's message before it");

Prev('prev follows each target apart; a full starts no claim of its own', async () => {
  const { box, sent } = outbox(() => false);
  const gs = (target: string, revision: number, mode: 'delta' | 'full' = 'delta') => ({
    subject: `gs.${target}`,
    msgId: `v1:${revision}:${target}`,
    message: { vpcId: 'v1', bucket: 0, revision, mode, target, ops: [] },
  });
  const push = (revision: number, ...goalStates: ReturnType<typeof gs>[]) =>
    void box.push({ revision, statuses: [], goalStates });
  push(3, gs('h1', 3), gs('a.b.c.d', 3));
  push(5, gs('h1', 5));
  push(6, gs('h2', 6, 'full'), gs('a.b.c.d', 6));
  push(9, gs('h1', 9), gs('h2', 9), gs('a.b.c.d', 9));
  await box.drain();
  const prev = sent.map((m) => `${m.target}@${m.revision}<-${m.prev ?? '-'}`);
  assert.equal(prev, [
    'h1@3<--',
    'a.b.c.d@3<--',
    'h1@5<-3',
    'h2@6<--',
    'a.b.c.d@6<-3',
    'h1@9<-5',
    'h2@9<-6',
    'a.b.c.d@9<-6',
  ]);
});

Prev.run();
