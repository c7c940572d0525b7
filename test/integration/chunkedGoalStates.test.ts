/**
 * Goal states larger than a broker takes in one message (issue 22): a host joining
 * a VPC whose full state is several times the limit gets it in parts, applies it
 * whole, and converges. JetStream: nats-server with max_payload 64 KiB, nothing
 * stored over it. Kafka: a broker with message.max.bytes 64 KiB; the relay cuts
 * the full state into records under it, and a host of the same cluster keeps
 * getting its own small VPC's changes. The VPC has 600 ports (~110 KiB full state).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { putHosts } from '../../infra/index.js';
import { streams } from '../../shared/index.js';
import { startFleet } from '../../services/nca/fleet.js';
import { diverging, foldEventLog } from '../../services/nca/oracle.js';
import type { ApplyReplyItem } from '../../services/controller/index.js';
import { nca } from '../../actors/index.js';
import {
  applyProgrammed,
  isolatedNats,
  startTestController,
  testLog,
} from '../support/controller.js';
import { fleet as makeHosts, readStream } from '../support/workload.js';
import { startKafkaStack } from '../support/kafkaStack.js';
import type { NatsConnection } from '@nats-io/transport-node';
import type { HostRecord } from '../../shared/index.js';

const MAX_PAYLOAD = 64 * 1024;
const PORTS = 600;

/** A VPC of PORTS ports over `on` (cluster c0), every batch programmed. */
async function buildVpc(nc: NatsConnection, vpcId: string, on: readonly HostRecord[]) {
  const intents: unknown[] = [
    { id: `${vpcId}-vpc`, kind: 'vpc.create', vpcId, spec: { cidr: '10.0.0.0/16' } },
    {
      id: `${vpcId}-subnet`,
      kind: 'subnet.create',
      vpcId,
      spec: { subnetId: 's1', cidr: '10.0.16.0/20', gatewayIp: '10.0.16.1' },
    },
    ...Array.from({ length: PORTS }, (_, i) => ({
      id: `${vpcId}-p${i}`,
      kind: 'port.create',
      vpcId,
      spec: { portId: `p${i}`, subnetId: 's1', hostId: on[i % on.length]!.hostId },
    })),
  ];
  for (let i = 0; i < intents.length; i += 100) {
    const replies = await applyProgrammed<ApplyReplyItem[]>(nc, intents.slice(i, i + 100));
    const bad = replies.find(
      (r) => r.outcome !== 'accepted' || r.programmed?.outcome !== 'programmed',
    );
    assert.is(bad, undefined, JSON.stringify(bad));
  }
}

/** A port on `hostId` in `vpcId`, through the sync API: its answer. */
async function addPort(nc: NatsConnection, vpcId: string, portId: string, hostId: string) {
  const [reply] = await applyProgrammed<ApplyReplyItem[]>(nc, [
    {
      id: `${vpcId}-${portId}`,
      kind: 'port.create',
      vpcId,
      spec: { portId, subnetId: 's1', hostId },
    },
  ]);
  return reply;
}

const test = suite("goal states over a broker's message limit travel in parts");

test('a host joining a 600-port VPC at max_payload 64 KiB converges; nothing stored is over it', async () => {
  const server = await isolatedNats({}, { maxPayload: MAX_PAYLOAD });
  const hosts = makeHosts(2, 10, 'chunk');
  const controller = await startTestController(server.url, {
    programmedDeadlineMs: 30_000,
    // Its EVENTS messages stay under the small limit too (chunking EVENTS is not built).
    groupBytes: 8 * 1024,
  });
  const agents = await startFleet({
    natsUrl: server.url,
    kafka: {},
    hosts,
    logger: testLog,
    fleetId: 'chunk',
  });
  try {
    await putHosts(server.nc, hosts);
    const vpcId = 'chunky';
    const early = hosts.slice(0, 9); // cluster c0, all but its last host
    const joiner = hosts[9]!; // c0's last host: joins once the VPC is large
    await buildVpc(server.nc, vpcId, early);
    // The join: a port on the new host; it needs the whole neighbor table.
    const [join] = await applyProgrammed<ApplyReplyItem[]>(server.nc, [
      {
        id: 'c-join',
        kind: 'port.create',
        vpcId,
        spec: { portId: 'pj', subnetId: 's1', hostId: joiner.hostId },
      },
    ]);
    assert.is(join?.outcome, 'accepted');
    assert.is(join?.outcome === 'accepted' && join.programmed?.outcome, 'programmed');

    const held = nca.liveResources(agents.hosts.get(joiner.hostId)!.model, vpcId);
    const neighbors = [...held.values()].filter((r) => r.kind === 'neighbor').length;
    assert.is(neighbors, PORTS + 1, 'the joiner holds every port as a neighbor');
    const divergences = diverging(
      await foldEventLog(server.nc),
      [...agents.hosts.values()].map((h) => h.model),
    );
    assert.equal(divergences, [], 'every host holds exactly what EVENTS says');

    const stored = await readStream(server.nc, streams.goalStates);
    const parts = stored.filter(
      (m) => (JSON.parse(new TextDecoder().decode(m.data)) as { part?: unknown }).part,
    );
    assert.ok(parts.length >= 2, `the joiner's full state went in parts (${parts.length} stored)`);
    const largest = Math.max(...stored.map((m) => m.data.length));
    assert.ok(largest <= MAX_PAYLOAD, `largest goal state stored: ${largest} bytes`);
    const joinerStats = agents.hosts.get(joiner.hostId)!.stats;
    assert.is(joinerStats.invalid, 0);
  } finally {
    await agents.stop();
    await controller.stop();
    await server.stop();
  }
});

test('Kafka: a host joining a 600-port VPC at message.max.bytes 64 KiB converges; a small VPC on the same cluster keeps flowing', async () => {
  // NATS takes the whole full state here: the cut is the relay's, to Kafka's limit.
  const stack = await startKafkaStack('chunk', {
    brokerConfig: { 'message.max.bytes': String(MAX_PAYLOAD) },
    maxPayload: 8 * 1024 * 1024,
  });
  const { server, hosts, southbound, agents } = stack;
  try {
    const early = hosts.slice(0, 9);
    const joiner = hosts[9]!;
    const control = hosts[10]!; // cluster c1, same Kafka cluster
    await buildVpc(server.nc, 'kbig', early);
    const small = await addPortInNewVpc(server.nc, 'ksmall', control.hostId);
    assert.is(small?.outcome === 'accepted' && small.programmed?.outcome, 'programmed', 'control');

    const [join, during] = await Promise.all([
      addPort(server.nc, 'kbig', 'pj', joiner.hostId),
      addPort(server.nc, 'ksmall', 'p2', control.hostId),
    ]);
    assert.is(join?.outcome === 'accepted' && join.programmed?.outcome, 'programmed', 'the join');
    assert.is(
      during?.outcome === 'accepted' && during.programmed?.outcome,
      'programmed',
      'the control during the join',
    );
    const held = nca.liveResources(agents.hosts.get(joiner.hostId)!.model, 'kbig');
    assert.is([...held.values()].filter((r) => r.kind === 'neighbor').length, PORTS + 1);
    assert.equal(
      diverging(
        await foldEventLog(server.nc),
        [...agents.hosts.values()].map((h) => h.model),
      ),
      [],
      'every host holds exactly what EVENTS says',
    );
    assert.ok(
      southbound.relayMetrics.parts >= 2,
      `records carrying parts: ${southbound.relayMetrics.parts}`,
    );
    assert.is(southbound.relayMetrics.tooLarge, 0);
    assert.is(agents.hosts.get(joiner.hostId)!.stats.invalid, 0);
  } finally {
    await stack.stop();
  }
});

/** A new VPC with one port on `hostId`, through the sync API: the port's answer. */
async function addPortInNewVpc(nc: NatsConnection, vpcId: string, hostId: string) {
  await applyProgrammed(nc, [
    { id: `${vpcId}-vpc`, kind: 'vpc.create', vpcId, spec: { cidr: '10.1.0.0/16' } },
    {
      id: `${vpcId}-subnet`,
      kind: 'subnet.create',
      vpcId,
      spec: { subnetId: 's1', cidr: '10.1.1.0/24', gatewayIp: '10.1.1.1' },
    },
  ]);
  return addPort(nc, vpcId, 'p1', hostId);
}

test.run();
