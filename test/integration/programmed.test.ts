/**
 * The JetStream binding end to end on real servers: controller → GOALSTATES →
 * simulated NCAs subscribed to exactly their subjects → acks → `programmed`;
 * the oracle finds no host diverging; every host got only what it needed.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { putHosts } from '../../infra/index.js';
import { streams, type Status } from '../../shared/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import { diverging, foldEventLog } from '../../services/nca/oracle.js';
import type { Controller } from '../../services/controller/index.js';
import { eventually } from '../support/eventually.js';
import {
  clientConnections,
  isolatedNats,
  startTestController,
  testLog,
  type IsolatedNats,
} from '../support/controller.js';
import { releaseTestServers, testServers } from '../support/servers.js';
import { fleet as makeHosts, publishScripts, readStream, vpcScript } from '../support/workload.js';
import { unique } from '../support/names.js';

const test = suite<{ nats: IsolatedNats; controller: Controller; fleet: Fleet }>('programmed');

test.after(async (ctx) => {
  await ctx.fleet?.stop();
  await ctx.controller?.stop();
  await ctx.nats?.stop();
  await releaseTestServers();
});

test('JetStream hosts: every accepted intent programmed, zero divergence, only needed deliveries', async (ctx) => {
  const servers = await testServers();
  ctx.nats = await isolatedNats();
  const tag = unique('pj');
  const hosts = makeHosts(4, 6, tag);
  await putHosts(ctx.nats.nc, hosts);
  ctx.controller = await startTestController(ctx.nats.url, {
    redisUrl: servers.redisUrl,
    programmedDeadlineMs: 15_000,
  });
  ctx.fleet = await startFleet({ natsUrl: ctx.nats.url, hosts, logger: testLog, fleetId: tag });
  const scripts = new Map<string, unknown[]>();
  for (let v = 0; v < 12; v++)
    scripts.set(`${tag}-v${v}`, vpcScript(`${tag}-v${v}`, 60, hosts, v + 1));
  const ids = [...scripts.values()].flat().map((i) => (i as { id: string }).id);
  const clients = await clientConnections(ctx.nats.url, 2);
  await publishScripts(clients, scripts);
  const statuses = await eventually(
    async () => {
      const all = (await readStream(ctx.nats.nc, streams.status)).map(
        (m) => JSON.parse(new TextDecoder().decode(m.data)) as Status,
      );
      // Every intent decided first: programmed can catch up with the decisions
      // made so far while later ones are still coming.
      const decided = new Set(
        all
          .filter((s) => s.outcome === 'accepted' || s.outcome === 'rejected')
          .map((s) => s.intentId),
      );
      if (!ids.every((id) => decided.has(id))) return undefined;
      const accepted = all.filter((s) => s.outcome === 'accepted').length;
      const done = all.filter(
        (s) => s.outcome === 'programmed' || s.outcome === 'incomplete',
      ).length;
      return accepted > 0 && done === accepted ? all : undefined;
    },
    {
      timeoutMs: 60_000,
      intervalMs: 500,
      what: 'a programmed or incomplete status per accepted intent',
    },
  );
  const incomplete = statuses.filter((s) => s.outcome === 'incomplete');
  assert.equal(incomplete, [], 'no intent incomplete');
  const states = await foldEventLog(ctx.nats.nc);
  const diff = diverging(
    states,
    [...ctx.fleet.hosts.values()].map((h) => h.model),
  );
  assert.equal(diff, [], 'oracle: no host diverges');
  for (const host of ctx.fleet.hosts.values()) {
    assert.is(host.stats.delivered, host.stats.needed, `${host.record.hostId} delivered = needed`);
  }
  await Promise.all(clients.map((c) => c.close()));
});

test.run();
