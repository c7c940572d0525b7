/**
 * Goal states larger than the server's max_payload (issue 22): a host joining a
 * VPC whose full state is several times the limit gets it in parts, applies it
 * whole, and converges; no message stored is over the limit. The server runs with
 * max_payload 64 KiB; the VPC has 600 ports (its full state ~110 KiB).
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

const MAX_PAYLOAD = 64 * 1024;
const PORTS = 600;
const test = suite('goal states over max_payload travel in parts');

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
    const intents: unknown[] = [
      { id: 'c-vpc', kind: 'vpc.create', vpcId, spec: { cidr: '10.0.0.0/16' } },
      {
        id: 'c-subnet',
        kind: 'subnet.create',
        vpcId,
        spec: { subnetId: 's1', cidr: '10.0.16.0/20', gatewayIp: '10.0.16.1' },
      },
      ...Array.from({ length: PORTS }, (_, i) => ({
        id: `c-p${i}`,
        kind: 'port.create',
        vpcId,
        spec: { portId: `p${i}`, subnetId: 's1', hostId: early[i % early.length]!.hostId },
      })),
    ];
    for (let i = 0; i < intents.length; i += 100) {
      const replies = await applyProgrammed<ApplyReplyItem[]>(server.nc, intents.slice(i, i + 100));
      assert.ok(
        replies.every((r) => r.outcome === 'accepted' && r.programmed?.outcome === 'programmed'),
        JSON.stringify(
          replies.find((r) => r.outcome !== 'accepted' || r.programmed?.outcome !== 'programmed'),
        ),
      );
    }
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

test.run();
