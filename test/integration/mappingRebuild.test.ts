/**
 * The VPC↔host mapping is rebuilt when Redis comes back empty (docs/southbound.md):
 * without any new intent, every VPC's entry and every host's list of VPCs are back,
 * passive VPCs included, and the buckets are marked done for the new generation.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createRedisHostMapping,
  putHosts,
  runDir,
  startLocalRedis,
  type LocalRedis,
  type RedisHostMapping,
} from '../../infra/index.js';
import { bucketOf } from '../../shared/index.js';
import type { Controller } from '../../services/controller/index.js';
import { eventually } from '../support/eventually.js';
import {
  clientConnections,
  isolatedNats,
  startTestController,
  type IsolatedNats,
} from '../support/controller.js';
import { unique } from '../support/names.js';
import { fleet as makeHosts, publishScripts, vpcWithPorts } from '../support/workload.js';

interface Ctx {
  nats: IsolatedNats;
  redis: LocalRedis;
  mapping: RedisHostMapping;
  controller: Controller;
}
const test = suite<Partial<Ctx>>('the VPC↔host mapping after Redis lost it');

test.after(async (ctx) => {
  await ctx.controller?.stop();
  await ctx.mapping?.close();
  await ctx.redis?.stop();
  await ctx.nats?.stop();
});

test('owners write every entry again, passive VPCs too, with no new intent', async (ctx) => {
  ctx.nats = await isolatedNats();
  ctx.redis = await startLocalRedis({ dir: runDir('alcor-mapping-redis-') });
  const mapping = (ctx.mapping = createRedisHostMapping(ctx.redis.url));
  const tag = unique('mr');
  const hosts = makeHosts(2, 4, tag);
  await putHosts(ctx.nats.nc, hosts);
  const controller = (ctx.controller = await startTestController(ctx.nats.url, {
    redisUrl: ctx.redis.url,
    mappingCheckMs: 300,
    idleMs: 1000,
  }));
  // Six VPCs, each with ports on three of the hosts.
  const want = new Map<string, string[]>();
  const scripts = new Map<string, unknown[]>();
  for (let v = 0; v < 6; v++) {
    const vpcId = `${tag}-v${v}`;
    const on = [0, 1, 2].map((k) => hosts[(v + k * 3) % hosts.length]!.hostId);
    want.set(vpcId, [...new Set(on)].sort());
    scripts.set(vpcId, vpcWithPorts(vpcId, on));
  }
  const vpcsOfHost = new Map<string, string[]>();
  for (const [vpcId, on] of want)
    for (const h of on) vpcsOfHost.set(h, [...(vpcsOfHost.get(h) ?? []), vpcId].sort());
  await publishScripts(await clientConnections(ctx.nats.url, 1), scripts);

  const whole = async (): Promise<true | undefined> => {
    for (const [vpcId, on] of want) {
      const found = await mapping.hostsOf(vpcId);
      if (JSON.stringify(found?.hosts.sort()) !== JSON.stringify(on)) return undefined;
    }
    for (const [hostId, vpcs] of vpcsOfHost) {
      const found = (await mapping.vpcsOf(hostId)).filter((v) => want.has(v)).sort();
      if (JSON.stringify(found) !== JSON.stringify(vpcs)) return undefined;
    }
    return true;
  };
  await eventually(whole, { timeoutMs: 20_000, what: 'the mapping written by the commits' });
  // Every VPC passive: nothing in memory writes it back by chance.
  await eventually(() => (controller.activeVpcs() === 0 ? true : undefined), {
    timeoutMs: 20_000,
    what: 'the VPCs passivated',
  });
  const before = controller.metrics.mappingRestores;
  const { id: lost } = await mapping.generation();

  await ctx.redis.kill();
  await ctx.redis.revive();
  // Not asserted by reading an entry right away: the owner, checking every 300 ms,
  // may have written it back first. The generation says Redis came back empty.
  await eventually(whole, { timeoutMs: 20_000, what: 'the mapping rebuilt' });
  assert.ok(controller.metrics.mappingRestores - before >= want.size, 'each VPC restored');
  const { id } = await mapping.generation();
  assert.is.not(id, lost, 'Redis came back empty: a new generation');
  // Entries come back one by one before the pass marks its buckets done.
  const buckets = [...new Set([...want.keys()].map((v) => bucketOf(v)))];
  await eventually(
    async () =>
      (await mapping.rebuiltFor(buckets)).every((mark) => mark === id) ? true : undefined,
    { timeoutMs: 10_000, what: 'every bucket marked written for the new generation' },
  );
});

test.run();
