/**
 * The southbound end to end on real servers (issue 6): hosts over 2 regions, a
 * third bound to Kafka cluster A (started by this suite, so it can be stopped), a
 * third to Kafka cluster B, a third to JetStream; Zipf-sized VPCs; a controller,
 * a southbound module and the fleet simulator. The convergence oracle judges.
 *
 * Sizes: SOUTHBOUND_HOSTS (500), SOUTHBOUND_VPCS (100), SOUTHBOUND_INTENTS (20,000).
 * SOUTHBOUND_SETTLE_MS (480 s) bounds each wait for the load to be decided and
 * settled: a liveness bound, not a speed target (on a loaded 2-core machine the
 * 20,000 intents took more than 240 s to decide, at this commit and before it).
 * SOUTHBOUND_DEADLINE_MS (120 s) is the programmed deadline: it must exceed the
 * 20 s outage of Kafka A plus its restart and the consumers' rejoin (~15 s here).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  connectNats,
  putHosts,
  runDir,
  kafkaCaVar,
  kafkaSaslFromEnv,
  kafkaSaslVars,
  makeKafkaUsers,
  type KafkaSasl,
  startLocalKafka,
  type LocalKafka,
} from '../../infra/index.js';
import {
  ConfigError,
  bucketOf,
  kafkaTopics,
  subjects,
  StatusSchema,
  type HostRecord,
  type Status,
} from '../../shared/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import { diverging, foldEventLog, type Divergence } from '../../services/nca/oracle.js';
import type { ApplyReplyItem, Controller } from '../../services/controller/index.js';
import {
  start as startSouthbound,
  type SouthboundModule,
} from '../../services/southbound/index.js';
import { eventually } from '../support/eventually.js';
import {
  clientConnections,
  isolatedNats,
  recentLogs,
  startTestController,
  testLog,
  type IsolatedNats,
} from '../support/controller.js';
import { releaseTestServers, suiteTls, testServers } from '../support/servers.js';
import { unique } from '../support/names.js';
import {
  fleet as makeHosts,
  prng,
  publishScripts,
  vpcScript,
  vpcWithPorts,
} from '../support/workload.js';

const HOSTS = Number(process.env.SOUTHBOUND_HOSTS ?? 500);
const VPCS = Number(process.env.SOUTHBOUND_VPCS ?? 100);
const INTENTS = Number(process.env.SOUTHBOUND_INTENTS ?? 20_000);
const SETTLE_MS = Number(process.env.SOUTHBOUND_SETTLE_MS ?? 480_000);
const CLUSTERS = 10;
const encoder = new TextEncoder();

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

/** The `KAFKA_<ID>_SASL_*` variables naming `user` for cluster `id`. */
function saslEnv(id: string, user: KafkaSasl): Record<string, string> {
  const vars = kafkaSaslVars(id);
  return { [vars.username]: user.username, [vars.password]: user.password };
}

async function setUp(ctx: Ctx): Promise<void> {
  const servers = await testServers();
  ctx.tag = unique('sb');
  ctx.kafkaDir = runDir('alcor-sb-kafka-');
  ctx.nats = await isolatedNats();
  // With the run's Kafka admin user, if the provisioned clusters have one (the
  // clients take it from the environment).
  const sasl = kafkaSaslFromEnv('a');
  // And with TLS from the run's CA when the run's servers have it.
  const tls = await suiteTls();
  ctx.kafkaA = await startLocalKafka({
    clusterId: 'a',
    dir: join(ctx.kafkaDir, 'a'),
    ...(sasl ? { users: { ...makeKafkaUsers(), admin: sasl } } : {}),
    ...(tls ? { tls } : {}),
  });
  if (tls) process.env[kafkaCaVar('a')] = tls.caFile;
  // Kafka `b` of this suite is the run's first cluster: its clients take that
  // cluster's user and CA (each provisioned cluster has users of its own).
  const [firstId, b] = Object.entries(servers.kafka)[0]!;
  const first = kafkaSaslFromEnv(firstId);
  if (first) Object.assign(process.env, saslEnv('b', first));
  const firstCa = process.env[kafkaCaVar(firstId)];
  if (firstCa) process.env[kafkaCaVar('b')] = firstCa;
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
    trail: true,
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
  const published = performance.now();
  await eventually(() => (ids.every((id) => ctx.statuses.has(id)) ? true : undefined), {
    timeoutMs: SETTLE_MS,
    intervalMs: 100,
    what: 'every intent decided',
  });
  const decided = performance.now();
  await settled(ctx, ids, SETTLE_MS);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `  published in ${((published - started) / 1000).toFixed(1)} s, decided in ${((decided - started) / 1000).toFixed(1)} s`,
  );
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
    assert.is(
      host.stats.outOfOrder,
      0,
      `${host.record.hostId} got its deltas in order: ${JSON.stringify(host.disorder)}; services said: ${recentLogs(30).join('\n')}`,
    );
    assert.is(host.stats.misrouted, 0, `${host.record.hostId} got only its own records`);
  }
});

/** Every host's stats are sane: nothing out of order, nothing misrouted. */
function assertOrderAndRouting(ctx: Ctx): void {
  for (const host of ctx.fleet.hosts.values()) {
    assert.is(
      host.stats.outOfOrder,
      0,
      `${host.record.hostId} got its deltas in order: ${JSON.stringify(host.disorder)}; services said: ${recentLogs(30).join('\n')}`,
    );
    assert.is(host.stats.misrouted, 0, `${host.record.hostId} got only its own records`);
  }
}

/** Intents of `ids` that were accepted but did not reach `programmed`, with their hosts. */
function notProgrammed(ctx: Ctx, ids: readonly string[]) {
  return ids
    .filter(
      (id) => ctx.statuses.get(id)?.has('accepted') && !ctx.statuses.get(id)!.has('programmed'),
    )
    .map((id) => ({ id, ...ctx.statuses.get(id)!.get('incomplete')?.hosts }));
}

test('Kafka cluster A stopped for 20 s under load, then started: nothing lost, order kept, zero differences', async (ctx) => {
  const scripts = zipfScripts(
    `${ctx.tag}-k`,
    ctx.hosts,
    Math.max(4, Math.round(VPCS / 5)),
    Math.max(400, Math.round(INTENTS / 5)),
    11,
  );
  const ids = [...scripts.values()].flat().map((i) => (i as { id: string }).id);
  const before = { ...ctx.southbound.bindings().a! };
  const publishing = publishScripts(ctx.clients, scripts);
  const outage = ctx.kafkaA.restart(20_000);
  await publishing;
  await outage;
  const back = performance.now();
  await settled(ctx, ids, SETTLE_MS);
  const after = ctx.southbound.bindings().a!;
  console.log(
    `  outage: ${after.produceErrors - before.produceErrors} failed produces, ${after.reconnects - before.reconnects} reconnects; every intent settled ${((performance.now() - back) / 1000).toFixed(1)} s after A was back; ${ctx.fleet.totals().duplicates} duplicate deliveries so far`,
  );
  assert.ok(after.produceErrors > before.produceErrors, 'the outage was felt by the binding');
  assert.is(after.state, 'ready');
  assert.equal(notProgrammed(ctx, ids), [], 'every accepted intent programmed');
  const diff = await oracle(ctx);
  assert.is(diff.length, 0, `oracle: ${JSON.stringify(diff.slice(0, 3))}`);
  assertOrderAndRouting(ctx);
});

/** The host of `binding` that holds the most VPCs. */
function busiest(ctx: Ctx, binding: string): HostAgentView {
  let best: HostAgentView | undefined;
  for (const h of ctx.fleet.hosts.values()) {
    const b = h.record.binding;
    if ((b.type === 'kafka' ? b.cluster : 'jetstream') !== binding) continue;
    if (!best || h.model.vpcs.size > best.model.vpcs.size) best = h;
  }
  return best!;
}
type HostAgentView = Fleet['hosts'] extends ReadonlyMap<string, infer H> ? H : never;

test('NCAs killed and restarted mid-load resync and converge', async (ctx) => {
  const victims = [busiest(ctx, 'a'), busiest(ctx, 'jetstream')];
  const held = victims.map((v) => v.model.vpcs.size);
  const resyncs = victims.map((v) => v.stats.resyncs);
  const scripts = zipfScripts(`${ctx.tag}-n`, ctx.hosts, 6, 600, 13);
  const ids = [...scripts.values()].flat().map((i) => (i as { id: string }).id);
  const publishing = publishScripts(ctx.clients, scripts);
  await Promise.all(victims.map((v) => ctx.fleet.restart(v.record.hostId)));
  await publishing;
  await settled(ctx, ids, SETTLE_MS);
  victims.forEach((v, i) => {
    assert.ok(held[i]! > 0, `${v.record.hostId} held VPCs before`);
    assert.ok(v.stats.resyncs > resyncs[i]!, `${v.record.hostId} asked a resync`);
    assert.ok(v.model.vpcs.size >= held[i]!, `${v.record.hostId} holds its VPCs again`);
  });
  const diff = await oracle(ctx);
  assert.is(diff.length, 0, `oracle: ${JSON.stringify(diff.slice(0, 3))}`);
  assert.equal(notProgrammed(ctx, ids), [], 'every accepted intent programmed');
});

async function applySync(nc: NatsConnection, batch: unknown[]): Promise<ApplyReplyItem[]> {
  const reply = await nc.request(subjects.applyIntents, encoder.encode(JSON.stringify(batch)), {
    timeout: 30_000,
  });
  return reply.json<ApplyReplyItem[]>();
}

test('an NCA that fails one op: incomplete names it; once the dataplane takes it, it converges', async (ctx) => {
  const jsHost = busiest(ctx, 'jetstream').record.hostId;
  const kafkaHost = busiest(ctx, 'b').record.hostId;
  const vpcId = `${ctx.tag}-fail`;
  ctx.failing.add(`${jsHost}/port:p0`);
  ctx.failing.add(`${kafkaHost}/port:p1`);
  const batch = vpcWithPorts(vpcId, [jsHost, kafkaHost]);
  const reply = await applySync(ctx.clients[0]!, batch);
  assert.equal(
    reply.map((r) => r.outcome),
    ['accepted', 'accepted', 'accepted', 'accepted'],
  );
  await settled(
    ctx,
    batch.map((b) => b.id),
    60_000,
  );
  const p1 = ctx.statuses.get(`${vpcId}-p0`)!.get('incomplete');
  const p2 = ctx.statuses.get(`${vpcId}-p1`)!.get('incomplete');
  assert.ok(p1 && p2, 'both port intents are incomplete');
  assert.equal(p1.hosts?.failedHosts, [jsHost]);
  assert.is(p1.error?.code, 'apply_failed');
  assert.ok(p2.hosts?.failedHosts?.includes(kafkaHost), JSON.stringify(p2.hosts));
  assert.ok(ctx.statuses.get(`${vpcId}-vpc`)!.has('programmed'), 'the VPC itself touched no host');
  // The dataplane recovers: the agents' own retries (resync of the VPC) converge.
  ctx.failing.clear();
  const states = async () => foldEventLog(ctx.nats.nc, { vpcIds: [vpcId] });
  await eventually(
    async () => {
      const models = [jsHost, kafkaHost].map((h) => ctx.fleet.hosts.get(h)!.model);
      // Only this VPC was folded: the hosts' other VPCs are not judged here.
      const diff = diverging(await states(), models).filter((d) => d.vpcId === vpcId);
      return diff.length === 0 ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500, what: 'the failing hosts converge once they can apply' },
  );
  assert.ok(ctx.fleet.hosts.get(jsHost)!.model.vpcs.has(vpcId));
});

test('one producer per Kafka cluster: new clusters (new topics) open no new broker connections', async (ctx) => {
  const before = ctx.southbound.bindings();
  const extra = makeHosts(3, 2, `${ctx.tag}-x`, {
    regions: 1,
    regionPrefix: `${ctx.tag}-xr`,
    binding: () => ({ type: 'kafka', cluster: 'a' }),
  }).map((h, i) => ({ ...h, underlayIp: `172.31.250.${i + 1}` }));
  await putHosts(ctx.nats.nc, extra);
  const more = await startFleet({
    natsUrl: ctx.nats.url,
    kafka: ctx.kafka,
    hosts: extra,
    logger: testLog,
    fleetId: `${ctx.tag}-x`,
  });
  try {
    const vpcId = `${ctx.tag}-wide`;
    const batch = vpcWithPorts(
      vpcId,
      extra.map((h) => h.hostId),
    );
    await applySync(ctx.clients[0]!, batch);
    await settled(
      ctx,
      batch.map((b) => b.id),
      120_000,
    );
    assert.equal(
      notProgrammed(
        ctx,
        batch.map((b) => b.id),
      ),
      [],
      'the new hosts programmed',
    );
    const topics = new Set(extra.map((h) => kafkaTopics.cluster(h)));
    assert.is(topics.size, 3, 'three new topics');
    const after = ctx.southbound.bindings();
    console.log(
      `  broker connections: a ${before.a!.connections} → ${after.a!.connections}, b ${before.b!.connections} → ${after.b!.connections}`,
    );
    // The producer and the admin share the binding's client: at most one
    // connection each per broker (one broker per cluster here), however many topics.
    for (const id of ['a', 'b']) {
      assert.ok(after[id]!.connections > 0, `${id}: connected`);
      assert.ok(
        after[id]!.connections <= 2 * ctx.kafka[id]!.length,
        `${id}: ${after[id]!.connections} connections for ${ctx.kafka[id]!.length} broker(s)`,
      );
    }
    assert.ok(after.a!.produced > before.a!.produced, 'A produced to the new topics');
    assert.is(more.hosts.size, 6);
  } finally {
    await more.stop();
  }
});

test('bad input on the southbound paths is refused and counted; work goes on', async (ctx) => {
  const nc = ctx.clients[1]!;
  const metrics = ctx.controller.metrics;
  const acksRefused = metrics.acksRefused;
  const vpcId = `${ctx.tag}-v0`;
  const bucket = bucketOf(vpcId);
  const host = ctx.hosts[0]!.hostId;
  nc.publish(subjects.ack(bucket, vpcId, host), encoder.encode('{"status":'));
  nc.publish(subjects.ack(bucket, vpcId, host), encoder.encode('{"hostId":"x"}'));
  nc.publish(
    subjects.ack(bucket, vpcId, host),
    encoder.encode(
      JSON.stringify({ hostId: 'someone-else', vpcId, revision: 1, status: 'applied' }),
    ),
  );
  await nc.flush();
  await eventually(() => (metrics.acksRefused >= acksRefused + 3 ? true : undefined), {
    what: 'three bad acks refused',
  });

  const resync = async (subjectHost: string, body: string) =>
    (await nc.request(subjects.resync(subjectHost), encoder.encode(body), { timeout: 5000 })).json<{
      error?: { code: string; path?: string };
    }>();
  const refusedBefore = metrics.resyncRefused;
  assert.is((await resync(host, '{"hostId": 5}')).error?.path, 'hostId');
  assert.is((await resync(host, 'not json')).error?.code, 'invalid_json');
  assert.is(
    (await resync(host, JSON.stringify({ hostId: 'other' }))).error?.code,
    'subject_mismatch',
  );
  assert.is(metrics.resyncRefused, refusedBefore + 3);

  // A goal state that is not one, on a Kafka host's subject: the relay drops it and goes on.
  const kafkaHost = busiest(ctx, 'a');
  const invalid = ctx.southbound.relayMetrics.invalid;
  await jetstream(nc).publish(
    subjects.goalStateHost(kafkaHost.record, kafkaHost.record.hostId),
    encoder.encode('{"vpcId": 1}'),
  );
  await eventually(() => (ctx.southbound.relayMetrics.invalid > invalid ? true : undefined), {
    what: 'the relay refused the bad goal state',
  });
  const after = zipfScripts(`${ctx.tag}-after`, [kafkaHost.record], 1, 20, 17);
  const ids = [...after.values()].flat().map((i) => (i as { id: string }).id);
  await publishScripts(ctx.clients, after);
  await settled(ctx, ids, 60_000);
  assert.equal(notProgrammed(ctx, ids), [], 'the host still gets its goal states');

  let refused: unknown;
  try {
    await startSouthbound({
      instanceId: 'has space',
      natsUrl: ctx.nats.url,
      redisUrl: ctx.redisUrl,
      kafka: {},
      log: testLog,
    });
  } catch (err) {
    refused = err;
  }
  assert.instance(refused, ConfigError);
  assert.is((refused as ConfigError).field, 'instanceId');
});

test.run();
