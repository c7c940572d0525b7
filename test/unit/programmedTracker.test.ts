/**
 * The programmed tracker as a service (services/controller/programmed/tracker.ts),
 * with a publisher that records the statuses: publishing with retries, the lease,
 * adoption — a new owner taking over intents its bucket's previous owner left
 * waiting — and tracking each intent once. The rules themselves are
 * programmed.test.ts (time given, nothing waits).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { DecisionPublisher, Status } from '../../shared/index.js';
import {
  ProgrammedTracker,
  type TrackedIntent,
} from '../../services/controller/programmed/tracker.js';
import { ProgrammedRecovery } from '../../services/controller/programmed/recovery.js';
import { createLogger } from '../../infra/index.js';
import { eventually } from '../support/eventually.js';
import { goalStateAck, trackedIntent } from '../support/domain.js';

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

const intent = trackedIntent;
const ack = goalStateAck;

/** `accepted` is out: the gate a final status waits for. */
const out = Promise.resolve(true);

/** Holds for `ms` that nothing was published (a bounded window, not a wait for a condition). */
async function stillNone(statuses: Status[], ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    assert.equal(statuses, []);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const published = (statuses: Status[], n: number) =>
  eventually(() => (statuses.length >= n ? true : undefined), {
    what: `${n} status(es) published`,
    timeoutMs: 5000,
  });

const T = suite('programmed tracker (publishing, lease, adoption)');

T('programmed once every host applied; statuses go out in the order intents finish', async () => {
  const { t, statuses } = tracker();
  t.track(intent('i1', 3, ['h1', 'h2']), out);
  t.track(intent('i2', 5, ['h1']), out);
  t.onAck(ack('h1', 3));
  await stillNone(statuses, 50);
  t.onAck(ack('h2', 9, { mode: 'full' }));
  t.onAck(ack('h1', 5));
  await published(statuses, 2);
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

T('programmed never overtakes accepted: the final status waits for its gate', async () => {
  const { t, statuses } = tracker();
  let open: (out: boolean) => void = () => undefined;
  t.track(intent('i1', 3, ['h1']), new Promise<boolean>((r) => (open = r)));
  t.onAck(ack('h1', 3));
  await stillNone(statuses, 100);
  open(true);
  await published(statuses, 1);
  assert.equal(
    statuses.map((s) => s.outcome),
    ['programmed'],
    'the outbox stored accepted: only the final status here',
  );
  t.stop();
});

T(
  'an outbox closed before its accepted was stored: accepted goes out here first, then programmed',
  async () => {
    const { t, statuses } = tracker();
    let open: (out: boolean) => void = () => undefined;
    t.track(intent('i1', 3, ['h1']), new Promise<boolean>((r) => (open = r)));
    t.onAck(ack('h1', 3));
    await stillNone(statuses, 50);
    open(false);
    await published(statuses, 2);
    assert.equal(
      statuses.map((s) => [s.intentId, s.outcome, s.revision]),
      [
        ['i1', 'accepted', 3],
        ['i1', 'programmed', 3],
      ],
    );
    t.stop();
  },
);

T('a final status that fails to publish is published again once the stream answers', async () => {
  let failing = true;
  const { t, statuses } = tracker({ failing: () => failing });
  t.track(intent('i1', 3, ['h1']), out);
  t.onAck(ack('h1', 3));
  await stillNone(statuses, 300);
  failing = false;
  await published(statuses, 1);
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
    t.track(intent('i1', 3, ['h1']), out);
    t.onAck(ack('h1', 3));
    await stillNone(statuses, 300);
    valid = true;
    await published(statuses, 1);
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
    t.track(intent('i1', 3, ['h1']), out);
    t.onAck(ack('h1', 3));
    await eventually(() => (t.knows('i1') ? true : undefined));
    t.forget(new Set([7]));
    assert.is(t.knows('i1'), false, 'adoptable again');
    t.open(7);
    assert.ok(t.adopt(intent('i1', 3, ['h1']), Date.now()), 'adopted by the next run');
    await stillNone(statuses, 300);
    t.stop();
  },
);

T('the deadline: incomplete, naming the host missing', async () => {
  const { t, statuses } = tracker();
  t.track(intent('i1', 3, ['h1', 'h2']), out);
  t.onAck(ack('h1', 3));
  await published(statuses, 1);
  assert.is(statuses[0]!.outcome, 'incomplete');
  assert.equal(statuses[0]!.hosts?.missing, ['h2']);
  assert.is(statuses[0]!.error?.code, 'deadline_passed');
  t.stop();
});

T('adopted intents complete from replayed and live acks alike', async () => {
  const { t, statuses } = tracker();
  const release = t.adopt(intent('i1', 3, ['h1', 'h2']), Date.now());
  t.onAck(ack('h1', 3), Date.now());
  t.onAck(ack('h2', 4, { mode: 'full' })); // live
  release!();
  await published(statuses, 1);
  assert.equal(
    statuses.map((s) => [s.intentId, s.outcome]),
    [['i1', 'programmed']],
  );
  assert.is(t.metrics.adopted, 1);
  assert.is(t.metrics.replayedAcks, 1);
  t.stop();
});

T(
  'an intent is tracked once: adopting a tracked one, or tracking an adopted one, adds nothing',
  async () => {
    const { t, statuses } = tracker();
    t.track(intent('i1', 3, ['h1']), out);
    assert.is(t.adopt(intent('i1', 3, ['h1']), Date.now()), undefined);
    const release = t.adopt(intent('i2', 4, ['h1']), Date.now());
    t.track(intent('i2', 4, ['h1']), out);
    assert.is(t.pending, 2);
    release!();
    t.onAck(ack('h1', 4, { mode: 'full' }));
    await published(statuses, 2);
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
    t.track(intent('i1', 3, ['h1']), out);
    t.forget(new Set([7]));
    assert.is(t.pending, 0);
    assert.not.ok(t.knows('i1'));
    t.track(intent('i2', 4, ['h1']), out); // its decision finished after the handoff began
    assert.is(t.pending, 0, 'not tracked: the new owner adopts it');
    t.track({ ...intent('i3', 5, ['h1']), bucket: 8 }, out);
    assert.is(t.pending, 0, 'nor one of a bucket never opened');
    assert.is(t.adopt(intent('i1', 3, ['h1']), Date.now()), undefined, 'nor adopted');
    t.open(7); // the bucket came back
    const release = t.adopt(intent('i1', 3, ['h1']), Date.now());
    assert.ok(release);
    release();
    t.onAck(ack('h1', 3));
    await published(statuses, 1);
    await stillNone(statuses.slice(1), 100);
    assert.equal(
      statuses.map((s) => [s.intentId, s.outcome]),
      [['i1', 'programmed']],
      'nothing published for i2 by the old owner',
    );
    t.stop();
  },
);

T(
  'a recovery pass that fails (JetStream unavailable) is run again with the same buckets',
  async () => {
    const { t } = tracker();
    // The pass itself reads the logs (integration tests); here only when it runs.
    const passes: Array<{ buckets: number[]; rechecks: string[] }> = [];
    let failing = 2;
    class Recorded extends ProgrammedRecovery {
      override recover(buckets: ReadonlySet<number>, rechecks: readonly TrackedIntent[] = []) {
        passes.push({ buckets: [...buckets].sort(), rechecks: rechecks.map((r) => r.intentId) });
        if (failing-- > 0)
          return Promise.reject(new Error('JetStream system temporarily unavailable'));
        return Promise.resolve({ accepted: 0, waiting: 0, adopted: 0 });
      }
    }
    const recovery = new Recorded({
      nc: undefined as never,
      tracker: t,
      bucketCount: 1024,
      windowMs: 60_000,
      logger: createLogger({ name: 'test', level: 'silent', pretty: false }),
      batchMs: 10,
    });
    recovery.add(7);
    recovery.recheck(intent('i1', 3, ['h1']));
    await eventually(() => Promise.resolve(passes.length >= 3 ? true : undefined), {
      timeoutMs: 10_000,
      what: 'three passes',
    });
    await recovery.idle();
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(
      passes,
      [
        { buckets: [7], rechecks: ['i1'] },
        { buckets: [7], rechecks: ['i1'] },
        { buckets: [7], rechecks: ['i1'] },
      ],
      'the failed pass again, then no more once one succeeded',
    );
    await recovery.stop();
    t.stop();
  },
);

T.run();
