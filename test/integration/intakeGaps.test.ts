/**
 * Intents a VPC's lane was not delivered must not be passed over by the next one
 * it is: the lane decides a delivery only once it knows every intent of its VPC
 * before it, else it reads the stream back first.
 * - Deliveries that arrive while the run's lease is not valid are left alone (they
 *   come back after ack_wait, to whoever owns the bucket then). When the same run's
 *   lease is renewed in time — a heartbeat answered late, as when the membership
 *   stream's leader moved — the next delivery comes after a hole. Found by the
 *   fault suite (`partition-nats-node` lost 28 acknowledged intents once).
 * - A bucket handed on: intents stored after the consumer dropped it are never
 *   delivered, and the consumer's ack floor moves past them; the floor its
 *   release writes must not (found by the fault suite: `pause-controller` lost a
 *   VPC's last 8 intents, stored while its bucket was being released).
 * - Intents stored while the bucket was out of the consumer's filter are not
 *   delivered when it comes back (a scan is to find them; one answered by a copy
 *   behind the stream does not). Found by the fault suite (`partition-nats-node`
 *   lost 39 and 93 acknowledged intents, the lane deciding the next delivery over
 *   the ones before it).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jetstream } from '@nats-io/jetstream';
import { intakeDurable } from '../../infra/index.js';
import { bucketOf, DEFAULT_BUCKET_COUNT, streams, subjects } from '../../shared/index.js';
import { eventually, isolatedNats, readCommits, startTestIntake } from '../support/index.js';

const Gaps = suite('controller intake: intents a lane was not delivered');

const encoder = new TextEncoder();
const VPC = 'lease-gap';

async function setUp() {
  const server = await isolatedNats();
  const lease = { valid: true };
  const durable = intakeDurable('gap-test', 'i1');
  const { intake, stop } = await startTestIntake(server, {
    durable,
    leaseValid: () => lease.valid,
    // Left-alone deliveries do not come back while the test runs.
    intake: { ackWaitMs: 120_000 },
  });
  const js = jetstream(server.nc);
  const publish = async (
    intent: { id: string; kind: string; spec: unknown },
    vpcId = VPC,
  ): Promise<number> =>
    (
      await js.publish(
        subjects.intent(vpcId),
        encoder.encode(JSON.stringify({ ...intent, vpcId })),
        { msgID: intent.id },
      )
    ).seq;
  const decided = async (vpcId = VPC): Promise<string[]> =>
    (await readCommits(server.nc, vpcId)).map((c) => c.commit.intentId);
  const decidedWith = (id: string, what: string, vpcId = VPC): Promise<true> =>
    eventually(async () => ((await decided(vpcId)).includes(id) ? true : undefined), { what });
  return {
    server,
    lease,
    intake,
    durable,
    publish,
    decided,
    decidedWith,
    stop: async () => {
      await stop();
      await server.stop();
    },
  };
}

const bucket = bucketOf(VPC, DEFAULT_BUCKET_COUNT);
const OTHER = 'gap-other';
const otherBucket = bucketOf(OTHER, DEFAULT_BUCKET_COUNT);
const subnet = (k: number) => ({
  id: `sub-${k}`,
  kind: 'subnet.create',
  spec: { subnetId: `s${k}`, cidr: `10.0.${k}.0/24`, gatewayIp: `10.0.${k}.1` },
});
const create = { id: 'create', kind: 'vpc.create', spec: { cidr: '10.0.0.0/16' } };
const ALL = ['create', 'sub-1', 'sub-2', 'sub-3', 'sub-4', 'sub-5', 'sub-6'];

Gaps(
  'a lane whose lease lapsed and was renewed reads back the deliveries it was not given',
  async () => {
    const t = await setUp();
    try {
      await t.intake.add([bucket]);
      await t.publish(create);
      await t.decidedWith('create', 'the VPC created');

      t.lease.valid = false;
      let last = 0;
      for (let k = 1; k <= 5; k++) last = await t.publish(subnet(k));
      // Delivered (the consumer moved past them) and left alone.
      await eventually(
        async () => {
          const info = await t.server.jsm.consumers.info(streams.intents, t.durable);
          return info.delivered.stream_seq >= last ? true : undefined;
        },
        { what: 'the five intents delivered while the lease is not valid' },
      );
      assert.equal(await t.decided(), ['create'], 'nothing decided without a lease');

      t.lease.valid = true;
      await t.publish(subnet(6));
      await t.decidedWith('sub-6', 'the intent published after the lease was renewed decided');
      assert.equal(await t.decided(), ALL, 'decided in stream order, none skipped');
    } finally {
      await t.stop();
    }
  },
);

Gaps(
  'intents stored while the bucket was out of the filter are read back before the next delivery is decided',
  async () => {
    const t = await setUp();
    try {
      await t.intake.add([bucket, otherBucket]);
      await t.publish(create);
      await t.decidedWith('create', 'the VPC created');
      // Out of the filter and back; the lane stays (nothing hands it off).
      await t.intake.remove([bucket]);
      for (let k = 1; k <= 5; k++) await t.publish(subnet(k));
      // Another bucket's intent, delivered: the consumer has gone past the five.
      await t.publish({ ...create, id: 'other-create' }, OTHER);
      await t.decidedWith('other-create', 'the other VPC created', OTHER);
      await t.intake.add([bucket]); // the five are not delivered: stored before
      await t.publish(subnet(6));
      await t.decidedWith('sub-6', 'the intent delivered after the bucket came back decided');
      assert.equal(await t.decided(), ALL, 'decided in stream order, none skipped');
    } finally {
      await t.stop();
    }
  },
);

Gaps(
  "a released bucket's floor stays below its intents the consumer was never delivered",
  async () => {
    const t = await setUp();
    try {
      await t.intake.add([bucket, otherBucket]);
      await t.publish(create);
      await t.decidedWith('create', 'the VPC created');
      const mark = await t.intake.remove([bucket]);
      // Stored after the consumer dropped the bucket: nobody is delivered it.
      const orphan = await t.publish(subnet(1));
      // Another bucket's intent, decided and acked: the consumer's floor moves on.
      const other = await t.publish({ ...create, id: 'other-create' }, OTHER);
      await t.decidedWith('other-create', 'the other VPC created', OTHER);
      await eventually(async () => ((await t.intake.ackFloor()) >= other ? true : undefined), {
        what: "the consumer's ack floor past the other bucket's intent",
      });
      // The hole this guards: the ack floor alone is past the undelivered intent.
      assert.ok((await t.intake.ackFloor()) > orphan, 'the ack floor passed the orphan');
      assert.ok(mark < orphan, 'the mark is below it: the next owner scans it');
    } finally {
      await t.stop();
    }
  },
);

Gaps.run();
