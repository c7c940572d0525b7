/**
 * The VPC↔host mapping in Redis (DESIGN §4.7): sets `{vpc:<id>}:hosts` and
 * `{host:<id>}:vpcs`, each guarded by revision in its own slot — `{vpc:<id>}:rev`
 * for the VPC side, hash `{host:<id>}:revs` (vpc → revision) for the host side —
 * so a write older than the one applied is skipped and every script touches keys
 * of one hash tag only (a Redis Cluster can run it).
 */
import { Redis, type RedisOptions } from 'ioredis';
import { redisKeys, type HostMapping } from '../../shared/index.js';

/** KEYS: hosts, rev. ARGV: revision, mode (delta|restore), count of adds, adds…, removes…. */
const VPC_SIDE = `
local cur = redis.call('GET', KEYS[2])
if ARGV[2] == 'restore' then
  if cur then return 0 end
elseif cur and tonumber(cur) > tonumber(ARGV[1]) then
  return 0
end
local n = tonumber(ARGV[3])
for i = 4, 3 + n do redis.call('SADD', KEYS[1], ARGV[i]) end
for i = 4 + n, #ARGV do redis.call('SREM', KEYS[1], ARGV[i]) end
redis.call('SET', KEYS[2], ARGV[1])
return 1`;

/** KEYS: vpcs, revs. ARGV: vpcId, revision, present (1|0). */
const HOST_SIDE = `
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur and tonumber(cur) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if ARGV[3] == '1' then redis.call('SADD', KEYS[1], ARGV[1]) else redis.call('SREM', KEYS[1], ARGV[1]) end
return 1`;

interface MappingCommands {
  vpcSide(hosts: string, rev: string, ...argv: string[]): Promise<number>;
  hostSide(
    vpcs: string,
    revs: string,
    vpcId: string,
    revision: string,
    present: string,
  ): Promise<number>;
}

export interface RedisHostMapping extends HostMapping {
  client: Redis;
  close(): Promise<void>;
}

export function createRedisHostMapping(
  url: string,
  options: { redis?: RedisOptions } = {},
): RedisHostMapping {
  const client = new Redis(url, {
    maxRetriesPerRequest: null,
    lazyConnect: false,
    ...options.redis,
  });
  // Reconnects are ioredis's job; commands wait in its offline queue meanwhile.
  client.on('error', () => undefined);
  client.defineCommand('vpcSide', { numberOfKeys: 2, lua: VPC_SIDE });
  client.defineCommand('hostSide', { numberOfKeys: 2, lua: HOST_SIDE });
  const commands = client as unknown as MappingCommands;

  const hostSides = (vpcId: string, revision: number, hosts: string[], present: boolean) =>
    hosts.map((h) =>
      commands.hostSide(
        redisKeys.hostVpcs(h),
        redisKeys.hostVpcRevisions(h),
        vpcId,
        String(revision),
        present ? '1' : '0',
      ),
    );

  return {
    client,
    async apply(vpcId, revision, present, absent) {
      await Promise.all([
        commands.vpcSide(
          redisKeys.vpcHosts(vpcId),
          redisKeys.vpcRevision(vpcId),
          String(revision),
          'delta',
          String(present.length),
          ...present,
          ...absent,
        ),
        ...hostSides(vpcId, revision, present, true),
        ...hostSides(vpcId, revision, absent, false),
      ]);
    },
    async restore(vpcId, revision, hosts) {
      const written = await commands.vpcSide(
        redisKeys.vpcHosts(vpcId),
        redisKeys.vpcRevision(vpcId),
        String(revision),
        'restore',
        String(hosts.length),
        ...hosts,
      );
      if (written === 0) return false;
      await Promise.all(hostSides(vpcId, revision, hosts, true));
      return true;
    },
    async hostsOf(vpcId) {
      const [rev, hosts] = await Promise.all([
        client.get(redisKeys.vpcRevision(vpcId)),
        client.smembers(redisKeys.vpcHosts(vpcId)),
      ]);
      if (rev === null) return undefined;
      return { revision: Number(rev), hosts };
    },
    vpcsOf: (hostId) => client.smembers(redisKeys.hostVpcs(hostId)),
    close: async () => {
      await client.quit().catch(() => client.disconnect());
    },
  };
}
