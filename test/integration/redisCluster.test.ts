/**
 * The VPC↔host mapping on a real Redis Cluster (3 masters, 3 replicas, local
 * processes): every script runs (one slot each), a master's loss is survived (its
 * replica takes over; writes fail for a few seconds and then go through), the
 * failover is seen (`masters()` changes), a new generation is named once however
 * many owners saw it, and an entry older than its VPC's revision — what a replica
 * promoted before it had the last writes holds — is replaced whole by a restore,
 * while a newer one is left alone.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createRedisHostMapping,
  runDir,
  startLocalRedisCluster,
  type LocalRedisCluster,
  type RedisHostMapping,
} from '../../infra/index.js';
import { eventually } from '../support/eventually.js';

interface Ctx {
  cluster: LocalRedisCluster;
  mapping: RedisHostMapping;
}

const test = suite<Ctx>('the host mapping on a Redis Cluster');

test.before(async (ctx) => {
  ctx.cluster = await startLocalRedisCluster({
    dir: runDir('alcor-redis-cluster-'),
    acl: { username: 'alcor', password: 'alcor-test-password' },
  });
  ctx.mapping = createRedisHostMapping(ctx.cluster.url);
});

test.after(async (ctx) => {
  await ctx.mapping?.close();
  await ctx.cluster?.stop();
});

/** Retries a write that fails while a failover is under way (the callers retry the same way). */
async function retried(write: () => Promise<unknown>): Promise<number> {
  for (let failures = 0; ; failures++) {
    try {
      await write();
      return failures;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

test('writes on every master, a master lost, its replica takes over, writes go on', async (ctx) => {
  const { mapping, cluster } = ctx;
  const vpcs = Array.from({ length: 30 }, (_, i) => `rc-v${i}`);
  for (const v of vpcs) await mapping.apply(v, 10, ['h1', 'h2'], [], () => ['h1', 'h2']);
  assert.equal((await mapping.hostsOf('rc-v3'))?.hosts.sort(), ['h1', 'h2']);
  assert.equal((await mapping.vpcsOf('h1')).sort(), [...vpcs].sort());

  const before = await mapping.masters();
  assert.ok(before && before.split(' ').length === 3, `three masters: ${before}`);
  const roles = await Promise.all(cluster.nodes.map((n) => n.role()));
  assert.equal(roles.filter((r) => r === 'master').length, 3);
  const master = cluster.nodes[roles.indexOf('master')]!;
  await master.kill();
  let failures = 0;
  for (const v of vpcs)
    failures += await retried(() => mapping.apply(v, 11, ['h3'], ['h1'], () => ['h2', 'h3']));
  for (const v of vpcs) assert.equal((await mapping.hostsOf(v))?.hosts.sort(), ['h2', 'h3'], v);
  const after = await eventually(
    async () => {
      const m = await mapping.masters();
      return m !== before ? m : undefined;
    },
    { timeoutMs: 15_000, what: 'the failover in the slot map' },
  );
  assert.is(after.split(' ').length, 3, 'every slot range has a master again');
  console.log(`  ${failures} writes failed while the replica took over`);
  await master.revive();
  assert.is(await master.role(), 'slave', 'the lost master comes back as a replica');
});

test('a new generation is named once, by whoever saw the failover first', async (ctx) => {
  const { mapping } = ctx;
  const { id } = await mapping.generation();
  await mapping.renewGeneration(id);
  const renewed = (await mapping.generation()).id;
  assert.is.not(renewed, id);
  await mapping.renewGeneration(id); // a second owner, with the old one
  assert.is((await mapping.generation()).id, renewed, 'not renewed twice');
});

test('a restore replaces an entry older than the revision, and only that', async (ctx) => {
  const { mapping } = ctx;
  await mapping.apply('rc-lag', 20, ['h1', 'h2'], [], () => ['h1', 'h2']);
  assert.is(await mapping.restore('rc-lag', 20, ['h1', 'h2', 'h9']), false, 'at the revision');
  await mapping.apply('rc-lag', 21, ['h4'], [], () => ['h1', 'h2', 'h4']);
  assert.is(await mapping.restore('rc-lag', 20, ['x']), false, 'newer: left alone');
  assert.equal((await mapping.hostsOf('rc-lag'))?.hosts.sort(), ['h1', 'h2', 'h4']);
  // An entry at 21 where the VPC is at 25 (a promoted replica missed 22–25): replaced.
  assert.is(await mapping.restore('rc-lag', 25, ['h2', 'h5']), true, 'older: replaced');
  const entry = await mapping.hostsOf('rc-lag');
  assert.is(entry?.revision, 25);
  assert.equal(entry?.hosts.sort(), ['h2', 'h5']);
  assert.equal(await mapping.vpcsOf('h5'), ['rc-lag'], 'the host side written too');
});

test.run();
