import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import {
  createRedisHostMapping,
  pingRedis,
  redisTlsOptions,
  runDir,
  startLocalRedis,
} from '../../infra/index.js';
import { testServers, unique } from '../support/index.js';

async function rejects(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (err: Error) => err,
  );
  assert.ok(error, `expected a refusal matching ${pattern}`);
  assert.match(error.message, pattern, error.message);
}

const RedisSmoke = suite<{ redis: Redis }>('redis-server');

RedisSmoke.before(async (ctx) => {
  const { redisUrl } = await testServers();
  ctx.redis = new Redis(redisUrl, { ...redisTlsOptions(redisUrl), maxRetriesPerRequest: 1 });
});

RedisSmoke.after(async (ctx) => {
  await ctx.redis.quit();
});

RedisSmoke('reports its version', async () => {
  const { redisUrl } = await testServers();
  assert.match(await pingRedis(redisUrl), /^\d+\.\d+/);
});

RedisSmoke('hash-tagged mapping sets: add, read and remove', async ({ redis }) => {
  const vpc = unique('vpc');
  const [h1, h2, h3] = [unique('host'), unique('host'), unique('host')];
  const vpcKey = `{vpc:${vpc}}:hosts`;
  await redis.sadd(vpcKey, h1, h2, h3, h1);
  assert.equal((await redis.smembers(vpcKey)).sort(), [h1, h2, h3].sort());
  assert.is(await redis.srem(vpcKey, h1, 'absent'), 1);
  assert.equal((await redis.smembers(vpcKey)).sort(), [h2, h3].sort());
  // The last member gone, the key is gone (the app user may not DEL).
  await redis.srem(vpcKey, h2, h3);
  assert.equal(await redis.smembers(vpcKey), []);
});

RedisSmoke(
  'with an ACL user: the mapping works, the default user and wrong passwords are refused, other keys and admin commands too',
  async () => {
    const server = await startLocalRedis({
      dir: runDir('alcor-redis-acl-'),
      acl: { username: 'alcor', password: 'secret-1' },
    });
    const clients: Redis[] = [];
    const client = (url: string): Redis => {
      const c = new Redis(url, {
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        lazyConnect: true,
        enableReadyCheck: false,
      });
      clients.push(c);
      return c;
    };
    try {
      assert.match(server.url, /^redis:\/\/alcor:secret-1@/);
      const mapping = createRedisHostMapping(server.url);
      await mapping.apply('acl-vpc', 1, ['acl-h1'], [], () => ['acl-h1']);
      assert.equal(await mapping.hostsOf('acl-vpc'), { revision: 1, hosts: ['acl-h1'] });
      assert.equal(await mapping.vpcsOf('acl-h1'), ['acl-vpc']);
      await mapping.close();

      const bare = server.url.replace('alcor:secret-1@', '');
      // The default user is off: its commands are refused.
      const anonymous = client(bare);
      await anonymous.connect();
      await rejects(anonymous.get('{vpc:acl-vpc}:hosts'), /NOAUTH/);
      // A wrong password: the AUTH on connect fails (reported as the client's error).
      const guessing = client(server.url.replace('secret-1', 'guess'));
      const authError = new Promise<Error>((resolve) => guessing.once('error', resolve));
      await guessing.connect().catch(() => undefined);
      assert.match((await authError).message, /WRONGPASS/);
      await rejects(guessing.get('{vpc:acl-vpc}:hosts'), /closed/);
      const alcor = client(server.url);
      await alcor.connect();
      await rejects(alcor.set('elsewhere', '1'), /NOPERM/);
      // Positive control: an allowed command on an allowed key.
      assert.is(await alcor.set('{vpc:acl-vpc}:probe', '1'), 'OK');
      // Everything the application does not send, the keyspace-wide and
      // administrative commands first (SWAPDB emptied the database while FLUSHDB
      // was refused, under the earlier `+@all -@admin` list).
      for (const [command, ...args] of [
        ['swapdb', '0', '1'],
        ['script', 'flush'],
        ['function', 'flush'],
        ['flushall'],
        ['flushdb'],
        ['config', 'get', 'dir'],
        ['keys', '*'],
        ['scan', '0'],
        ['del', '{vpc:acl-vpc}:probe'],
        ['shutdown'],
        ['subscribe', 'x'],
      ] as const)
        await rejects(alcor.call(command, ...args), /NOPERM/);
      assert.is(await alcor.get('{vpc:acl-vpc}:probe'), '1');
      // A script that calls a command outside the list is refused inside the script.
      await rejects(
        alcor.eval("return redis.call('DEL', KEYS[1])", 1, '{vpc:acl-vpc}:probe'),
        /NOPERM|can't run this command/,
      );
      assert.is(await alcor.get('{vpc:acl-vpc}:probe'), '1');
    } finally {
      for (const c of clients) c.disconnect();
      await server.stop();
    }
  },
);

RedisSmoke(
  'the mapping across a Redis restarted empty: a new generation, and a delta for a lost entry writes the whole set',
  async () => {
    const server = await startLocalRedis({ dir: runDir('alcor-redis-lost-') });
    const mapping = createRedisHostMapping(server.url);
    try {
      const first = await mapping.generation();
      assert.is(first.created, true);
      assert.equal(await mapping.generation(), { id: first.id, created: false });
      assert.equal(await mapping.rebuiltFor([3, 4]), [null, null]);
      await mapping.markRebuilt([3], first.id);
      assert.equal(await mapping.rebuiltFor([3, 4]), [first.id, null]);
      const all = ['h1', 'h2', 'h3'];
      await mapping.apply('v', 1, ['h1', 'h2'], [], () => ['h1', 'h2']);
      await mapping.apply('v', 2, ['h3'], [], () => all);
      // An older delta arriving late changes nothing.
      await mapping.apply('v', 1, [], ['h3'], () => ['h1', 'h2']);
      const before = await mapping.hostsOf('v');
      assert.equal({ ...before, hosts: before?.hosts.sort() }, { revision: 2, hosts: all });

      await server.kill();
      await server.revive();
      const second = await mapping.generation();
      assert.is(second.created, true);
      assert.is.not(second.id, first.id);
      assert.is(await mapping.hostsOf('v'), undefined);
      assert.equal(await mapping.rebuiltFor([3, 4]), [null, null], 'the marks are lost with it');
      // The next commit adds h4 and drops h1: not a partial set of {h4}, but the whole one.
      await mapping.apply('v', 3, ['h4'], ['h1'], () => ['h2', 'h3', 'h4']);
      const after = await mapping.hostsOf('v');
      assert.equal(
        { ...after, hosts: after?.hosts.sort() },
        { revision: 3, hosts: ['h2', 'h3', 'h4'] },
      );
      assert.equal(await mapping.vpcsOf('h3'), ['v']);
      assert.equal(await mapping.vpcsOf('h1'), []);
      // A restore of a present entry writes nothing.
      assert.is(await mapping.restore('v', 3, ['h9']), false);
    } finally {
      await mapping.close();
      await server.stop();
    }
  },
);

RedisSmoke.run();
