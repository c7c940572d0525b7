import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { pingRedis } from '../../infra/index.js';
import { testServers, unique } from '../support/index.js';

const RedisSmoke = suite<{ redis: Redis }>('redis-server');

RedisSmoke.before(async (ctx) => {
  const { redisUrl } = await testServers();
  ctx.redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
});

RedisSmoke.after(async (ctx) => {
  await ctx.redis.quit();
});

RedisSmoke('reports its version', async () => {
  const { redisUrl } = await testServers();
  assert.match(await pingRedis(redisUrl), /^\d+\.\d+/);
});

RedisSmoke('hash-tagged mapping sets: add, read, intersect and remove', async ({ redis }) => {
  const vpc = unique('vpc');
  const [h1, h2, h3] = [unique('host'), unique('host'), unique('host')];
  const vpcKey = `{vpc:${vpc}}:hosts`;
  await redis.sadd(vpcKey, h1, h2, h3, h1);
  assert.equal((await redis.smembers(vpcKey)).sort(), [h1, h2, h3].sort());
  assert.is(await redis.scard(vpcKey), 3);
  const other = `{vpc:${vpc}}:other`;
  await redis.sadd(other, h2, unique('host'));
  assert.equal(await redis.sinter(vpcKey, other), [h2]);
  assert.is(await redis.srem(vpcKey, h1, 'absent'), 1);
  assert.equal((await redis.smembers(vpcKey)).sort(), [h2, h3].sort());
  await redis.del(vpcKey, other);
  assert.is(await redis.exists(vpcKey), 0);
});

RedisSmoke.run();
