/**
 * The southbound end to end on real servers (issue 6): hosts over 2 regions, a
 * third bound to Kafka cluster A (started by this suite, so it can be stopped), a
 * third to Kafka cluster B, a third to JetStream; Zipf-sized VPCs; a controller,
 * a southbound module and the fleet simulator. The convergence oracle judges.
 *
 * Sizes: SOUTHBOUND_HOSTS (500), SOUTHBOUND_VPCS (100), SOUTHBOUND_INTENTS (20,000).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  connectNats,
  putHosts,
  runDir,
  startLocalKafka,
  type LocalKafka,
} from '../../infra/index.js';
import { StatusSchema, type HostRecord, type Status } from '../../shared/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import { diverging, foldEventLog, type Divergence } from '../../services/nca/oracle.js';
import type { Controller } from '../../services/controller/index.js';
import {
  start as startSouthbound,
  type SouthboundModule,
} from '../../services/southbound/index.js';
import { eventually } from '../support/eventually.js';
import {
  clientConnections,
  isolatedNats,
  startTestController,
  testLog,
  type IsolatedNats,
} from '../support/controller.js';
import { releaseTestServers, testServers } from '../support/servers.js';
import { unique } from '../support/names.js';
import { fleet as makeHosts, prng, publishScripts, vpcScript } from '../support/workload.js';

const HOSTS = Number(process.env.SOUTHBOUND_HOSTS ?? 500);
const VPCS = Number(process.env.SOUTHBOUND_VPCS ?? 100);
const INTENTS = Number(process.env.SOUTHBOUND_INTENTS ?? 20_000);
const CLUSTERS = 10;

interface Ctx {
  nats: IsolatedNats;
  kafkaA: LocalKafka;
  kafkaDir: string;
  kafka: Record<string, string[]>;
  redisUrl: string;
  tag: string;
  hosts: HostRecord[];
  controller: Controller;
  southbound: SouthboundModule;
  fleet: Fleet;
  failing: Set<string>;
  statuses: Map<string, Map<string, Status>>;
  statusSub: Subscription;
  watcher: NatsConnection;
  clients: NatsConnection[];
}

const test = suite<Ctx>('southbound');

/** Records every status by intent and outcome (a core subscription on `status.>`). */
function collectStatuses(nc: NatsConnection, into: Map<string, Map<string, Status>>): Subscription {
  return nc.subscribe('status.>', {
    callback: (err, msg) => {
      if (err) return;
      const parsed = StatusSchema.safeParse(msg.json());
      if (!parsed.success) return;
      const s = parsed.data;
      let byOutcome = into.get(s.intentId);
      if (!byOutcome) into.set(s.intentId, (byOutcome = new Map<string, Status>()));
      byOutcome.set(s.outcome, s);
    },
  });
}

/** Zipf-sized scripts summing to about `total` intents. */
function zipfScripts(tag: string, hosts: HostRecord[], vpcs: number, total: number, seed: number) {
  const weights = Array.from({ length: vpcs }, (_, i) => 1 / (i + 1) ** 0.9);
  const sum = weights.reduce((a, b) => a + b, 0);
  const scripts = new Map<string, unknown[]>();
  const rnd = prng(seed);
  weights.forEach((w, i) => {
    const length = Math.max(8, Math.round((total * w) / sum));
    const vpcId = `${tag}-v${i}`;
    const spread = Math.max(3, Math.min(60, Math.round(length / 20)));
    scripts.set(vpcId, vpcScript(vpcId, length, hosts, Math.floor(rnd() * 1e9), spread));
  });
  return scripts;
}

/** Every accepted intent's final status, once each has one. */
async function settled(ctx: Ctx, intentIds: Iterable<string>, timeoutMs: number) {
  const ids = [...intentIds];
  return eventually(
    () => {
      let waiting = 0;
      for (const id of ids) {
        const s = ctx.statuses.get(id);
        if (!s) {
          waiting += 1;
          continue;
        }
        if (s.has('rejected')) continue;
        if (!s.has('programmed') && !s.has('incomplete')) waiting += 1;
      }
      return waiting === 0 ? true : undefined;
    },
    { timeoutMs, intervalMs: 250, what: 'every intent decided and every accepted one programmed' },
  );
}

function report(ctx: Ctx, label: string) {
  const byBinding = new Map<string, { delivered: number; needed: number; worst: number }>();
  for (const host of ctx.fleet.hosts.values()) {
    const b = host.record.binding;
    const key = b.type === 'kafka' ? `kafka-${b.cluster}` : 'jetstream';
    const agg = byBinding.get(key) ?? { delivered: 0, needed: 0, worst: 1 };
    agg.delivered += host.stats.delivered;
    agg.needed += host.stats.needed;
    if (host.stats.needed > 0)
      agg.worst = Math.max(agg.worst, host.stats.delivered / host.stats.needed);
    byBinding.set(key, agg);
  }
  const lines = [...byBinding].map(
    ([k, v]) =>
      `${k}: delivered ${v.delivered}, needed ${v.needed}, ratio ${(v.delivered / Math.max(1, v.needed)).toFixed(4)}, worst host ${v.worst.toFixed(3)}`,
  );
  console.log(`  [${label}] ${lines.join(' | ')}`);
}

async function oracle(ctx: Ctx): Promise<Divergence[]> {
  const states = await foldEventLog(ctx.nats.nc);
  return diverging(
    states,
    [...ctx.fleet.hosts.values()].map((h) => h.model),
  );
}

test.before(async (ctx) => {
  try {
    await setUp(ctx);
  } catch (err) {
    // uvu reports a failing hook only as a suite that passed nothing: say why.
    console.error('southbound suite set-up failed:', err);
    throw err;
  }
});

async function setUp(ctx: Ctx): Promise<void> {
  const servers = await testServers();
  ctx.tag = unique('sb');
  ctx.kafkaDir = runDir('alcor-sb-kafka-');
  ctx.nats = await isolatedNats();
  ctx.kafkaA = await startLocalKafka({ clusterId: 'a', dir: join(ctx.kafkaDir, 'a') });
  const b = Object.values(servers.kafka)[0]!;
  ctx.kafka = { a: ctx.kafkaA.brokers, b };
  ctx.redisUrl = servers.redisUrl;
  const bindings: HostRecord['binding'][] = [
    { type: 'kafka', cluster: 'a' },
    { type: 'kafka', cluster: 'b' },
    { type: 'jetstream' },
  ];
  ctx.hosts = makeHosts(CLUSTERS, Math.ceil(HOSTS / CLUSTERS), ctx.tag, {
    regions: 2,
    regionPrefix: `${ctx.tag}-r`,
    binding: (h) => bindings[h % 3]!,
  });
  await putHosts(ctx.nats.nc, ctx.hosts);
  ctx.statuses = new Map();
  ctx.watcher = await connectNats(ctx.nats.url, { name: 'status-watch' });
  ctx.statusSub = collectStatuses(ctx.watcher, ctx.statuses);
  ctx.controller = await startTestController(ctx.nats.url, {
    redisUrl: ctx.redisUrl,
    programmedDeadlineMs: Number(process.env.SOUTHBOUND_DEADLINE_MS ?? 120_000),
  });
  ctx.southbound = await startSouthbound({
    instanceId: `${ctx.tag}-m1`,
    natsUrl: ctx.nats.url,
    redisUrl: ctx.redisUrl,
    kafka: ctx.kafka,
    log: testLog,
  });
  ctx.failing = new Set();
  ctx.fleet = await startFleet({
    natsUrl: ctx.nats.url,
    kafka: ctx.kafka,
    hosts: ctx.hosts,
    logger: testLog,
    fleetId: ctx.tag,
    failOp: (hostId, op) => ctx.failing.has(`${hostId}/${op.key}`),
  });
  ctx.clients = await clientConnections(ctx.nats.url, 4);
}

test.after(async (ctx) => {
  await Promise.all((ctx.clients ?? []).map((c) => c.close()));
  ctx.statusSub?.unsubscribe();
  await ctx.watcher?.close();
  await ctx.fleet?.stop();
  await ctx.southbound?.stop();
  await ctx.controller?.stop();
  await ctx.kafkaA?.stop();
  await ctx.nats?.stop();
  if (ctx.kafkaDir) rmSync(ctx.kafkaDir, { recursive: true, force: true });
  await releaseTestServers();
});

test('the load: every accepted intent programmed, zero differences, JetStream hosts get only what they need', async (ctx) => {
  const scripts = zipfScripts(ctx.tag, ctx.hosts, VPCS, INTENTS, 7);
  const ids = [...scripts.values()].flat().map((i) => (i as { id: string }).id);
  const started = performance.now();
  await publishScripts(ctx.clients, scripts);
  await settled(ctx, ids, 240_000);
  const seconds = (performance.now() - started) / 1000;
  const accepted = ids.filter((id) => ctx.statuses.get(id)?.has('accepted'));
  const incomplete = accepted.filter((id) => !ctx.statuses.get(id)!.has('programmed'));
  console.log(
    `  ${ids.length} intents (${accepted.length} accepted) over ${ctx.hosts.length} hosts programmed in ${seconds.toFixed(1)} s`,
  );
  report(ctx, 'load');
  assert.ok(accepted.length > ids.length / 2, 'most intents accepted');
  assert.equal(
    incomplete.map((id) => ctx.statuses.get(id)!.get('incomplete')?.hosts),
    [],
    'every accepted intent programmed',
  );
  const diff = await oracle(ctx);
  assert.is(diff.length, 0, `oracle: ${JSON.stringify(diff.slice(0, 3))}`);
  for (const host of ctx.fleet.hosts.values()) {
    if (host.record.binding.type === 'jetstream')
      assert.is(
        host.stats.delivered,
        host.stats.needed,
        `${host.record.hostId} delivered = needed`,
      );
    assert.is(host.stats.outOfOrder, 0, `${host.record.hostId} got its deltas in order`);
    assert.is(host.stats.misrouted, 0, `${host.record.hostId} got only its own records`);
  }
});

test.run();
