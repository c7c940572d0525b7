/**
 * A VPC of 100,000 ports over 5,000 hosts (issue 22), on real servers. The VPC is
 * written straight into EVENTS through the decider (test/support/seedVpc.ts: the
 * controller's own command handler, its snapshot saved): through the sync API each
 * of the 5,000 hosts would first be sent a growing full state as it joined. Then a
 * host joins it on each binding — a port of its own, through the sync API — and
 * must hold exactly what EVENTS says (the oracle, for that host): its full state
 * (~18 MB) travels in parts under the server's max_payload (JetStream) and under
 * the broker's message.max.bytes (Kafka). A host of the same Kafka cluster keeps
 * getting its small VPC's changes during that join.
 *
 * The 5,000 hosts run no agent: the join's deltas to them are never acked, so the
 * join itself ends `incomplete` at the deadline; what is checked is the joiner.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { putHosts, runDir, startLocalKafka, type LocalKafka } from '../../infra/index.js';
import { streams, subjects, type HostRecord } from '../../shared/index.js';
import { startFleet } from '../../services/nca/fleet.js';
import { compareHost, expectedState, foldEventLog, hostDigest } from '../../services/nca/oracle.js';
import type { ApplyReplyItem } from '../../services/controller/index.js';
import { start as startSouthbound } from '../../services/southbound/index.js';
import { nca } from '../../actors/index.js';
import {
  applyProgrammed,
  isolatedNats,
  startTestController,
  testLog,
  type IsolatedNats,
} from '../support/controller.js';
import { eventually as waitFor } from '../support/eventually.js';
import { fleet as makeHosts, readStream } from '../support/workload.js';
import { seedVpc } from '../support/seedVpc.js';
import { releaseTestServers, testServers } from '../support/servers.js';

const PORTS = Number(process.env.LARGE_VPC_PORTS ?? 100_000);
const CLUSTERS = 100;
const PER_CLUSTER = 50;
const VPC = 'huge';

interface Ctx {
  nats: IsolatedNats;
  kafkaDir: string;
  kafka: LocalKafka;
  controller: Awaited<ReturnType<typeof startTestController>>;
  southbound: Awaited<ReturnType<typeof startSouthbound>>;
  agents: Awaited<ReturnType<typeof startFleet>>;
  seeded: Awaited<ReturnType<typeof seedVpc>>;
  jsJoiner: HostRecord;
  kafkaJoiner: HostRecord;
  control: HostRecord;
  /** Hosts joined to the large VPC so far (a port each). */
  joined: number;
}

const test = suite<Ctx>('a 100,000-port VPC over 5,000 hosts');

/** One intent through the sync API, answered once decided (not waiting for programmed). */
async function applyOne(nc: NatsConnection, intent: unknown): Promise<ApplyReplyItem> {
  const reply = await nc.request(
    subjects.applyIntents,
    new TextEncoder().encode(JSON.stringify([intent])),
    { timeout: 60_000 },
  );
  return reply.json<ApplyReplyItem[]>()[0]!;
}

const joinPort = (hostId: string, portId: string) => ({
  id: `${VPC}-${portId}`,
  kind: 'port.create',
  vpcId: VPC,
  spec: { portId, subnetId: 's1', hostId, securityGroupIds: ['web'] },
});

/** Joins `host` to the large VPC; the seconds until its agent holds every port as a neighbor. */
async function joinAndConverge(ctx: Ctx, host: HostRecord, portId: string): Promise<number> {
  const began = performance.now();
  const answer = await applyOne(ctx.nats.nc, joinPort(host.hostId, portId));
  assert.is(answer.outcome, 'accepted', JSON.stringify(answer));
  // Every port of the VPC is a neighbor: the seeded ones and each joiner's.
  const ports = PORTS + ++ctx.joined;
  const agent = ctx.agents.hosts.get(host.hostId)!;
  const waited = waitFor(
    () => {
      const held = nca.liveResources(agent.model, VPC);
      let neighbors = 0;
      for (const r of held.values()) if (r.kind === 'neighbor') neighbors += 1;
      return neighbors === ports ? true : undefined;
    },
    {
      timeoutMs: Number(process.env.LARGE_VPC_JOIN_MS ?? 240_000),
      intervalMs: 250,
      what: `${host.hostId} holds all ${ports} ports`,
    },
  );
  await waited.catch((err: Error) => {
    const sb = { relay: ctx.southbound.relayMetrics, kafka: ctx.southbound.bindings() };
    throw new Error(`${err.message}; agent ${JSON.stringify(agent.stats)}; ${JSON.stringify(sb)}`);
  });
  return (performance.now() - began) / 1000;
}

/** The host's copy of `vpcId` against what EVENTS says it must hold (only that host is projected). */
async function assertConverged(ctx: Ctx, host: HostRecord, vpcId = VPC): Promise<void> {
  const states = await foldEventLog(ctx.nats.nc, { vpcIds: [vpcId] });
  const model = ctx.agents.hosts.get(host.hostId)!.model;
  const want = expectedState(states, new Set([host.hostId])).get(host.hostId);
  const divergences = compareHost(host.hostId, want, hostDigest(model, [vpcId]));
  assert.equal(
    divergences.map((d) => ({ ...d, missing: d.missing.length, extra: d.extra.length })),
    [],
    `${host.hostId} holds exactly what EVENTS says of ${vpcId}`,
  );
}

test.before(async (ctx) => {
  try {
    const { redisUrl } = await testServers();
    ctx.nats = await isolatedNats();
    // Hosts h0…h49 of each cluster hold the VPC; h50 of c0 (JetStream), c1 and c2
    // (Kafka) are the joiners and the control.
    const all = makeHosts(CLUSTERS, PER_CLUSTER + 1, 'big', {
      binding: (h) =>
        h === PER_CLUSTER ? { type: 'kafka', cluster: 'big' } : { type: 'jetstream' },
    });
    const holders = all.filter((h) => !h.hostId.endsWith(`-h${PER_CLUSTER}`));
    const extra = (c: number) => all.find((h) => h.hostId === `big-c${c}-h${PER_CLUSTER}`)!;
    ctx.jsJoiner = { ...extra(0), binding: { type: 'jetstream' } };
    ctx.kafkaJoiner = extra(1);
    ctx.control = extra(2);
    ctx.joined = 0;
    ctx.seeded = await seedVpc(ctx.nats.nc, VPC, holders, PORTS);
    console.log(
      `  seeded ${PORTS} ports over ${holders.length} hosts: ${ctx.seeded.messages} EVENTS messages in ${ctx.seeded.seconds.toFixed(1)} s`,
    );
    const joiners = [ctx.jsJoiner, ctx.kafkaJoiner, ctx.control];
    await putHosts(ctx.nats.nc, joiners);
    ctx.kafkaDir = runDir('alcor-large-kafka-');
    // PLAINTEXT, this suite's own broker; its message.max.bytes is the run's
    // (ALCOR_KAFKA_MESSAGE_MAX_BYTES, or Kafka's default of about 1 MB).
    ctx.kafka = await startLocalKafka({ clusterId: 'big', dir: join(ctx.kafkaDir, 'big') });
    const kafka = { big: ctx.kafka.brokers };
    ctx.controller = await startTestController(ctx.nats.url, {
      redisUrl,
      programmedDeadlineMs: 30_000,
      decisionTimeoutMs: 120_000,
    });
    ctx.southbound = await startSouthbound({
      instanceId: 'large-sb',
      natsUrl: ctx.nats.url,
      redisUrl,
      kafka,
      log: testLog,
    });
    ctx.agents = await startFleet({
      natsUrl: ctx.nats.url,
      kafka,
      hosts: joiners,
      logger: testLog,
      fleetId: 'large',
    });
  } catch (err) {
    console.error('large VPC suite set-up failed:', err);
    throw err;
  }
});

test.after(async (ctx) => {
  await ctx.agents?.stop();
  await ctx.southbound?.stop();
  await ctx.controller?.stop();
  await ctx.kafka?.stop();
  await ctx.nats?.stop();
  if (ctx.kafkaDir) rmSync(ctx.kafkaDir, { recursive: true, force: true });
  await releaseTestServers();
});

test('a host joining on JetStream gets the full state in parts and converges', async (ctx) => {
  const seconds = await joinAndConverge(ctx, ctx.jsJoiner, 'pjs');
  await assertConverged(ctx, ctx.jsJoiner);
  const stats = ctx.agents.hosts.get(ctx.jsJoiner.hostId)!.stats;
  assert.is(stats.invalid, 0);
  console.log(
    `  JetStream joiner: ${PORTS + ctx.joined} neighbors in ${seconds.toFixed(1)} s (${(stats.bytes / 1e6).toFixed(1)} MB received)`,
  );
});

test('a host joining on Kafka converges; a host of the same cluster keeps getting its small VPC', async (ctx) => {
  const { nc } = ctx.nats;
  await applyProgrammed(nc, [
    { id: 'small-vpc', kind: 'vpc.create', vpcId: 'small', spec: { cidr: '10.1.0.0/16' } },
    {
      id: 'small-subnet',
      kind: 'subnet.create',
      vpcId: 'small',
      spec: { subnetId: 's1', cidr: '10.1.1.0/24', gatewayIp: '10.1.1.1' },
    },
  ]);
  const smallPort = (n: number) => ({
    id: `small-p${n}`,
    kind: 'port.create',
    vpcId: 'small',
    spec: { portId: `p${n}`, subnetId: 's1', hostId: ctx.control.hostId },
  });
  const [first] = await applyProgrammed<ApplyReplyItem[]>(nc, [smallPort(0)]);
  assert.is(first?.outcome === 'accepted' && first.programmed?.outcome, 'programmed', 'control');

  const parts = ctx.southbound.relayMetrics.parts;
  const joining = joinAndConverge(ctx, ctx.kafkaJoiner, 'pkafka');
  // While the joiner's records are made and sent: the control's changes, one by one.
  const during: number[] = [];
  let joined = false;
  void joining.finally(() => (joined = true)).catch(() => undefined);
  for (let n = 1; !joined && n <= 30; n++) {
    const began = performance.now();
    const [r] = await applyProgrammed<ApplyReplyItem[]>(nc, [smallPort(n)]);
    assert.is(r?.outcome === 'accepted' && r.programmed?.outcome, 'programmed', `control p${n}`);
    during.push(performance.now() - began);
  }
  const seconds = await joining;
  await assertConverged(ctx, ctx.kafkaJoiner);
  await assertConverged(ctx, ctx.control, 'small');
  assert.ok(during.length > 0, 'the control changed while the joiner was joining');
  assert.ok(
    ctx.southbound.relayMetrics.parts > parts,
    `the joiner's full state went as parts (${ctx.southbound.relayMetrics.parts - parts} records)`,
  );
  assert.is(ctx.southbound.relayMetrics.tooLarge, 0);
  assert.is(ctx.agents.hosts.get(ctx.kafkaJoiner.hostId)!.stats.invalid, 0);
  console.log(
    `  Kafka joiner: ${PORTS + ctx.joined} neighbors in ${seconds.toFixed(1)} s; control programmed ${during.length}× meanwhile (worst ${Math.max(...during).toFixed(0)} ms)`,
  );
});

test('the full states were stored in parts, none over max_payload', async (ctx) => {
  const maxPayload = ctx.nats.nc.info!.max_payload;
  const stored = await readStream(ctx.nats.nc, streams.goalStates);
  const parts = stored.filter(
    (m) => (JSON.parse(new TextDecoder().decode(m.data)) as { part?: unknown }).part,
  );
  const bytes = parts.reduce((n, m) => n + m.data.length, 0);
  assert.ok(parts.length >= 4, `two full states in parts: ${parts.length} stored`);
  assert.ok(bytes > 2 * 15e6, `two full states of ~18 MB each: ${bytes} bytes in parts`);
  const largest = Math.max(...stored.map((m) => m.data.length));
  assert.ok(largest <= maxPayload, `largest goal state stored: ${largest} of ${maxPayload} bytes`);
});

test.run();
