/**
 * ACA bridges end to end on real servers (issue 26): hosts of both bindings
 * (JetStream, Kafka through a southbound module) behind bridges that push Alcor
 * GoalStateV2 messages to test ACAs over gRPC. Each verdict reads the ACAs'
 * programmed models (against the log, translated), the STATUS stream and the
 * bridges' counters.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { putHosts, grpc, goalStateProvisioner, requestGoalStates } from '../../infra/index.js';
import type { HostRecord } from '../../shared/index.js';
import { foldEventLog } from '../../services/nca/oracle.js';
import {
  acaDivergence,
  startAcaBridge,
  TestAca,
  type AcaBridge,
} from '../../services/aca-bridge/index.js';
import { start as startSouthbound } from '../../services/southbound/index.js';
import { renderTrace, trace } from '../../services/cli/trace.js';
import type { Controller } from '../../services/controller/index.js';
import { eventually } from '../support/eventually.js';
import {
  applyProgrammed,
  isolatedNats,
  startTestController,
  testLog,
  type IsolatedNats,
} from '../support/controller.js';
import { releaseTestServers, testServers } from '../support/servers.js';
import { unique } from '../support/names.js';
import { fleet as makeHosts } from '../support/workload.js';

interface Ctx {
  nats: IsolatedNats;
  hosts: HostRecord[];
  acas: Map<string, TestAca>;
  controller: Controller;
  southbound: { stop: () => Promise<void> };
  bridge: AcaBridge;
  vpcId: string;
}

type Reply = Array<{
  id: string;
  outcome: string;
  revision?: number;
  programmed?: { outcome: string; error?: { code: string; message: string } };
}>;

const test = suite<Ctx>('ACA bridges');

test.before(async (ctx) => {
  const servers = await testServers();
  const kafkaId = Object.keys(servers.kafka)[0]!;
  ctx.nats = await isolatedNats();
  const tag = unique('aca');
  // Four hosts: even ones on JetStream, odd ones on Kafka.
  ctx.hosts = makeHosts(1, 4, tag, {
    binding: (h) => (h % 2 === 0 ? { type: 'jetstream' } : { type: 'kafka', cluster: kafkaId }),
  });
  await putHosts(ctx.nats.nc, ctx.hosts);
  ctx.controller = await startTestController(ctx.nats.url, {
    redisUrl: servers.redisUrl,
    programmedDeadlineMs: 20_000,
  });
  ctx.southbound = await startSouthbound({
    instanceId: `${tag}-m1`,
    natsUrl: ctx.nats.url,
    redisUrl: servers.redisUrl,
    kafka: servers.kafka,
    log: testLog,
  });
  ctx.acas = new Map();
  for (const h of ctx.hosts) ctx.acas.set(h.hostId, await TestAca.start());
  ctx.bridge = await startAcaBridge({
    natsUrl: ctx.nats.url,
    kafka: servers.kafka,
    hosts: ctx.hosts,
    logger: testLog,
    fleetId: tag,
    acaAddress: (h) => ctx.acas.get(h.hostId)!.address,
    listen: () => '127.0.0.1:0',
    replyTimeoutMs: 3000,
  });
  ctx.vpcId = unique('vaca');
});

test.after(async (ctx) => {
  await ctx.bridge?.stop();
  await ctx.southbound?.stop();
  await ctx.controller?.stop();
  for (const aca of ctx.acas?.values() ?? []) await aca.stop();
  await ctx.nats?.stop();
  await releaseTestServers();
});

/** Every host's ACA against the log: the divergences (none: converged). */
async function divergences(ctx: Ctx) {
  const states = await foldEventLog(ctx.nats.nc, { vpcIds: [ctx.vpcId] });
  return ctx.hosts.flatMap((h) => {
    const d = acaDivergence(states, h, ctx.acas.get(h.hostId)!, ctx.bridge.hostIp);
    return d ? [d] : [];
  });
}

const converged = (ctx: Ctx, what: string) =>
  eventually(async () => ((await divergences(ctx)).length === 0 ? true : undefined), {
    timeoutMs: 30_000,
    intervalMs: 200,
    what,
  });

const port = (ctx: Ctx, portId: string, h: number, extra: Record<string, unknown> = {}) => ({
  id: unique('i'),
  kind: 'port.create',
  vpcId: ctx.vpcId,
  spec: { portId, subnetId: 's1', hostId: ctx.hosts[h]!.hostId, ...extra },
});

test('ports, neighbours, security groups and routes reach the ACAs of both bindings; the oracle is clean', async (ctx) => {
  const v = ctx.vpcId;
  const reply = await applyProgrammed<Reply>(ctx.nats.nc, [
    { id: unique('i'), kind: 'vpc.create', vpcId: v, spec: { cidr: '10.0.0.0/16', vni: 4242 } },
    {
      id: unique('i'),
      kind: 'subnet.create',
      vpcId: v,
      spec: { subnetId: 's1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' },
    },
    {
      id: unique('i'),
      kind: 'subnet.create',
      vpcId: v,
      spec: { subnetId: 's2', cidr: '10.0.2.0/24', gatewayIp: '10.0.2.1' },
    },
    {
      id: unique('i'),
      kind: 'sg.create',
      vpcId: v,
      spec: {
        sgId: 'web',
        rules: [
          { direction: 'ingress', protocol: 'tcp', portMin: 443, portMax: 443 },
          { direction: 'ingress', protocol: 'any', remoteGroupId: 'web' },
          { direction: 'egress', protocol: 'icmp', remoteCidr: '0.0.0.0/0' },
        ],
      },
    },
    ...ctx.hosts.map((_, h) => port(ctx, `p${h}`, h, { securityGroupIds: ['web'] })),
    { ...port(ctx, 'q0', 0), spec: { portId: 'q0', subnetId: 's2', hostId: ctx.hosts[0]!.hostId } },
    {
      id: unique('i'),
      kind: 'route.set',
      vpcId: v,
      spec: { destination: '0.0.0.0/0', nextHop: '10.0.1.254' },
    },
    {
      id: unique('i'),
      kind: 'route.set',
      vpcId: v,
      spec: { destination: '192.168.0.0/16', nextHop: '10.0.1.253' },
    },
  ]);
  assert.equal(
    reply.map((r) => r.programmed?.outcome),
    reply.map(() => 'programmed'),
    JSON.stringify(reply.filter((r) => r.programmed?.outcome !== 'programmed')),
  );
  await converged(ctx, 'every ACA holds what the log says');
  // What reached an ACA, by type: every kind of resource, in Alcor's schema.
  const aca0 = ctx.acas.get(ctx.hosts[0]!.hostId)!;
  const types = new Set([...aca0.model.values()].map((r) => r.type));
  assert.equal([...types].sort(), [
    'DHCP',
    'NEIGHBOR',
    'PORT',
    'ROUTER',
    'SECURITYGROUP',
    'SUBNET',
    'VPC',
  ]);
  const neighbor = aca0.model.get(`NEIGHBOR/${v}:p1`)!.config as {
    host_ip_address?: string;
    fixed_ips?: Array<{ neighbor_type?: string; tunnel_id?: number }>;
  };
  assert.is(neighbor.host_ip_address, ctx.hosts[1]!.underlayIp, "a neighbor names its host's IP");
  assert.is(neighbor.fixed_ips?.[0]?.tunnel_id, 4242);
  // Host 1 holds s1 only: q0 (in s2) is an L3 neighbor there, an L2 one on host 0.
  const typeOn = (h: number) =>
    (
      ctx.acas.get(ctx.hosts[h]!.hostId)!.model.get(`NEIGHBOR/${v}:q0`)?.config as {
        fixed_ips?: Array<{ neighbor_type?: string }>;
      }
    ).fixed_ips?.[0]?.neighbor_type;
  assert.is(typeOn(0), 'L2');
  assert.is(typeOn(1), 'L3');

  // Updates and deletes: a migration, a port gone, a route gone, new rules.
  const more = await applyProgrammed<Reply>(ctx.nats.nc, [
    {
      id: unique('i'),
      kind: 'port.update',
      vpcId: v,
      spec: { portId: 'p2', hostId: ctx.hosts[3]!.hostId },
    },
    { id: unique('i'), kind: 'port.delete', vpcId: v, spec: { portId: 'p3' } },
    { id: unique('i'), kind: 'route.delete', vpcId: v, spec: { destination: '192.168.0.0/16' } },
    {
      id: unique('i'),
      kind: 'sg.update',
      vpcId: v,
      spec: { sgId: 'web', rules: [{ direction: 'ingress', protocol: 'udp', portMin: 53 }] },
    },
  ]);
  assert.ok(
    more.every((r) => r.programmed?.outcome === 'programmed'),
    JSON.stringify(more),
  );
  await converged(ctx, 'the ACAs follow updates and deletes');
  assert.not.ok(aca0.model.has(`NEIGHBOR/${v}:p3`), 'the deleted port is no neighbor any more');
  // alcor trace shows what the ACA measured (its timings, carried in the ack).
  const report = await trace(ctx.nats.nc, more[0]!.id, v);
  const migrated = report.hosts.find((h) => h.hostId === ctx.hosts[3]!.hostId);
  assert.ok(
    migrated?.timings && 'dataplane_programming' in migrated.timings,
    JSON.stringify(migrated),
  );
  assert.ok((migrated.timings.aca_roundtrip ?? 0) > 0);
  assert.match(renderTrace(report), 'aca_roundtrip');
  for (const aca of ctx.acas.values()) assert.is(aca.stats.outOfOrder, 0, 'no revision went back');
  const totals = ctx.bridge.fleet.byBinding();
  assert.ok(
    [...totals.keys()].some((b) => b.startsWith('kafka')),
    'Kafka-bound hosts are bridged',
  );
  for (const [binding, stats] of totals) assert.ok(stats.applied > 0, `${binding} hosts acked`);
});

test('a resource the ACA refuses makes the intent incomplete, naming it and its status', async (ctx) => {
  const refusing = ctx.acas.get(ctx.hosts[0]!.hostId)!;
  refusing.refuse = (type, id) => (type === 'PORT' && id.endsWith(':bad') ? 'FAILURE' : undefined);
  // Positive control: the same kind of port on a host whose ACA takes it.
  const fine = await applyProgrammed<Reply>(ctx.nats.nc, [port(ctx, 'fine', 1)]);
  assert.is(fine[0]?.programmed?.outcome, 'programmed', JSON.stringify(fine));
  const bad = await applyProgrammed<Reply>(ctx.nats.nc, [port(ctx, 'bad', 0)]);
  assert.is(bad[0]?.programmed?.outcome, 'incomplete', JSON.stringify(bad));
  const message = bad[0]?.programmed?.error?.message ?? '';
  assert.match(message, ctx.hosts[0]!.hostId);
  assert.match(message, `PORT ${ctx.vpcId}:bad CREATE: FAILURE`);
  assert.ok(!refusing.model.has(`PORT/${ctx.vpcId}:bad`), 'the refused port is not programmed');
  // The ACA takes it again: the bridge's retry (the VPC's full state) programs it.
  refusing.refuse = undefined;
  await converged(ctx, 'the refused port programmed once the ACA takes it');
  assert.ok(refusing.model.has(`PORT/${ctx.vpcId}:bad`));
});

test('an ACA restart is repaired by a FULL push; nothing is acked while it is down', async (ctx) => {
  const host = ctx.hosts[1]!;
  const aca = ctx.acas.get(host.hostId)!;
  const bridge = ctx.bridge.bridges.get(host.hostId)!;
  const fullsBefore = bridge.stats.fullPushes;
  const downMs = 3000;
  const restarted = aca.restart(downMs);
  // The ACA's state is gone: the oracle sees it (the check can fail).
  await eventually(async () => ((await divergences(ctx)).length > 0 ? true : undefined), {
    timeoutMs: 5000,
    what: 'the restarted ACA diverges',
  });
  const began = Date.now();
  const reply = await applyProgrammed<Reply>(ctx.nats.nc, [port(ctx, 'during', 1)]);
  await restarted;
  assert.is(reply[0]?.programmed?.outcome, 'programmed', JSON.stringify(reply));
  assert.ok(Date.now() - began >= downMs - 500, 'programmed waited for the ACA to come back');
  await converged(ctx, 'the restarted ACA repaired');
  assert.ok(bridge.stats.fullPushes > fullsBefore, 'a FULL push after the reconnect');
  assert.ok(aca.stats.fullMessages > 0);
  // Restarted again, refusing a port no message names: the FULL that repairs it is
  // refused in part, and pushed again until the ACA takes it.
  const stuck = `PORT/${ctx.vpcId}:p1`;
  assert.ok(aca.model.has(stuck));
  aca.refuse = (type, id) => (`${type}/${id}` === stuck ? 'FAILURE' : undefined);
  const fulls = bridge.stats.fullPushes;
  await aca.restart(0);
  await eventually(() => (bridge.stats.fullPushes > fulls ? true : undefined), {
    timeoutMs: 10_000,
    what: 'the FULL push after the second restart',
  });
  assert.not.ok(aca.model.has(stuck), 'the refused port is not programmed');
  aca.refuse = undefined;
  await converged(ctx, 'the port refused in a FULL programmed by the next one');
  assert.ok(bridge.stats.fullPushes >= fulls + 2, 'pushed FULL again');
  // A stream cut without a reply: the push is retried (as a FULL) and nothing is lost.
  aca.dropStreams = 1;
  const after = await applyProgrammed<Reply>(ctx.nats.nc, [port(ctx, 'cut', 1)]);
  assert.is(after[0]?.programmed?.outcome, 'programmed', JSON.stringify(after));
  assert.is(aca.stats.dropped, 1);
  await converged(ctx, 'converged after a cut stream');
});

test('an ACA that says AGENT_RESTARTED through RequestGoalStates gets its full state via a resync', async (ctx) => {
  // A Kafka-bound host (the resync's full states come through its relay).
  const host = ctx.hosts[3]!;
  const aca = ctx.acas.get(host.hostId)!;
  const bridge = ctx.bridge.bridges.get(host.hostId)!;
  const resyncs = ctx.bridge.fleet.hosts.get(host.hostId)!.stats.resyncs;
  // Its state lost without the connection dropping (nothing the bridge could see).
  aca.model.clear();
  assert.ok(
    (await divergences(ctx)).some((d) => d.hostId === host.hostId),
    'the oracle sees it',
  );
  const reply = await aca.announceRestart(bridge.requestAddress!);
  assert.is(reply.operation_statuses?.[0]?.operation_status, 'SUCCESS');
  await converged(ctx, 'the ACA that announced its restart repaired');
  assert.is(bridge.stats.restartRequests, 1);
  assert.ok(ctx.bridge.fleet.hosts.get(host.hostId)!.stats.resyncs > resyncs, 'through a resync');
});

test('RequestGoalStates: ON_DEMAND answers from what the host holds; bad requests get an error, not a crash', async (ctx) => {
  const host = ctx.hosts[0]!;
  const address = ctx.bridge.bridges.get(host.hostId)!.requestAddress!;
  const ask = (ip: string, tunnel = 4242) =>
    requestGoalStates(address, {
      state_requests: [
        { request_type: 'ON_DEMAND', request_id: ip, tunnel_id: tunnel, destination_ip: ip },
      ],
    });
  const neighborIp = (
    ctx.acas.get(host.hostId)!.model.get(`NEIGHBOR/${ctx.vpcId}:p1`)!.config as {
      fixed_ips: Array<{ ip_address: string }>;
    }
  ).fixed_ips[0]!.ip_address;
  const known = await ask(neighborIp);
  assert.is(known.operation_statuses?.[0]?.operation_status, 'SUCCESS', 'a known port: routable');
  const unknown = await ask('10.0.9.9');
  assert.is(unknown.operation_statuses?.[0]?.operation_status, 'FAILURE', 'an unknown one: not');
  const otherVni = await ask(neighborIp, 7);
  assert.is(otherVni.operation_statuses?.[0]?.operation_status, 'FAILURE', 'another VPC: not');
  // Bytes that are no HostRequest: the call fails, the bridge goes on.
  const raw = new grpc.Client(address, grpc.credentials.createInsecure());
  const code = await new Promise<number>((resolve) =>
    raw.makeUnaryRequest(
      '/alcor.schema.GoalStateProvisioner/RequestGoalStates',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]),
      (err) => resolve(err?.code ?? grpc.status.OK),
    ),
  );
  raw.close();
  assert.is.not(code, grpc.status.OK, 'an undecodable request is refused');
  // An rpc the bridge does not serve.
  const Provisioner = goalStateProvisioner();
  const client = new Provisioner(address, grpc.credentials.createInsecure());
  const pushCode = await new Promise<number>((resolve) => {
    const call = client.PushGoalStatesStream();
    call.on('error', (err: grpc.ServiceError) => resolve(err.code));
    call.on('data', () => resolve(grpc.status.OK));
    call.write({});
  });
  client.close();
  assert.is(pushCode, grpc.status.UNIMPLEMENTED);
  assert.is((await ask(neighborIp)).operation_statuses?.[0]?.operation_status, 'SUCCESS');
  // Through every test: no ACA was sent a resource's revision going back.
  for (const aca of ctx.acas.values()) assert.is(aca.stats.outOfOrder, 0);
});

test.run();
