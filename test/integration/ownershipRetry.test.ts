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
import { kvBuckets } from '../../shared/index.js';
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

Retry.run();
