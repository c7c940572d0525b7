/**
 * Deliveries that arrive while the controller run's lease is not valid are left
 * alone (they come back after ack_wait, to whoever owns the bucket then). When the
 * same run's lease is renewed in time — a heartbeat answered late, as when the
 * membership stream's leader moved — the VPC's lane must not decide the next
 * delivery over the hole they left: it reads the stream back first. Found by the
 * fault suite (`partition-nats-node` lost 28 acknowledged intents once).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jetstream } from '@nats-io/jetstream';
import {
  createJetStreamDecisionPublisher,
  createJetStreamEventLog,
  createJetStreamIntentSource,
  createKvSnapshotStore,
  intakeDurable,
} from '../../infra/index.js';
import { bucketOf, DEFAULT_BUCKET_COUNT, streams, subjects } from '../../shared/index.js';
import { IntakeRuntime, LossEpoch } from '../../services/controller/buckets/intake.js';
import { Limiter } from '../../services/controller/limiter.js';
import { createMetrics } from '../../services/controller/metrics.js';
import { VpcLanes } from '../../services/controller/vpcs/lanes.js';
import { eventually, isolatedNats, readCommits, testLog } from '../support/index.js';

const Lease = suite('controller intake: deliveries while the lease is not valid');

const encoder = new TextEncoder();
const VPC = 'lease-gap';

Lease(
  'a lane whose lease lapsed and was renewed reads back the deliveries it was not given',
  async () => {
    const server = await isolatedNats();
    let lease = true;
    const lossEpoch = new LossEpoch();
    const metrics = createMetrics();
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
      leaseValid: () => lease,
      lossEpoch: () => lossEpoch.value,
      reportLoad: () => undefined,
    });
    const durable = intakeDurable('lease-test', 'i1');
    const intake = await IntakeRuntime.start({
      nc: server.nc,
      jsm: server.jsm,
      durable,
      bucketCount: DEFAULT_BUCKET_COUNT,
      lanes,
      publisher,
      metrics,
      logger: testLog,
      // Left-alone deliveries do not come back while the test runs.
      intake: { ackWaitMs: 120_000 },
      lossEpoch,
      leaseValid: () => lease,
    });
    const js = jetstream(server.nc);
    const publish = async (intent: { id: string; kind: string; spec: unknown }): Promise<number> =>
      (
        await js.publish(
          subjects.intent(VPC),
          encoder.encode(JSON.stringify({ ...intent, vpcId: VPC })),
          { msgID: intent.id },
        )
      ).seq;
    const decided = async (): Promise<string[]> =>
      (await readCommits(server.nc, VPC)).map((c) => c.commit.intentId);
    const subnet = (k: number) => ({
      id: `sub-${k}`,
      kind: 'subnet.create',
      spec: { subnetId: `s${k}`, cidr: `10.0.${k}.0/24`, gatewayIp: `10.0.${k}.1` },
    });
    try {
      await intake.add([bucketOf(VPC, DEFAULT_BUCKET_COUNT)]);
      await publish({ id: 'create', kind: 'vpc.create', spec: { cidr: '10.0.0.0/16' } });
      await eventually(async () => ((await decided()).length === 1 ? true : undefined), {
        what: 'the VPC created',
      });

      lease = false;
      let last = 0;
      for (let k = 1; k <= 5; k++) last = await publish(subnet(k));
      // Delivered (the consumer moved past them) and left alone.
      await eventually(
        async () => {
          const info = await server.jsm.consumers.info(streams.intents, durable);
          return info.delivered.stream_seq >= last ? true : undefined;
        },
        { what: 'the five intents delivered while the lease is not valid' },
      );
      assert.equal(await decided(), ['create'], 'nothing decided without a lease');

      lease = true;
      await publish(subnet(6));
      await eventually(async () => ((await decided()).includes('sub-6') ? true : undefined), {
        what: 'the intent published after the lease was renewed decided',
      });
      assert.equal(
        await decided(),
        ['create', 'sub-1', 'sub-2', 'sub-3', 'sub-4', 'sub-5', 'sub-6'],
        'decided in stream order, none skipped',
      );
    } finally {
      await intake.stop();
      lanes.stopAll();
      await server.stop();
    }
  },
);

Lease.run();
