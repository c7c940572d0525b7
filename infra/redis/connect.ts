/**
 * One way to reach Redis for the whole system: a single server
 * (`redis://user:pass@host:port`) or a Redis Cluster, named by several seed nodes
 * after the credentials (`redis://user:pass@host1:port1,host2:port2,…`; `rediss://`
 * for TLS either way). A cluster client follows MOVED/ASK redirections and a
 * failover's new masters by itself; the keys are hash-tagged so that every script
 * touches one slot (infra/redis/hostMapping.ts).
 */
import { readFileSync } from 'node:fs';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ConfigError } from '../../shared/index.js';

/**
 * TLS for a `rediss://` URL: the server's certificate verified with REDIS_CA_FILE
 * (or, without it, the system's CAs). A `redis://` URL is plain text.
 */
export function redisTlsOptions(
  url: string,
  env: NodeJS.ProcessEnv = process.env,
): { tls?: { ca?: Buffer } } {
  if (!url.startsWith('rediss://')) return {};
  const file = env.REDIS_CA_FILE;
  if (!file) return { tls: {} };
  try {
    return { tls: { ca: readFileSync(file) } };
  } catch (err) {
    throw new ConfigError('REDIS_CA_FILE', `cannot read ${file}: ${(err as Error).message}`);
  }
}

export interface RedisTarget {
  tls: boolean;
  username?: string;
  password?: string;
  /** One node: a single server. Several: seeds of a Redis Cluster. */
  nodes: Array<{ host: string; port: number }>;
}

const URL_SHAPE = /^(rediss?):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/?$/;

/** What a Redis URL names; a clear error for one that names nothing usable. */
export function parseRedisUrl(url: string): RedisTarget {
  const m = URL_SHAPE.exec(url);
  if (!m)
    throw new ConfigError(
      'REDIS_URL',
      'must be redis[s]://[user[:password]@]host:port[,host:port…] (several: a Redis Cluster)',
    );
  const nodes = m[4]!.split(',').map((hostPort) => {
    const at = hostPort.lastIndexOf(':');
    const host = at > 0 ? hostPort.slice(0, at) : hostPort;
    const port = at > 0 ? Number(hostPort.slice(at + 1)) : 6379;
    if (!host || !Number.isInteger(port) || port < 1 || port > 65535)
      throw new ConfigError('REDIS_URL', `"${hostPort}" is not host:port`);
    return { host: host.replace(/^\[|\]$/g, ''), port };
  });
  return {
    tls: m[1] === 'rediss',
    ...(m[2] ? { username: decodeURIComponent(m[2]) } : {}),
    ...(m[3] !== undefined ? { password: decodeURIComponent(m[3]) } : {}),
    nodes,
  };
}

/** Whether the URL names a Redis Cluster (several seed nodes). */
export function isRedisClusterUrl(url: string): boolean {
  return parseRedisUrl(url).nodes.length > 1;
}

export type RedisClient = Redis | Cluster;

/**
 * A client for the URL: a Redis for one node, a Cluster for several. `options` are
 * each connection's (a cluster passes them to every node it connects to).
 */
export function createRedisClient(
  url: string,
  options: RedisOptions = {},
  env: NodeJS.ProcessEnv = process.env,
  /** A cluster client's own settings, over the defaults below. */
  cluster: Partial<ClusterOptions> = {},
): RedisClient {
  const target = parseRedisUrl(url);
  const tls = redisTlsOptions(url, env);
  if (target.nodes.length === 1) return new Redis(url, { ...tls, ...options });
  const { enableAutoPipelining, lazyConnect, ...perNode } = options;
  return new Cluster(target.nodes, {
    redisOptions: {
      ...tls,
      ...(target.username ? { username: target.username } : {}),
      ...(target.password !== undefined ? { password: target.password } : {}),
      ...perNode,
    },
    ...(enableAutoPipelining !== undefined ? { enableAutoPipelining } : {}),
    ...(lazyConnect !== undefined ? { lazyConnect } : {}),
    // A failover: the slots move to the promoted replica within the cluster's node
    // timeout; commands wait and follow them.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 200,
    maxRedirections: 32,
    slotsRefreshTimeout: 2000,
    clusterRetryStrategy: (times) => Math.min(200 * times, 2000),
    ...cluster,
  });
}
