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
  createJetStreamDecisionPublisher,
  createJetStreamEventLog,
  createJetStreamIntentSource,
  createKvSnapshotStore,
  createMembership,
  createPlacementStore,
  intakeDurable,
  type PlacementStore,
} from '../../infra/index.js';
import { DEFAULT_BUCKET_COUNT, kvBuckets } from '../../shared/index.js';
import { IntakeRuntime, LossEpoch } from '../../services/controller/buckets/intake.js';
import { BucketLoads, startOwnership } from '../../services/controller/buckets/ownership.js';
import { Limiter } from '../../services/controller/limiter.js';
import { createMetrics } from '../../services/controller/metrics.js';
import { VpcLanes } from '../../services/controller/vpcs/lanes.js';
import { isolatedNats, testLog, within } from '../support/index.js';

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
    const metrics = createMetrics();
    const lossEpoch = new LossEpoch();
    const publisher = createJetStreamDecisionPublisher(server.nc);
    const lanes = new VpcLanes({
      log: await createJetStreamEventLog(server.nc),
      intents: await createJetStreamIntentSource(server.nc),
      publisher,
      snapshots: await createKvSnapshotStore(server.nc),
      lookupHost: () => undefined,
      logger: testLog,
      limiter: new Limiter(4),
      metrics,
      snapshotEvery: 1000,
      readBatch: 256,
      groupMax: 128,
      groupBytes: 256 * 1024,
      outboxWindow: 16,
      idleMs: 60_000,
      leaseValid: membership.leaseValid,
      lossEpoch: () => lossEpoch.value,
      reportLoad: () => undefined,
    });
    const incarnation = membership.incarnation();
    const intake = await IntakeRuntime.start({
      nc: server.nc,
      jsm: server.jsm,
      durable: intakeDurable('retry-1', incarnation),
      bucketCount: DEFAULT_BUCKET_COUNT,
      lanes,
      publisher,
      metrics,
      logger: testLog,
      intake: {},
      lossEpoch,
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
      await intake.stop();
      lanes.stopAll();
      await membership.stop();
      await server.stop();
    }
  },
);

Retry.run();
