/**
 * The VPC↔host mapping in Redis (DESIGN §4.7): sets `{vpc:<id>}:hosts` and
 * `{host:<id>}:vpcs`, each guarded by revision in its own slot — `{vpc:<id>}:rev`
 * for the VPC side, hash `{host:<id>}:revs` (vpc → revision) for the host side —
 * so a write older than the one applied is skipped and every script touches keys
 * of one hash tag only (a Redis Cluster can run it).
 */
import { randomBytes } from 'node:crypto';
import { Cluster, type RedisOptions } from 'ioredis';
import { redisKeys, type HostMapping } from '../../shared/index.js';
import { createRedisClient, type RedisClient } from './connect.js';

/**
 * KEYS: hosts, rev. ARGV: revision, mode (delta|restore), count of adds, adds…, removes….
 * Returns 1 written, 0 skipped (older, or for a restore an entry at the revision or
 * newer), 2 a delta for a missing entry (lost, or a new VPC): not written, since a
 * delta on nothing would leave a partial set that looks whole — the caller writes
 * the whole set instead. A restore replaces an older entry whole (a replica
 * promoted before it had the last writes holds one).
 */
const VPC_SIDE = `
local cur = redis.call('GET', KEYS[2])
if ARGV[2] == 'restore' then
  if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
  local keep = {}
  for i = 4, #ARGV do keep[ARGV[i]] = true end
  for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    if not keep[h] then redis.call('SREM', KEYS[1], h) end
  end
elseif not cur then
  return 2
elseif tonumber(cur) > tonumber(ARGV[1]) then
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

/**
 * The mapping's generation: a random id written when the mapping is found without
 * one — new, or lost with the Redis that held it. A `{vpc:…}` key (the ACL user may
 * write only those) that no VPC's keys can be: theirs end in `:hosts` or `:rev`.
 */
const GENERATION_KEY = '{vpc:alcor}:generation';
/** Hash: bucket → the generation its VPCs' entries were written for (lost with the rest). */
const REBUILT_KEY = '{vpc:alcor}:rebuilt';

/**
 * KEYS: generation. ARGV: a new id. The current generation, or the new id set as
 * it if there is none (`created` 1). One script: a SET NX and a GET sent apart can
 * straddle a restart (the SET meets the old Redis, the GET the new, empty one) and
 * name an id that was never stored.
 */
const CURRENT = `
local id = redis.call('GET', KEYS[1])
if id then return {id, 0} end
redis.call('SET', KEYS[1], ARGV[1])
return {ARGV[1], 1}`;

/** KEYS: generation. ARGV: the generation seen, a new one. Sets the new one if the seen one is current. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) end
return 1`;

interface MappingCommands {
  currentGeneration(generation: string, fresh: string): Promise<[string, number]>;
  vpcSide(hosts: string, rev: string, ...argv: string[]): Promise<number>;
  hostSide(
    vpcs: string,
    revs: string,
    vpcId: string,
    revision: string,
    present: string,
  ): Promise<number>;
  renewGeneration(generation: string, seen: string, fresh: string): Promise<number>;
}

export interface RedisHostMapping extends HostMapping {
  client: RedisClient;
  close(): Promise<void>;
}

export function createRedisHostMapping(
  url: string,
  options: { redis?: RedisOptions } = {},
): RedisHostMapping {
  const client = createRedisClient(url, {
    maxRetriesPerRequest: null,
    lazyConnect: false,
    // Commands issued in the same tick go out as one pipeline (one round trip):
    // a group's per-host writes, a relay batch's lookups.
    enableAutoPipelining: true,
    ...options.redis,
  });
  // Reconnects are ioredis's job; commands wait in its offline queue meanwhile.
  client.on('error', () => undefined);
  client.defineCommand('vpcSide', { numberOfKeys: 2, lua: VPC_SIDE });
  client.defineCommand('hostSide', { numberOfKeys: 2, lua: HOST_SIDE });
  client.defineCommand('currentGeneration', { numberOfKeys: 1, lua: CURRENT });
  client.defineCommand('renewGeneration', { numberOfKeys: 1, lua: RENEW });
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

  const restore = async (vpcId: string, revision: number, hosts: readonly string[]) => {
    const written = await commands.vpcSide(
      redisKeys.vpcHosts(vpcId),
      redisKeys.vpcRevision(vpcId),
      String(revision),
      'restore',
      String(hosts.length),
      ...hosts,
    );
    if (written === 0) return false;
    await Promise.all(hostSides(vpcId, revision, [...hosts], true));
    return true;
  };

  return {
    client,
    async apply(vpcId, revision, present, absent, all) {
      const [vpcSide] = await Promise.all([
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
      if (vpcSide === 2) await restore(vpcId, revision, all());
    },
    restore,
    async generation() {
      // The first to find the mapping empty names the new generation.
      const fresh = randomBytes(9).toString('base64url');
      const [id, created] = await commands.currentGeneration(GENERATION_KEY, fresh);
      return { id, created: created === 1 };
    },
    async renewGeneration(seen) {
      await commands.renewGeneration(GENERATION_KEY, seen, randomBytes(9).toString('base64url'));
    },
    async masters() {
      if (!(client instanceof Cluster)) return undefined;
      // [start, end, [host, port, id], …replicas] per slot range.
      // From whichever node answers first: one that is down would hold the question.
      const slots = await Promise.any(
        client
          .nodes('all')
          .map((node) =>
            Promise.race([
              node.cluster('SLOTS'),
              new Promise<never>((_, reject) =>
                setTimeout(() => reject(new Error('no answer')), 1000).unref(),
              ),
            ]),
          ),
      );
      return slots
        .map(([from, to, master]) => `${from}-${to}@${master?.[2] ?? '?'}`)
        .sort()
        .join(' ');
    },
    async rebuiltFor(buckets) {
      if (buckets.length === 0) return [];
      return client.hmget(REBUILT_KEY, ...buckets.map(String));
    },
    async markRebuilt(buckets, generation) {
      if (buckets.length === 0) return;
      await client.hset(
        REBUILT_KEY,
        Object.fromEntries(buckets.map((b) => [String(b), generation])),
      );
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
