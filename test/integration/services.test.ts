/**
 * The southbound and NCA processes as an operator runs them (their `main.ts`,
 * configured from the environment), on real NATS, Redis and Kafka: a bad setting
 * stops the start naming its variable; good ones come up, carry a port's goal
 * state to Kafka-bound hosts and a JetStream-bound host, and stop on SIGTERM. Two
 * agent processes share a consumer group, each fetching only its hosts' partitions.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kvm } from '@nats-io/kv';
import { AssignerProtocol } from 'kafkajs';
import type { ManagedProcess } from '../../infra/index.js';
import {
  HOST_PARTITIONS_PROTOCOL,
  createKafkaClient,
  putHosts,
  repoRoot,
} from '../../infra/index.js';
import {
  StatusSchema,
  hostPartition,
  kafkaTopics,
  type KafkaPartitions,
  kvBuckets,
  southboundKeys,
  subjects,
  type HostRecord,
  type Status,
} from '../../shared/index.js';
import type { Controller } from '../../services/controller/index.js';
import { fleetGroupId } from '../../services/nca/kafkaIntake.js';
import {
  isolatedNats,
  opsUrl,
  sample,
  spawnService,
  startTestController,
  testLog,
  type IsolatedNats,
} from '../support/controller.js';
import { eventually } from '../support/eventually.js';
import { unique } from '../support/names.js';
import { vpcWithPorts } from '../support/workload.js';
import { metricViolations } from '../support/metricConventions.js';
import { releaseTestServers, testServers, type TestServers } from '../support/servers.js';

interface Ctx {
  servers: TestServers;
  nats: IsolatedNats;
  env: Record<string, string>;
  controller?: Controller;
  procs: ManagedProcess[];
}

const test = suite<Ctx>('service processes');

test.before(async (ctx) => {
  ctx.servers = await testServers();
  ctx.nats = await isolatedNats();
  ctx.procs = [];
  ctx.env = {
    NATS_URL: ctx.nats.url,
    REDIS_URL: ctx.servers.redisUrl,
    KAFKA_CLUSTERS: Object.keys(ctx.servers.kafka).join(','),
    ...Object.fromEntries(
      Object.entries(ctx.servers.kafka).map(([id, b]) => [
        `KAFKA_${id.toUpperCase()}_BROKERS`,
        b.join(','),
      ]),
    ),
  };
});

test.after(async (ctx) => {
  await Promise.all(ctx.procs.map((p) => p.stop()));
  await ctx.controller?.stop();
  await ctx.nats?.stop();
  await releaseTestServers();
});

/** Runs a main to its exit (it must refuse to start): exit code and output. */
function runToExit(main: string, env: Record<string, string>, args: string[] = []) {
  return new Promise<{ code: number; out: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, main), ...args],
      { cwd: repoRoot, env: { ...process.env, LOG_PRETTY: '0', ...env }, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({
          code: err ? (typeof err.code === 'number' ? err.code : -1) : 0,
          out: stdout + stderr,
        }),
    );
  });
}

test('a bad setting stops the start and names its variable', async (ctx) => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ['services/southbound/main.ts', { ALCOR_HEARTBEAT_TTL_MS: 'soon' }, 'ALCOR_HEARTBEAT_TTL_MS'],
    ['services/southbound/main.ts', { ALCOR_INSTANCE_ID: 'a b' }, 'ALCOR_INSTANCE_ID'],
    ['services/southbound/main.ts', { KAFKA_CLUSTERS: 'a,B!' }, 'KAFKA_CLUSTERS'],
    ['services/southbound/main.ts', { ALCOR_SOUTHBOUND_BATCH: '0' }, 'ALCOR_SOUTHBOUND_BATCH'],
    ['services/nca/main.ts', { ALCOR_NCA_HOSTS: 'no-such-host' }, 'ALCOR_NCA_HOSTS'],
    ['services/nca/main.ts', { ALCOR_FLEET_ID: 'x.y' }, 'ALCOR_FLEET_ID'],
    [
      'services/nca/main.ts',
      { ALCOR_NCA_RECONNECT_SPREAD_MS: '-5' },
      'ALCOR_NCA_RECONNECT_SPREAD_MS',
    ],
    [
      'services/nca/main.ts',
      { ALCOR_NCA_RECONNECT_SPREAD_MS: 'soon' },
      'ALCOR_NCA_RECONNECT_SPREAD_MS',
    ],
    ['services/controller/main.ts', { ALCOR_RESYNC_CONCURRENCY: '-1' }, 'ALCOR_RESYNC_CONCURRENCY'],
    [
      'services/controller/main.ts',
      { ALCOR_RESYNC_CONCURRENCY: '2.5' },
      'ALCOR_RESYNC_CONCURRENCY',
    ],
  ];
  for (const [main, bad, variable] of cases) {
    const r = await runToExit(main, { ...ctx.env, ...bad });
    assert.is(r.code, 2, `${main} ${JSON.stringify(bad)}: ${r.out.slice(-400)}`);
    assert.match(r.out, variable, `${main} names ${variable}`);
  }
});

test('a bad flag stops the start with usage; --help explains', async (ctx) => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['--log-level', 'loud'], {}, /--log-level loud: one of trace/],
    [['--metrics-port', '70000'], {}, /--metrics-port \/ ALCOR_METRICS_PORT 70000/],
    [[], { ALCOR_METRICS_PORT: 'x' }, /ALCOR_METRICS_PORT x/],
    [['--bogus'], {}, /Unknown option '--bogus'/],
  ];
  for (const main of ['services/controller/main.ts', 'services/nca/main.ts']) {
    for (const [args, env, message] of cases) {
      const r = await runToExit(main, { ...ctx.env, ...env }, args);
      assert.is(r.code, 2, `${main} ${args.join(' ')}: ${r.out.slice(-400)}`);
      assert.match(r.out, message);
      assert.match(r.out, 'Usage:', 'usage follows the error');
    }
  }
  const help = await runToExit('services/southbound/main.ts', ctx.env, ['--help']);
  assert.is(help.code, 0);
  assert.match(help.out, 'KAFKA_<ID>_BROKERS');
});

test('southbound and NCA processes carry a port to a Kafka host and a JetStream host', async (ctx) => {
  const tag = unique('svc');
  const kafkaId = Object.keys(ctx.servers.kafka)[0]!;
  const hosts: HostRecord[] = [
    {
      hostId: `${tag}-k`,
      region: `${tag}r`,
      az: 'az1',
      dc: 'dc1',
      cluster: 'c1',
      underlayIp: '172.30.0.1',
      binding: { type: 'kafka', cluster: kafkaId },
    },
    {
      hostId: `${tag}-k2`,
      region: `${tag}r`,
      az: 'az1',
      dc: 'dc1',
      cluster: 'c1',
      underlayIp: '172.30.0.3',
      binding: { type: 'kafka', cluster: kafkaId },
    },
    {
      hostId: `${tag}-j`,
      region: `${tag}r`,
      az: 'az1',
      dc: 'dc1',
      cluster: 'c1',
      underlayIp: '172.30.0.2',
      binding: { type: 'jetstream' },
    },
  ];
  await putHosts(ctx.nats.nc, hosts);
  ctx.controller = await startTestController(ctx.nats.url, { redisUrl: ctx.servers.redisUrl });
  ctx.procs.push(
    await spawnService('southbound', 'services/southbound/main.ts', ctx.nats.url, {
      ...ctx.env,
      ALCOR_INSTANCE_ID: `${tag}-sb`,
    }),
  );
  // Two agent processes in one consumer group: one runs the JetStream host and a
  // Kafka host, the other the second Kafka host of the same topic.
  const nca = await spawnService('nca', 'services/nca/main.ts', ctx.nats.url, {
    ...ctx.env,
    ALCOR_NCA_HOSTS: `${tag}-k,${tag}-j`,
    ALCOR_FLEET_ID: tag,
  });
  ctx.procs.push(nca);
  ctx.procs.push(
    await spawnService('nca', 'services/nca/main.ts', ctx.nats.url, {
      ...ctx.env,
      ALCOR_NCA_HOSTS: `${tag}-k2`,
      ALCOR_FLEET_ID: tag,
    }),
  );

  const statuses: Status[] = [];
  const vpcId = `${tag}-v`;
  const sub = ctx.nats.nc.subscribe(subjects.status(vpcId), {
    callback: (err, msg) => {
      const s = err ? undefined : StatusSchema.safeParse(msg.json());
      if (s?.success) statuses.push(s.data);
    },
  });
  const intents = vpcWithPorts(
    vpcId,
    hosts.map((h) => h.hostId),
  );
  await ctx.nats.nc.request(
    subjects.applyIntents,
    new TextEncoder().encode(JSON.stringify(intents)),
    { timeout: 30_000 },
  );
  const programmed = await eventually(
    () => {
      const done = statuses.filter((s) => s.outcome === 'programmed');
      return done.length === intents.length ? done : undefined;
    },
    { timeoutMs: 90_000, what: 'every intent programmed through the processes' },
  );
  sub.unsubscribe();
  const last = programmed.find((s) => s.intentId === `${vpcId}-p2`)!;
  assert.is(last.hosts?.total, 3, 'the last port concerns all three hosts');

  // Every service says what it did on /metrics, and is ready.
  const controllerText = await ctx.controller.registry.metrics();
  assert.is(
    sample(controllerText, 'alcor_intents_finished_total', { outcome: 'programmed' }),
    intents.length,
    'one programmed per intent counted',
  );
  assert.ok(
    sample(controllerText, 'alcor_stage_seconds_count', { stage: 'decide' }) >= intents.length,
  );
  assert.equal(ctx.controller.readiness(), { nats: true, placed: true, caughtUp: true });
  const [southbound, , nca2] = ctx.procs.map(opsUrl);
  const fetchText = async (url: string): Promise<string> => (await fetch(url)).text();
  const sbText = await fetchText(`${southbound}/metrics`);
  assert.ok(sample(sbText, 'alcor_stage_seconds_count', { stage: 'relay', kafka: kafkaId }) > 0);
  assert.is(sample(sbText, 'alcor_kafka_produce_errors_total', { kafka: kafkaId }), 0);
  assert.is(sample(sbText, 'alcor_kafka_ready', { kafka: kafkaId }), 1);
  const ncaText = await fetchText(`${opsUrl(nca)}/metrics`);
  assert.is(sample(ncaText, 'alcor_nca_hosts', { binding: 'jetstream' }), 1);
  assert.ok(sample(ncaText, 'alcor_nca_goal_states_applied_total', { binding: 'jetstream' }) > 0);
  assert.ok(
    sample(ncaText, 'alcor_nca_goal_states_applied_total', { binding: `kafka:${kafkaId}` }) > 0,
  );
  assert.ok(sample(ncaText, 'alcor_stage_seconds_count', { stage: 'deliver' }) > 0);
  for (const url of [southbound!, nca2!]) {
    const ready = await fetch(`${url}/readyz`);
    assert.is(ready.status, 200, `${url}/readyz: ${await ready.text()}`);
    assert.is((await fetch(`${url}/healthz`)).status, 200);
  }
  assert.is((await fetch(`${southbound}/nothing`)).status, 404);
  // By the conventions: no instance label, written help, no stutter, build info.
  for (const [service, text] of [
    ['controller', controllerText],
    ['southbound', sbText],
    ['nca', ncaText],
  ] as const)
    assert.equal(metricViolations(text), [], `${service} /metrics by the conventions`);
  // The alert rules and the dashboard (deploy/) name only metrics the services export.
  const exported = new Set(
    [controllerText, sbText, ncaText].flatMap((t) =>
      t.split('\n').flatMap((l) => {
        const name = /^(alcor_\w+)[{ ]/.exec(l)?.[1];
        // A histogram's samples and its family name.
        return name ? [name, name.replace(/_(bucket|sum|count)$/, '')] : [];
      }),
    ),
  );
  for (const file of ['deploy/prometheus/alerts.yml', 'deploy/grafana/alcor-southbound.json']) {
    const named = [...readFileSync(join(repoRoot, file), 'utf8').matchAll(/alcor_\w+/g)].map(
      (m) => m[0],
    );
    assert.ok(named.length > 5, `${file} names metrics`);
    assert.equal(
      [...new Set(named)].filter((n) => !exported.has(n)),
      [],
      `${file}: metrics no service exports`,
    );
  }
  assert.is(
    sample(controllerText, 'alcor_intents_decided_total', { outcome: 'accepted', reason: '' }),
    intents.length,
    'accepted counted once, apart from programmed',
  );
  // The check can fail: what the metrics were before it.
  assert.equal(
    metricViolations(
      [
        '# HELP alcor_programmed_programmed_total alcor_programmed programmed',
        '# TYPE alcor_programmed_programmed_total counter',
        'alcor_programmed_programmed_total{service="controller",instance="c1"} 3',
      ].join('\n'),
    ),
    [
      'alcor_programmed_programmed_total: carries an instance label',
      'alcor_programmed_programmed_total: help made from the name ("alcor_programmed programmed")',
      'alcor_programmed_programmed_total: "programmed" twice in a row',
      'alcor_build_info: missing or not 1',
    ],
  );

  // Each process's consumer fetches only its host's partition, in a group of its
  // own: the two Kafka hosts may share a partition (8 hosts to one), and offsets
  // committed by one process must not move the other.
  const topic = kafkaTopics.cluster(hosts[0]!);
  const kv = await new Kvm(ctx.nats.nc).open(kvBuckets.placement);
  const layout = (await kv.get(
    southboundKeys.kafkaPartitions(kafkaId, topic),
  ))!.json<KafkaPartitions>();
  const client = createKafkaClient(kafkaId, ctx.servers.kafka[kafkaId]!, {
    clientId: 'services-test',
    logger: testLog,
  });
  const admin = client.kafka.admin();
  await admin.connect();
  try {
    const ids = [`${tag}-k`, `${tag}-k2`].map((h) => fleetGroupId(tag, kafkaId, [h]));
    assert.is(new Set(ids).size, 2, 'a group per process');
    const { groups } = await admin.describeGroups(ids);
    for (const [i, hostId] of [`${tag}-k`, `${tag}-k2`].entries()) {
      const group = groups.find((g) => g.groupId === ids[i])!;
      assert.is(group.protocol, HOST_PARTITIONS_PROTOCOL);
      // Its member: what it asked for (its host's partition) and what it got.
      const members = group.members.map((m) => ({
        asked: JSON.parse(
          AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.userData.toString() ?? '{}',
        ) as Record<string, number[]>,
        got: AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment ?? {},
      }));
      assert.is(members.length, 1, `one member in ${hostId}'s group`);
      assert.equal(members[0]!.got, members[0]!.asked, 'a member gets what it asked for');
      assert.equal(
        members[0]!.got[topic],
        [hostPartition(layout, hostId)],
        `${hostId}'s process has exactly its host's partition`,
      );
    }
  } finally {
    await admin.disconnect();
  }
  await nca.stop();
  assert.not.ok(nca.running, 'the NCA stopped on SIGTERM');
});

test.run();
