/**
 * The southbound as `alcor` shows it, run as a user runs it (child processes)
 * against a real nats-server, Redis and the run's Kafka clusters, a placed
 * controller, two southbound modules and the hosts' agents:
 *  - `alcor placement` names which module relays which topology partitions, as
 *    the modules themselves say, and follows a module that leaves.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { putHosts } from '../../infra/index.js';
import type { HostRecord } from '../../shared/index.js';
import type { Controller } from '../../services/controller/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import {
  start as startSouthbound,
  type SouthboundModule,
} from '../../services/southbound/index.js';
import type { SouthboundPlacement } from '../../services/cli/placement.js';
import { readJsonCamel, runCli } from '../support/cli.js';
import {
  isolatedNats,
  startTestController,
  testLog,
  type IsolatedNats,
} from '../support/controller.js';
import { eventually } from '../support/eventually.js';
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
const test = suite<Ctx>('alcor placement over the southbound');

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
