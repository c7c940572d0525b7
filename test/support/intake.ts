/**
 * One controller run's intake and VPC lanes on a test server, without the rest of
 * the controller: for tests of what the intake delivers and what the lanes decide.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  createJetStreamDecisionPublisher,
  createJetStreamEventLog,
  createJetStreamIntentSource,
  createKvSnapshotStore,
  type IntakeOptions,
} from '../../infra/index.js';
import { DEFAULT_BUCKET_COUNT } from '../../shared/index.js';
import { IntakeRuntime, LossEpoch } from '../../services/controller/buckets/intake.js';
import { Limiter } from '../../services/controller/limiter.js';
import { createMetrics } from '../../services/controller/metrics.js';
import { VpcLanes } from '../../services/controller/vpcs/lanes.js';
import { testLog } from './controller.js';

export async function startTestIntake(
  server: { nc: NatsConnection; jsm: JetStreamManager },
  options: { durable: string; leaseValid: () => boolean; intake?: IntakeOptions },
): Promise<{ intake: IntakeRuntime; lanes: VpcLanes; stop: () => Promise<void> }> {
  const { nc, jsm } = server;
  const lossEpoch = new LossEpoch();
  const metrics = createMetrics();
  const publisher = createJetStreamDecisionPublisher(nc);
  const lanes = new VpcLanes({
    log: await createJetStreamEventLog(nc),
    intents: await createJetStreamIntentSource(nc),
    publisher,
    snapshots: await createKvSnapshotStore(nc),
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
    leaseValid: options.leaseValid,
    lossEpoch: () => lossEpoch.value,
    reportLoad: () => undefined,
  });
  const intake = await IntakeRuntime.start({
    nc,
    jsm,
    durable: options.durable,
    bucketCount: DEFAULT_BUCKET_COUNT,
    lanes,
    publisher,
    metrics,
    logger: testLog,
    intake: options.intake ?? {},
    lossEpoch,
    leaseValid: options.leaseValid,
  });
  return {
    intake,
    lanes,
    stop: async () => {
      await intake.stop();
      lanes.stopAll();
    },
  };
}
