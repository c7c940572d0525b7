/**
 * The programmed tracker's rules (DESIGN §4.3), with a publisher that records the
 * statuses: which acks answer an intent, the deadline, and adoption — a new owner
 * taking over intents its bucket's previous owner left waiting.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { DecisionPublisher, GoalStateAck, Status } from '../../shared/index.js';
import { ProgrammedTracker, type TrackedIntent } from '../../services/controller/programmed.js';
import { createLogger } from '../../infra/index.js';

const DEADLINE = 400;

function tracker(options: { leaseValid?: () => boolean; failing?: () => boolean } = {}): {
  t: ProgrammedTracker;
  statuses: Status[];
} {
  const statuses: Status[] = [];
  const publisher: DecisionPublisher = {
    goalStates: () => Promise.resolve({ stored: 0, duplicates: 0 }),
    status: (_subject, status) => {
      if (options.failing?.()) return Promise.reject(new Error('stream electing a leader'));
      statuses.push(status);
      return Promise.resolve();
    },
  };
  const t = new ProgrammedTracker({
    publisher,
    logger: createLogger({ name: 'test', level: 'silent', pretty: false }),
    deadlineMs: DEADLINE,
    leaseValid: options.leaseValid ?? (() => true),
  });
  t.open(7);
  return { t, statuses };
}

const intent = (id: string, revision: number, hosts: string[]): TrackedIntent => ({
  intentId: id,
  vpcId: 'v1',
  bucket: 7,
  revision,
  hosts,
});

const ack = (
  hostId: string,
  revision: number,
  extra: Partial<GoalStateAck> = {},
): GoalStateAck => ({ vpcId: 'v1', hostId, revision, mode: 'delta', status: 'applied', ...extra });

const settle = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

const T = suite('programmed tracker');

T('programmed once every host applied; a full state answers earlier revisions', async () => {
  const { t, statuses } = tracker();
  t.track(intent('i1', 3, ['h1', 'h2']))();
  t.track(intent('i2', 5, ['h1']))();
  t.onAck(ack('h1', 3));
  await settle();
  assert.equal(statuses, [], 'i1 still waits for h2');
  t.onAck(ack('h2', 9, { mode: 'full' }));
  t.onAck(ack('h1', 5));
  await settle();
  assert.equal(
    statuses.map((s) => [s.intentId, s.outcome]),
    [
      ['i1', 'programmed'],
      ['i2', 'programmed'],
    ],
  );
  t.onAck(ack('h1', 5));
  assert.is(t.metrics.unmatchedAcks, 1, 'a repeated ack matches nothing');
  t.stop();
});

T('a final status that fails to publish is published again once the stream answers', async () => {
  let failing = true;
  const { t, statuses } = tracker({ failing: () => failing });
  t.track(intent('i1', 3, ['h1']))();
  t.onAck(ack('h1', 3));
  await settle(300);
  assert.equal(statuses, [], 'not published while the stream fails');
  failing = false;
  await settle(1200);
  assert.equal(
    statuses.map((s) => [s.intentId, s.outcome]),
    [['i1', 'programmed']],
  );
  t.stop();
});

T(
  'while the lease has lapsed a final status waits; it goes out if the lease comes back',
  async () => {
    let valid = false;
    const { t, statuses } = tracker({ leaseValid: () => valid });
    t.track(intent('i1', 3, ['h1']))();
    t.onAck(ack('h1', 3));
    await settle(400);
    assert.equal(statuses, []);
    valid = true;
    await settle(400);
    assert.equal(
      statuses.map((s) => [s.intentId, s.outcome]),
      [['i1', 'programmed']],
    );
    t.stop();
  },
);

T(
  'a final status still waiting when its bucket is given away is left to the next owner to adopt',
  async () => {
    const { t, statuses } = tracker({ leaseValid: () => false });
    t.track(intent('i1', 3, ['h1']))();
    t.onAck(ack('h1', 3));
    await settle(100);
    assert.is(t.knows('i1'), true);
    t.forget(new Set([7]));
    assert.is(t.knows('i1'), false, 'adoptable again');
    t.open(7);
    assert.ok(t.adopt(intent('i1', 3, ['h1']), Date.now()), 'adopted by the next run');
    await settle(400);
    assert.equal(statuses, [], 'the old attempt published nothing');
    t.stop();
  },
);

T('the deadline: incomplete, naming the host missing', async () => {
  const { t, statuses } = tracker();
  t.track(intent('i1', 3, ['h1', 'h2']))();
  t.onAck(ack('h1', 3));
  await settle(DEADLINE + 300);
  assert.is(statuses.length, 1);
  assert.is(statuses[0]!.outcome, 'incomplete');
  assert.equal(statuses[0]!.hosts?.missing, ['h2']);
  assert.is(statuses[0]!.error?.code, 'deadline_passed');
  t.stop();
});

T(
  'an adopted intent waits for its replay, deadline or not; stored acks count only before the deadline',
  async () => {
    const { t, statuses } = tracker();
    const decided = Date.now() - 10 * DEADLINE; // long past its deadline
    const release = t.adopt(intent('i1', 3, ['h1', 'h2', 'h3']), decided);
    assert.ok(release, 'adopted');
    await settle(300);
    assert.equal(statuses, [], 'held: the sweep leaves it alone');
    t.onAck(ack('h1', 3), decided + 10);
    t.onAck(ack('h2', 3, { status: 'failed' }), decided + 20);
    t.onAck(ack('h3', 3), decided + DEADLINE + 1); // stored after the deadline
    assert.is(t.metrics.replayedAcks, 3);
    assert.is(t.metrics.unmatchedAcks, 0, 'a replayed ack is not an unmatched one');
    release();
    await settle(300);
    assert.is(statuses.length, 1);
    assert.is(statuses[0]!.outcome, 'incomplete');
    assert.equal(statuses[0]!.hosts, {
      total: 3,
      applied: 1,
      failed: 1,
      pending: 1,
      missing: ['h3'],
      failedHosts: ['h2'],
    });
    t.stop();
  },
);

T('adopted intents complete from replayed and live acks alike', async () => {
  const { t, statuses } = tracker();
  const release = t.adopt(intent('i1', 3, ['h1', 'h2']), Date.now());
  t.onAck(ack('h1', 3), Date.now());
  t.onAck(ack('h2', 4, { mode: 'full' })); // live
  release!();
  await settle();
  assert.equal(
    statuses.map((s) => [s.intentId, s.outcome]),
    [['i1', 'programmed']],
  );
  assert.is(t.metrics.adopted, 1);
  t.stop();
});

T(
  'an intent is tracked once: adopting a tracked one, or tracking an adopted one, adds nothing',
  async () => {
    const { t, statuses } = tracker();
    t.track(intent('i1', 3, ['h1']))();
    assert.is(t.adopt(intent('i1', 3, ['h1']), Date.now()), undefined);
    const release = t.adopt(intent('i2', 4, ['h1']), Date.now());
    t.track(intent('i2', 4, ['h1']))();
    assert.is(t.pending, 2);
    release!();
    t.onAck(ack('h1', 4, { mode: 'full' }));
    await settle();
    assert.equal(statuses.map((s) => s.intentId).sort(), ['i1', 'i2']);
    assert.ok(t.knows('i1'), 'a finished intent is remembered');
    assert.is(t.adopt(intent('i1', 3, ['h1']), Date.now()), undefined, 'and not adopted again');
    t.stop();
  },
);

T(
  'a bucket given away: its intents forgotten, and one decided late is left to the new owner',
  async () => {
    const { t, statuses } = tracker();
    t.track(intent('i1', 3, ['h1']))();
    t.forget(new Set([7]));
    assert.is(t.pending, 0);
    assert.not.ok(t.knows('i1'));
    t.track(intent('i2', 4, ['h1']))(); // its decision finished after the handoff began
    assert.is(t.pending, 0, 'not tracked: the new owner adopts it');
    t.track({ ...intent('i3', 5, ['h1']), bucket: 8 })();
    assert.is(t.pending, 0, 'nor one of a bucket never opened');
    assert.is(t.adopt(intent('i1', 3, ['h1']), Date.now()), undefined, 'nor adopted');
    t.open(7); // the bucket came back
    const release = t.adopt(intent('i1', 3, ['h1']), Date.now());
    assert.ok(release);
    release();
    t.onAck(ack('h1', 3));
    await settle(DEADLINE + 300);
    assert.equal(
      statuses.map((s) => [s.intentId, s.outcome]),
      [['i1', 'programmed']],
      'nothing published for i2 by the old owner',
    );
    t.stop();
  },
);

T.run();
