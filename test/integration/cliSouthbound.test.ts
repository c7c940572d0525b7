/**
 * The southbound as `alcor` shows it, run as a user runs it (child processes)
 * against a real nats-server, Redis and the run's Kafka clusters, a placed
 * controller, two southbound modules and the hosts' agents:
 *  - `alcor placement` names which module relays which topology partitions, as
 *    the modules themselves say, and follows a module that leaves;
 *  - `alcor trace` follows a Kafka-bound host's goal states through the relay
 *    (which module, when) to the Kafka record (topic, partition, offset) — the
 *    very records a Kafka consumer reads — with stable stage ids and sources.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createKafkaClient, putHosts } from '../../infra/index.js';
import { KAFKA_HEADERS, kafkaTopics, streams, type HostRecord } from '../../shared/index.js';
import type { Controller } from '../../services/controller/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import {
  start as startSouthbound,
  type SouthboundModule,
} from '../../services/southbound/index.js';
import type { SouthboundPlacement } from '../../services/cli/placement.js';
import type { TraceReport } from '../../services/cli/trace.js';
import { readJsonCamel, runCli } from '../support/cli.js';
import {
  applyProgrammed,
  isolatedNats,
  startTestController,
  testLog,
  type IsolatedNats,
} from '../support/controller.js';
import { eventually, within } from '../support/eventually.js';
import { unique } from '../support/names.js';
import { releaseTestServers, testServers } from '../support/servers.js';
import { fleet } from '../support/workload.js';

interface Ctx {
  nats: IsolatedNats;
  kafka: Record<string, string[]>;
  redisUrl: string;
  hosts: HostRecord[];
  controller: Controller;
  modules: SouthboundModule[];
  agents: Fleet;
}

const TAG = unique('sbx');
const VPC = unique('sbvpc');
const test = suite<Ctx>('alcor placement and trace over the southbound');

const cli = (ctx: Ctx, args: string[]) => runCli(args, { NATS_URL: ctx.nats.url });
const json = async <T>(ctx: Ctx, args: string[]): Promise<T> => {
  const r = await cli(ctx, ['--json', ...args]);
  assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return readJsonCamel<T>(r.stdout);
};
const southboundOf = async (ctx: Ctx) =>
  (await json<{ southbound: SouthboundPlacement | null }>(ctx, ['placement'])).southbound;
const partitionKey = (h: HostRecord): string => [h.region, h.az, h.dc, h.cluster].join('.');

/** The modules' own view: which partitions each relays now. */
const owned = (ctx: Ctx) =>
  ctx.modules.map((m) => ({ id: m.instanceId, partitions: m.partitions().sort() }));

test.before(async (ctx) => {
  try {
    await setUp(ctx);
  } catch (err) {
    // uvu reports a failing hook only as a suite that passed nothing: say why.
    console.error('set-up failed:', err);
    throw err;
  }
});

async function setUp(ctx: Ctx): Promise<void> {
  const servers = await testServers();
  const [a, b] = Object.keys(servers.kafka);
  ctx.kafka = servers.kafka;
  ctx.redisUrl = servers.redisUrl;
  ctx.nats = await isolatedNats();
  // Cluster c0 on one Kafka cluster, c1 on the other (or the same), c2 on JetStream;
  // places of this suite's own, so its topics are its own on the shared brokers.
  const bindings: HostRecord['binding'][] = [
    { type: 'kafka', cluster: a! },
    { type: 'kafka', cluster: b ?? a! },
    { type: 'jetstream' },
  ];
  ctx.hosts = fleet(3, 2, TAG, { regionPrefix: `${TAG}-r` }).map((h) => ({
    ...h,
    binding: bindings[Number(h.cluster.slice(1))]!,
  }));
  await putHosts(ctx.nats.nc, ctx.hosts);
  // Placed (no static bucket set): `alcor placement` has a controller table to show.
  ctx.controller = await startTestController(ctx.nats.url, {
    redisUrl: ctx.redisUrl,
    buckets: undefined,
    programmedDeadlineMs: 60_000,
  });
  ctx.modules = [];
}

test.after(async (ctx) => {
  await ctx.agents?.stop();
  for (const m of ctx.modules ?? []) await m.stop();
  await ctx.controller?.stop();
  await ctx.nats?.stop();
  await releaseTestServers();
});

test('placement: no southbound yet, then each module with the partitions it relays', async (ctx) => {
  await eventually(async () => ((await cli(ctx, ['placement'])).code === 0 ? true : undefined), {
    what: 'the controller placed',
    timeoutMs: 30_000,
  });
  // Negative control: no module has placed anything.
  assert.is(await southboundOf(ctx), null);
  const none = await cli(ctx, ['placement']);
  assert.match(none.stdout, 'southbound: no partitions placed');

  for (const n of [1, 2])
    ctx.modules.push(
      await startSouthbound({
        instanceId: `${TAG}-m${n}`,
        natsUrl: ctx.nats.url,
        redisUrl: ctx.redisUrl,
        kafka: ctx.kafka,
        log: testLog,
      }),
    );
  const kafkaPartitions = [
    ...new Set(ctx.hosts.filter((h) => h.binding.type === 'kafka').map(partitionKey)),
  ].sort();
  await eventually(
    () =>
      owned(ctx)
        .flatMap((m) => m.partitions)
        .sort()
        .join() === kafkaPartitions.join() || undefined,
    { what: 'every Kafka partition relayed by a module', timeoutMs: 30_000 },
  );
  const s = (await southboundOf(ctx))!;
  assert.equal(
    s.members.map((m) => ({ id: m.id, partitions: m.partitions })),
    owned(ctx),
    'what alcor shows is what each module relays',
  );
  assert.ok(s.members.every((m) => m.alive && m.weight === 2 * m.partitions.length));
  assert.equal(
    s.partitions.map((p) => [p.partition, p.weight, p.ownerAlive]),
    kafkaPartitions.map((p) => [p, 2, true]),
  );
  assert.ok(s.leader !== null && ctx.modules.some((m) => m.instanceId === s.leader), `${s.leader}`);

  const text = await cli(ctx, ['placement', '--partitions']);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, /MODULE\s+ALIVE\s+CAPACITY\s+PARTITIONS\s+HOSTS/);
  for (const p of s.partitions)
    assert.match(
      text.stdout,
      new RegExp(`${p.partition.replaceAll('.', '\\.')}\\s+${p.owner}\\s+yes\\s+2`),
    );
  assert.not.match(
    (await cli(ctx, ['placement'])).stdout,
    /PARTITION\s+MODULE/,
    'only with --partitions',
  );

  // The agents, once their partitions are assigned (they wait for them).
  ctx.agents = await startFleet({
    natsUrl: ctx.nats.url,
    kafka: ctx.kafka,
    hosts: ctx.hosts,
    logger: testLog,
    fleetId: TAG,
  });
});

test('trace: a Kafka-bound host through the relay to the records a Kafka consumer reads', async (ctx) => {
  const [c0, , c1, , c2] = ctx.hosts;
  const intents = [
    { id: `${VPC}-vpc`, kind: 'vpc.create', vpcId: VPC, spec: { cidr: '10.0.0.0/16' } },
    {
      id: `${VPC}-subnet`,
      kind: 'subnet.create',
      vpcId: VPC,
      spec: { subnetId: 's1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' },
    },
    ...[c1!, c2!, c0!].map((h, i) => ({
      id: `${VPC}-p${i}`,
      kind: 'port.create',
      vpcId: VPC,
      spec: { portId: `p${i}`, subnetId: 's1', hostId: h.hostId },
    })),
  ];
  for (const intent of intents) await applyProgrammed(ctx.nats.nc, [intent]);
  // The last port, on a host of c0: its own unicast and the neighbor multicasts reach
  // all three hosts, two of them over Kafka.
  const t = await json<TraceReport>(ctx, ['trace', `${VPC}-p2`, '--vpc', VPC]);
  assert.is(t.outcome, 'programmed', JSON.stringify(t.stages));
  const ids = t.stages.map((s) => s.stage);
  for (const stage of [
    'received',
    'decided',
    'goal_states_stored',
    'relayed',
    'kafka_produced',
    'acked',
    'accepted',
    'programmed',
  ])
    assert.ok(ids.includes(stage as never), `${stage} in ${ids.join(', ')}`);
  for (const s of t.stages) assert.match(s.stage, /^[a-z]+(_[a-z]+)*$/);
  const source = (id: string) => t.stages.filter((s) => s.stage === id).map((s) => s.source);
  assert.equal(source('received'), [streams.intents]);
  assert.equal(source('decided'), [streams.events]);
  assert.equal(source('goal_states_stored'), [streams.goalStates]);
  assert.equal(source('acked'), [streams.acks]);
  assert.ok(source('relayed').every((x) => x === streams.relays));
  const kafkaHosts = [c0!, c1!];
  assert.equal(
    source('kafka_produced').sort(),
    [...new Set(kafkaHosts.map((h) => kafkaTopics.cluster(h)))].sort(),
  );

  // Each Kafka-bound host: relayed by the module that owns its partition.
  const s = (await southboundOf(ctx))!;
  for (const h of kafkaHosts) {
    const row = t.hosts.find((x) => x.hostId === h.hostId)!;
    assert.ok(row.kafka && row.kafka.length > 0, JSON.stringify(row));
    const owner = s.partitions.find((p) => p.partition === partitionKey(h))!.owner;
    for (const hop of row.kafka) {
      assert.is(hop.member, owner);
      assert.is(hop.kafkaCluster, h.binding.type === 'kafka' ? h.binding.cluster : '');
      assert.is(hop.topic, kafkaTopics.cluster(h));
      assert.ok(Date.parse(hop.relayedAt) <= Date.parse(hop.producedAt));
      // producedAt is when the relay had Kafka's answer; an agent may read and ack the
      // record before that answer arrives, so only the take precedes the ack.
      assert.ok(Date.parse(hop.relayedAt) <= Date.parse(row.at!), 'taken before the ack');
    }
  }
  const jsHost = t.hosts.find((x) => x.hostId === c2!.hostId)!;
  assert.is(jsHost.kafka, undefined, 'a JetStream-bound host has no Kafka hop');

  // What Kafka holds for this intent's revision: read with a consumer of our own.
  const fromTrace = t.hosts
    .flatMap((h) => (h.kafka ?? []).map((k) => [h.hostId, k.topic, k.partition, k.offset]))
    .map((x) => x.join(' '))
    .sort();
  const read: string[] = [];
  for (const h of kafkaHosts) {
    if (h.binding.type !== 'kafka') continue;
    const topic = kafkaTopics.cluster(h);
    const client = createKafkaClient(h.binding.cluster, ctx.kafka[h.binding.cluster]!, {
      clientId: unique('trace-check'),
      logger: testLog,
    });
    const admin = client.kafka.admin();
    await admin.connect();
    const high = new Map(
      (await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]),
    );
    await admin.disconnect();
    const consumer = client.kafka.consumer({ groupId: unique('trace-check') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen = new Map<number, bigint>();
    await within(
      30_000,
      `reading ${topic}`,
      new Promise<void>((resolve) => {
        const done = () =>
          [...high].every(([p, hw]) => hw === 0n || (seen.get(p) ?? -1n) >= hw - 1n);
        if (done()) resolve();
        void consumer.run({
          eachMessage: ({ partition, message }) => {
            seen.set(partition, BigInt(message.offset));
            const hdr = (k: string) => message.headers?.[k]?.toString();
            if (
              hdr(KAFKA_HEADERS.vpcId) === VPC &&
              Number(hdr(KAFKA_HEADERS.revision)) === t.revision
            )
              read.push([message.key?.toString(), topic, partition, message.offset].join(' '));
            if (done()) resolve();
            return Promise.resolve();
          },
        });
      }),
    );
    await consumer.disconnect();
  }
  assert.ok(read.length >= 2, `records of the intent read from Kafka: ${read.join(' | ')}`);
  assert.equal(fromTrace, read.sort(), 'the trace names exactly the records Kafka holds');

  const text = await cli(ctx, ['trace', `${VPC}-p2`, '--vpc', VPC]);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, /STAGE\s+SOURCE\s+AT/);
  assert.match(text.stdout, /goal states stored\s+GOALSTATES/);
  assert.match(text.stdout, /kafka produced\s+alcor\.gs\./);
  const hop = t.hosts.find((h) => h.hostId === c0!.hostId)!.kafka![0]!;
  assert.match(text.stdout, `p${hop.partition}@${hop.offset} by ${hop.member}`);
});

test('trace without relay receipts (no RELAYS stream): the other stages, and no Kafka hop', async (ctx) => {
  await ctx.nats.jsm.streams.delete(streams.relays);
  const t = await json<TraceReport>(ctx, ['trace', `${VPC}-p2`, '--vpc', VPC]);
  const ids = t.stages.map((s) => s.stage);
  assert.ok(!ids.includes('relayed') && !ids.includes('kafka_produced'), ids.join());
  assert.ok(ids.includes('acked') && ids.includes('programmed'), ids.join());
  const c0 = t.hosts.find((h) => h.hostId === ctx.hosts[0]!.hostId)!;
  assert.equal(c0.kafka, []);
  const text = await cli(ctx, ['trace', `${VPC}-p2`, '--vpc', VPC]);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, 'no receipt');
});

test('placement follows a module that leaves: the other relays every partition', async (ctx) => {
  const gone = ctx.modules.pop()!;
  await gone.stop();
  const s = await eventually(
    async () => {
      const now = await southboundOf(ctx);
      return now && now.partitions.every((p) => p.owner === ctx.modules[0]!.instanceId)
        ? now
        : undefined;
    },
    { what: 'the partitions moved to the module left', timeoutMs: 30_000 },
  );
  assert.equal(
    s.members.map((m) => [m.id, m.alive]),
    [[ctx.modules[0]!.instanceId, true]],
  );
});

test.run();
