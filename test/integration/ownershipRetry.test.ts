/**
 * A bucket handoff that fails part-way (a handoff record not written: JetStream
 * unavailable for a moment, as after a partition) is run again until the run owns
 * what it was given. Found by the fault suite: after `lose-nats-node` one
 * controller logged "bucket handoff failed; retrying", then stayed not ready —
 * the pass had cleared its "something to do" flag before it failed, so nothing
 * ran it again until the next placement table.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createMembership,
  createPlacementStore,
  intakeDurable,
  type PlacementStore,
} from '../../infra/index.js';
import { DEFAULT_BUCKET_COUNT, kvBuckets, type PlacementTable } from '../../shared/index.js';
import { BucketLoads, startOwnership } from '../../services/controller/buckets/ownership.js';
import { isolatedNats, startTestIntake, testLog, within } from '../support/index.js';

const Retry = suite('controller ownership: a failed handoff pass');

const BUCKETS = [3, 7];

Retry(
  'a handoff record that could not be written is written again, and the run owns its buckets',
  async () => {
    const server = await isolatedNats();
    const membership = await createMembership(server.nc, {
      bucket: kvBuckets.controllers,
      id: 'retry-1',
      placed: false,
      ttlMs: 5000,
      logger: testLog,
    });
    const real = await createPlacementStore(server.nc, testLog);
    let refused = 0;
    const store: PlacementStore = {
      ...real,
      writeHandoff: async (record, expected) => {
        if (refused < 1) {
          refused += 1;
          throw new Error('JetStream system temporarily unavailable (injected)');
        }
        return real.writeHandoff(record, expected);
      },
    };
    const incarnation = membership.incarnation();
    const { intake, lanes, stop } = await startTestIntake(server, {
      durable: intakeDurable('retry-1', incarnation),
      leaseValid: membership.leaseValid,
    });
    const ownership = await startOwnership({
      instanceId: 'retry-1',
      incarnation,
      membership,
      store,
      intake,
      lanes,
      loads: new BucketLoads(),
      jsm: server.jsm,
      intakeOptions: {},
      logger: testLog,
      staticBuckets: BUCKETS,
    });
    try {
      await within(15_000, 'the buckets owned after a failed pass', ownership.settled());
      assert.is(refused, 1, 'the first handoff write failed (the fault bit)');
      assert.equal(ownership.owned().sort(), BUCKETS);
      for (const b of BUCKETS) {
        const rec = (await real.readHandoff(b))?.value;
        assert.is(rec?.state, 'acquired', `bucket ${b}'s record says acquired`);
        assert.is(rec?.incarnation, incarnation);
      }
    } finally {
      await ownership.stop(false);
      await stop();
      await membership.stop();
      await server.stop();
    }
  },
);

/** A table that gives one bucket to `owner` and no other bucket to anyone. */
function tableGiving(bucket: number, owner: string, epoch: number): PlacementTable {
  const owners = Array.from({ length: DEFAULT_BUCKET_COUNT }, (_, b) =>
    b === bucket ? owner : '',
  );
  return {
    epoch,
    leader: 'test',
    at: new Date().toISOString(),
    epsilon: 0.1,
    bucketCount: DEFAULT_BUCKET_COUNT,
    owners,
    since: owners.map(() => epoch),
    weights: owners.map(() => 1),
    members: [],
    maxOverFair: 0,
    moved: { weight: 0, buckets: 0, forced: 0 },
  };
}

Retry(
  'an acquire that landed though its answer was lost is released when the table moves the bucket on',
  async () => {
    const server = await isolatedNats();
    const real = await createPlacementStore(server.nc, testLog);
    const BUCKET = 5;
    const started: Array<{ stop: () => Promise<void> }> = [];
    const member = async (id: string, store: PlacementStore) => {
      const membership = await createMembership(server.nc, {
        bucket: kvBuckets.controllers,
        id,
        placed: false,
        ttlMs: 5000,
        logger: testLog,
      });
      const incarnation = membership.incarnation();
      const { intake, lanes, stop } = await startTestIntake(server, {
        durable: intakeDurable(id, incarnation),
        leaseValid: membership.leaseValid,
      });
      const ownership = await startOwnership({
        ...{ instanceId: id, incarnation, membership, store, intake, lanes },
        ...{ loads: new BucketLoads(), jsm: server.jsm, intakeOptions: {}, logger: testLog },
      });
      started.push({
        stop: async () => {
          await ownership.stop(false);
          await stop();
          await membership.stop();
        },
      });
      return { ownership, incarnation };
    };
    await real.writeTable(tableGiving(BUCKET, 'orphan-a', 1), 0);
    // A's acquire lands, its answer is lost (a timeout while the cluster elects),
    // and the table gives the bucket to B before A's next pass.
    let lostAnswers = 0;
    const movedOn = new Promise<void>((resolve) => {
      void real.watch({ onTable: ({ value }) => value.epoch === 2 && resolve() });
    });
    const lossy: PlacementStore = {
      ...real,
      writeHandoff: async (record, expected) => {
        const written = await real.writeHandoff(record, expected);
        if (record.state !== 'acquired' || lostAnswers > 0) return written;
        lostAnswers += 1;
        const table = await real.readTable();
        await real.writeTable(tableGiving(BUCKET, 'orphan-b', 2), table!.revision);
        await movedOn;
        throw new Error('timeout (injected: the write landed, its answer was lost)');
      },
    };
    try {
      await member('orphan-a', lossy);
      await within(10_000, 'the table moved on', movedOn);
      const b = await member('orphan-b', real);
      await within(15_000, 'B owns the bucket A left behind', b.ownership.settled());
      assert.is(lostAnswers, 1, "A's answer was lost (the fault bit)");
      const rec = (await real.readHandoff(BUCKET))?.value;
      assert.is(rec?.owner, 'orphan-b');
      assert.is(rec?.incarnation, b.incarnation);
      assert.is(rec?.state, 'acquired');
    } finally {
      for (const s of started.reverse()) await s.stop();
      await server.stop();
    }
  },
);

Retry.run();
