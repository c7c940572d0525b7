/**
 * Real servers for services, tests, the demo and benchmarks, found in the order of
 * DESIGN §11: (1) URLs from the environment, (2) a Docker engine — a single
 * server through testcontainers, a scaled-out one (NATS cluster, Kafka brokers,
 * Redis Cluster) as the local processes are started but each node in a container
 * (infra/local/container.ts) — (3) local processes provisioned without Docker. A server named
 * in the environment that cannot be reached is an error naming it — never a hang
 * and never a silent fallback.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DEFAULT_BUCKET_COUNT, ConfigError, ServerUnavailableError } from '../shared/index.js';
import { probeNats } from './nats/connect.js';
import { pingRedis, redactUrl, redisUrlFromEnv } from './redis/probe.js';
import { probeKafka } from './kafka/probe.js';
import {
  kafkaCaVar,
  kafkaRoleEnv as roleEnvFromFile,
  kafkaSaslFromEnv,
  type KafkaCredentialsFile,
} from './kafka/sasl.js';
import { runDir } from './local/cache.js';
import { localTlsFiles, type TlsFiles } from './local/tls.js';
import {
  startLocalNats,
  startLocalNatsCluster,
  type LocalNats,
  type LocalNatsCluster,
} from './local/natsServer.js';
import {
  startLocalRedis,
  startLocalRedisCluster,
  type LocalRedis,
  type LocalRedisCluster,
} from './local/redisServer.js';
import { makeKafkaUsers, startLocalKafka, type LocalKafka } from './local/kafkaServer.js';
import type { KafkaRole } from './kafka/acls.js';
import type { ContainerSpec } from './local/container.js';
import {
  dockerEngineNotLocal,
  dockerEngineUsable,
  dockerEngineVisible,
  dockerImage,
  startDockerKafka,
  startDockerNats,
  startDockerRedis,
} from './docker.js';

export type ServerSource = 'env' | 'docker' | 'local';

export interface ServerInfo {
  /** e.g. "nats-server", "redis-server", "kafka cluster a" */
  name: string;
  /** Where it listens, for display: never with credentials in it. */
  endpoint: string;
  /** What clients connect to, when it differs from `endpoint` (a URL with credentials). */
  url?: string;
  version: string;
  source: ServerSource;
  warning?: string;
}

export interface Servers {
  nats: ServerInfo & { monitorUrl?: string };
  /** Why the servers were not provisioned the first way that looked possible (Docker). */
  note?: string;
  redis: ServerInfo;
  kafka: Record<string, ServerInfo & { brokers: string[] }>;
  /** Handles of locally started servers, for fault tests (restart, kill). */
  local: {
    /** The server, or a cluster's first node. */
    nats?: LocalNats;
    /** Every node, when NATS is a local cluster. */
    natsNodes: LocalNats[];
    /** One server, or a Redis Cluster (its `nodes` then). */
    redis?: LocalRedis | LocalRedisCluster;
    kafka: Record<string, LocalKafka>;
  };
  /** JetStream replicas the streams and buckets take: the local cluster's size, else 1. */
  replicas: number;
  /** Directory of this run's server data and logs (local provisioning). */
  dir: string;
  /** The environment a child process needs to find these servers. */
  env(): Record<string, string>;
  /**
   * The Kafka credentials of a role on every locally provisioned cluster (the
   * `KAFKA_<ID>_SASL_*` variables), to give a process its role's user; empty for
   * clusters from the environment or Docker.
   */
  kafkaRoleEnv(role: KafkaRole): Record<string, string>;
  /**
   * Stops the servers, then removes `dir` — or, with `keepLogs`, only what the
   * servers stored there (data, configuration, credentials), keeping each local
   * server's log file and whatever else was put in `dir`; with `keepData`, nothing.
   */
  stop(options?: { keepData?: boolean; keepLogs?: boolean }): Promise<void>;
}

export interface ProvisionOptions {
  kafkaClusters?: string[];
  bucketCount?: number;
  syncInterval?: string;
  /** Local NATS: JetStream's file storage limit per server, bytes (NatsServerConfig.maxFileStore). */
  maxFileStore?: number;
  /** Local NATS as a cluster of this many nodes (default ALCOR_NATS_NODES, or 1). */
  natsNodes?: number;
  /** Brokers of each local Kafka cluster (default ALCOR_KAFKA_BROKERS_PER_CLUSTER, or 1). */
  kafkaBrokers?: number;
  /** Redis as a local Redis Cluster, 3 masters and 3 replicas (default ALCOR_REDIS_CLUSTER=1). */
  redisCluster?: boolean;
  /** The cgroup v2 directory each local NATS node (1, 2, …) runs in (fault tests). */
  natsCgroupOf?: (node: number) => string | undefined;
  /** Local NATS: called with node i's (1, 2, …) store directory before it starts. */
  natsStoreMountOf?: (node: number, storeDir: string) => Promise<void>;
  /** Local processes even where a Docker engine is visible (fault tests kill and restart them). */
  local?: boolean;
  env?: NodeJS.ProcessEnv;
}

export const DEFAULT_KAFKA_CLUSTERS = ['a', 'b'];
const CLUSTER_ID = /^[a-z0-9]{1,16}$/;

export function kafkaBrokersVar(clusterId: string): string {
  return `KAFKA_${clusterId.toUpperCase()}_BROKERS`;
}

export function kafkaClustersFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const ids =
    env.KAFKA_CLUSTERS?.split(',')
      .map((s) => s.trim())
      .filter(Boolean) ?? DEFAULT_KAFKA_CLUSTERS;
  for (const id of ids) {
    if (!CLUSTER_ID.test(id))
      throw new ConfigError(
        'KAFKA_CLUSTERS',
        `cluster id ${JSON.stringify(id)} must match ${CLUSTER_ID.source}`,
      );
  }
  return ids;
}

/** ALCOR_NATS_NODES: a local NATS cluster of that many nodes (1 to 5). */
export function natsNodesFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.ALCOR_NATS_NODES;
  if (raw === undefined || raw === '') return 1;
  if (!/^[1-5]$/.test(raw))
    throw new ConfigError('ALCOR_NATS_NODES', 'must be a number from 1 to 5');
  return Number(raw);
}

/** ALCOR_KAFKA_BROKERS_PER_CLUSTER: local Kafka clusters of that many brokers (1 to 5). */
export function kafkaBrokersPerClusterFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.ALCOR_KAFKA_BROKERS_PER_CLUSTER;
  if (raw === undefined || raw === '') return 1;
  if (!/^[1-5]$/.test(raw))
    throw new ConfigError('ALCOR_KAFKA_BROKERS_PER_CLUSTER', 'must be a number from 1 to 5');
  return Number(raw);
}

/** Servers that are already provisioned, described by the environment (children use this). */
export function serversFromEnv(env: NodeJS.ProcessEnv = process.env): {
  natsUrl: string;
  redisUrl: string;
  kafka: Record<string, string[]>;
} {
  const need = (name: string): string => {
    const value = env[name];
    if (!value) throw new ConfigError(name, 'is not set');
    return value;
  };
  return {
    natsUrl: need('NATS_URL'),
    redisUrl: need('REDIS_URL'),
    kafka: kafkaBrokersFromEnv(env),
  };
}

/**
 * Brokers per Kafka cluster of KAFKA_CLUSTERS, from KAFKA_<ID>_BROKERS (comma
 * separated). A cluster without brokers is a ConfigError naming its variable,
 * unless `optional` (then it is left out).
 */
export function kafkaBrokersFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  options: { optional?: boolean } = {},
): Record<string, string[]> {
  const kafka: Record<string, string[]> = {};
  for (const id of kafkaClustersFromEnv(env)) {
    const brokers = env[kafkaBrokersVar(id)];
    if (brokers) kafka[id] = brokers.split(',').map((b) => b.trim());
    else if (!options.optional) throw new ConfigError(kafkaBrokersVar(id), 'is not set');
  }
  return kafka;
}

type Started<T> = T & { stop: () => Promise<void> };

export async function provisionServers(options: ProvisionOptions = {}): Promise<Servers> {
  const env = options.env ?? process.env;
  const bucketCount = options.bucketCount ?? DEFAULT_BUCKET_COUNT;
  const clusters = options.kafkaClusters ?? kafkaClustersFromEnv(env);
  const syncInterval = options.syncInterval ?? env.NATS_SYNC_INTERVAL;
  const natsNodes = options.natsNodes ?? natsNodesFromEnv(env);
  const kafkaBrokers = options.kafkaBrokers ?? kafkaBrokersPerClusterFromEnv(env);
  const redisCluster = options.redisCluster ?? env.ALCOR_REDIS_CLUSTER === '1';
  const wantsDocker = env.ALCOR_PROVISION === 'docker';
  const scaledOut = natsNodes > 1 || kafkaBrokers > 1 || redisCluster;
  let useDocker = options.local !== true && dockerEngineVisible(env);
  let dockerNote: string | undefined;
  const notLocal = scaledOut && useDocker ? dockerEngineNotLocal(env) : undefined;
  if (notLocal) {
    if (wantsDocker) throw new ServerUnavailableError('docker', notLocal);
    useDocker = false;
    dockerNote = `Docker not used: ${notLocal}; the servers run as local processes`;
  }
  if (wantsDocker && !useDocker)
    throw new ServerUnavailableError(
      'docker',
      'ALCOR_PROVISION=docker, but no Docker engine is visible (DOCKER_HOST, /var/run/docker.sock)',
    );
  const needsServers =
    !env.NATS_URL || !env.REDIS_URL || clusters.some((id) => !env[kafkaBrokersVar(id)]);
  if (useDocker && needsServers) {
    // A visible engine that cannot serve: one line saying why, then local processes.
    const usable = await dockerEngineUsable(env);
    if (!usable.ok) {
      if (wantsDocker)
        throw new ServerUnavailableError(
          'docker',
          `${usable.reason}; ALCOR_PROVISION=docker asks for Docker (unset it to run the servers as local processes)`,
        );
      useDocker = false;
      dockerNote = `Docker not used: ${usable.reason}; the servers run as local processes (ALCOR_PROVISION=local skips this check, =docker requires Docker)`;
    }
  }
  const dir = runDir();
  const local: Servers['local'] = { kafka: {}, natsNodes: [] };
  // TLS for every server run here (unless ALCOR_TLS=off): the checkout's local CA
  // and its certificate for 127.0.0.1; every client verifies it (the *_CA_FILE
  // variables of env()).
  let tlsFiles: Promise<TlsFiles> | undefined;
  const tlsKafka = new Set<string>();
  const tls = (): Promise<TlsFiles> | undefined =>
    env.ALCOR_TLS === 'off' ? undefined : (tlsFiles ??= localTlsFiles());
  const stoppers: Array<() => Promise<void>> = [];
  /**
   * A scaled-out server on Docker: started as the local ones are, each node in a
   * container on this machine's network that sees the run's folder and the TLS
   * files (infra/local/container.ts). A single server on Docker is testcontainers'.
   */
  const containerOf = async (
    kind: 'nats' | 'kafka' | 'redis',
  ): Promise<ContainerSpec | undefined> => {
    if (!useDocker) return undefined;
    const t = await tls();
    const tlsDirs = t ? [t.caFile, t.certFile, t.keyFile, t.keyAndCertFile].map(dirname) : [];
    return { image: dockerImage(kind), mounts: [dir, ...tlsDirs] };
  };

  /** What the servers store in `dir`: removed at stop (their log files aside, with keepLogs). */
  const stored: string[] = [];
  const sub = (name: string): string => {
    const d = join(dir, name);
    stored.push(d);
    mkdirSync(d, { recursive: true });
    return d;
  };

  const nats = async (): Promise<Started<Servers['nats']>> => {
    const name = 'nats-server';
    if (env.NATS_URL) {
      const version = await probeNats(env.NATS_URL);
      return { name, endpoint: env.NATS_URL, version, source: 'env', stop: async () => {} };
    }
    if (useDocker && natsNodes === 1) {
      const s = await startDockerNats(bucketCount, await tls());
      stoppers.push(s.stop);
      return { name, endpoint: s.endpoint, version: s.version, source: 'docker', stop: s.stop };
    }
    const natsTls = await tls();
    const natsOptions = {
      dir: sub('nats'),
      bucketCount,
      ...(natsTls ? { tls: natsTls } : {}),
      // Users per role and per host (DESIGN §9), unless ALCOR_NATS_AUTH=off.
      auth: env.ALCOR_NATS_AUTH !== 'off',
      ...(syncInterval === undefined ? {} : { syncInterval }),
      ...(options.maxFileStore === undefined ? {} : { maxFileStore: options.maxFileStore }),
    };
    if (natsNodes > 1) {
      const container = await containerOf('nats');
      const c: LocalNatsCluster = await startLocalNatsCluster({
        ...natsOptions,
        ...(container ? { container } : {}),
        nodes: natsNodes,
        ...(options.natsCgroupOf ? { cgroupOf: options.natsCgroupOf } : {}),
        ...(options.natsStoreMountOf ? { storeMountOf: options.natsStoreMountOf } : {}),
      });
      local.natsNodes = c.nodes;
      local.nats = c.nodes[0];
      stoppers.push(c.stop);
      const first = c.nodes[0]!;
      return {
        name: `nats-server cluster of ${natsNodes}`,
        endpoint: c.url,
        monitorUrl: first.monitorUrl,
        version: first.version,
        source: container ? 'docker' : 'local',
        ...(first.warning === undefined ? {} : { warning: first.warning }),
        stop: c.stop,
      };
    }
    const cgroup = options.natsCgroupOf?.(1);
    const mountOf = options.natsStoreMountOf;
    const s = await startLocalNats({
      ...natsOptions,
      ...(cgroup ? { cgroup } : {}),
      ...(mountOf ? { storeMount: (storeDir: string) => mountOf(1, storeDir) } : {}),
    });
    local.nats = s;
    local.natsNodes = [s];
    stoppers.push(s.stop);
    return {
      name,
      endpoint: s.url,
      monitorUrl: s.monitorUrl,
      version: s.version,
      source: 'local',
      ...(s.warning === undefined ? {} : { warning: s.warning }),
      stop: s.stop,
    };
  };

  const redis = async (): Promise<Started<Servers['redis']>> => {
    const name = 'redis-server';
    const given = redisUrlFromEnv(env);
    if (given) {
      const version = await pingRedis(given);
      return {
        name,
        endpoint: redactUrl(given),
        url: given,
        version,
        source: 'env',
        stop: async () => {},
      };
    }
    if (useDocker && !redisCluster) {
      const s = await startDockerRedis(await tls());
      stoppers.push(s.stop);
      return { name, endpoint: s.endpoint, version: s.version, source: 'docker', stop: s.stop };
    }
    // An ACL user with a password made for this run; the URL in the environment carries it.
    const redisTls = await tls();
    const acl = { username: 'alcor', password: randomBytes(18).toString('base64url') };
    const container = redisCluster ? await containerOf('redis') : undefined;
    const s = redisCluster
      ? await startLocalRedisCluster({
          dir: sub('redis'),
          acl,
          ...(container ? { container } : {}),
          ...(redisTls ? { tls: redisTls } : {}),
        })
      : await startLocalRedis({
          dir: sub('redis'),
          ...(redisTls ? { tls: redisTls } : {}),
          ...(env.ALCOR_REDIS_ACL === 'off' ? {} : { acl }),
        });
    local.redis = s;
    stoppers.push(s.stop);
    return {
      name: redisCluster ? 'redis cluster of 3 masters, 3 replicas' : name,
      endpoint: redactUrl(s.url),
      url: s.url,
      version: s.version,
      source: container ? 'docker' : 'local',
      stop: s.stop,
    };
  };

  const kafka = async (id: string): Promise<Started<Servers['kafka'][string]>> => {
    const name = `kafka cluster ${id}`;
    const given = env[kafkaBrokersVar(id)];
    if (given) {
      const brokers = given.split(',');
      await probeKafka(id, brokers, 5000, kafkaSaslFromEnv(id, env) ?? null);
      return {
        name,
        endpoint: given,
        brokers,
        version: 'external',
        source: 'env',
        stop: async () => {},
      };
    }
    if (useDocker && kafkaBrokers === 1) {
      const s = await startDockerKafka(await tls());
      if (s.tls) tlsKafka.add(id);
      stoppers.push(s.stop);
      return {
        name,
        endpoint: s.endpoint,
        brokers: [s.endpoint],
        version: s.version,
        source: 'docker',
        stop: s.stop,
      };
    }
    // SASL/PLAIN users per role with passwords made for this cluster, and ACLs,
    // unless ALCOR_KAFKA_SASL=off.
    const kafkaTls = await tls();
    const container = await containerOf('kafka');
    const s = await startLocalKafka({
      clusterId: id,
      dir: sub(`kafka-${id}`),
      brokers: kafkaBrokers,
      ...(container ? { container } : {}),
      ...(kafkaTls ? { tls: kafkaTls } : {}),
      ...(env.ALCOR_KAFKA_SASL === 'off' ? {} : { users: makeKafkaUsers() }),
    });
    local.kafka[id] = s;
    stoppers.push(s.stop);
    return {
      name,
      endpoint: s.brokers.join(','),
      brokers: s.brokers,
      version: s.version,
      source: container ? 'docker' : 'local',
      stop: s.stop,
    };
  };

  const stopAll = async (): Promise<void> => {
    await Promise.allSettled(stoppers.splice(0).map((stop) => stop()));
  };

  const results = await Promise.allSettled([nats(), redis(), ...clusters.map((id) => kafka(id))]);
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length > 0) {
    await stopAll();
    const first = failures[0]?.reason as Error;
    if (failures.length > 1) {
      first.message += `\n(and ${failures.length - 1} more: ${failures
        .slice(1)
        .map((f) => (f.reason as Error).message.split('\n')[0])
        .join('; ')})`;
    }
    throw first;
  }
  const values = results.map((r) => (r as PromiseFulfilledResult<Started<ServerInfo>>).value);
  const [natsInfo, redisInfo, ...kafkaInfos] = values as [
    Started<Servers['nats']>,
    Started<Servers['redis']>,
    ...Array<Started<Servers['kafka'][string]>>,
  ];
  const replicas = local.natsNodes.length > 1 ? Math.min(3, local.natsNodes.length) : 1;
  const tlsCaFile = tlsFiles ? (await tlsFiles).caFile : undefined;
  const kafkaById: Servers['kafka'] = {};
  clusters.forEach((id, i) => {
    const info = kafkaInfos[i];
    if (info) kafkaById[id] = info;
  });

  // Every role's Kafka user, for harnesses that start processes in a role.
  const kafkaUsers: KafkaCredentialsFile = {};
  for (const id of clusters) {
    const users = local.kafka[id]?.users;
    if (users) kafkaUsers[id] = users;
  }
  const kafkaCredentials = join(dir, 'kafka-credentials.json');
  stored.push(kafkaCredentials);
  if (Object.keys(kafkaUsers).length > 0)
    writeFileSync(kafkaCredentials, JSON.stringify(kafkaUsers), { mode: 0o600 });
  const kafkaRoleEnv = (role: KafkaRole): Record<string, string> =>
    Object.keys(kafkaUsers).length > 0
      ? roleEnvFromFile(role, { ALCOR_KAFKA_CREDENTIALS: kafkaCredentials })
      : {};
  return {
    nats: natsInfo,
    redis: redisInfo,
    kafka: kafkaById,
    ...(dockerNote ? { note: dockerNote } : {}),
    local,
    replicas,
    dir,
    env() {
      const out: Record<string, string> = {
        NATS_URL: natsInfo.endpoint,
        REDIS_URL: redisInfo.url ?? redisInfo.endpoint,
        KAFKA_CLUSTERS: clusters.join(','),
        ALCOR_BUCKET_COUNT: String(bucketCount),
      };
      if (replicas > 1) out.ALCOR_REPLICAS = String(replicas);
      if (natsInfo.monitorUrl) out.NATS_MONITOR_URL = natsInfo.monitorUrl;
      // The CA of every server run here with TLS (those from the environment keep
      // the caller's own variables).
      if (tlsCaFile) {
        if (natsInfo.source !== 'env' && natsInfo.endpoint.startsWith('tls://'))
          out.NATS_CA_FILE = tlsCaFile;
        if (redisInfo.source !== 'env' && redisInfo.endpoint.startsWith('rediss://'))
          out.REDIS_CA_FILE = tlsCaFile;
      }
      for (const [id, k] of Object.entries(local.kafka))
        if (k.caFile) out[kafkaCaVar(id)] = k.caFile;
      if (tlsCaFile) for (const id of tlsKafka) out[kafkaCaVar(id)] = tlsCaFile;
      const credentials = local.nats?.credentials;
      if (credentials) {
        // Services connect as `service`; a harness picks other roles' seeds from the directory.
        out.NATS_NKEY_SEED_FILE = credentials.roleSeedFile('service');
        out.ALCOR_NATS_CREDENTIALS = credentials.dir;
      }
      for (const id of clusters) out[kafkaBrokersVar(id)] = kafkaById[id]?.endpoint ?? '';
      // Processes use Kafka as `admin` unless given their role's user (kafkaRoleEnv).
      if (Object.keys(kafkaUsers).length > 0) out.ALCOR_KAFKA_CREDENTIALS = kafkaCredentials;
      return { ...out, ...kafkaRoleEnv('admin') };
    },
    kafkaRoleEnv,
    async stop(stopOptions = {}) {
      await stopAll();
      if (stopOptions.keepData) return;
      if (stopOptions.keepLogs) {
        const logs = new Set(
          [local.nats, ...local.natsNodes, local.redis, ...Object.values(local.kafka)].flatMap(
            (s) => (s ? [s.process.logFile] : []),
          ),
        );
        for (const path of stored) removeAllBut(path, logs);
      } else rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Removes `path` except the files in `keep` under it (and the folders holding them). */
function removeAllBut(path: string, keep: ReadonlySet<string>): void {
  let entries;
  try {
    entries = readdirSync(path, { withFileTypes: true });
  } catch (err) {
    // A file (nothing there, or unreadable: left as it is).
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR' && !keep.has(path))
      rmSync(path, { force: true });
    return;
  }
  for (const e of entries) {
    const child = join(path, e.name);
    if (e.isDirectory()) removeAllBut(child, keep);
    else if (!keep.has(child)) rmSync(child, { force: true });
  }
  try {
    rmdirSync(path); // only when nothing is left in it
  } catch {
    // logs inside: it stays
  }
}

/** One line per server, for logs and the test runner's header. */
export function describeServers(servers: Servers): string[] {
  const all: ServerInfo[] = [servers.nats, servers.redis, ...Object.values(servers.kafka)];
  return [
    ...(servers.note ? [servers.note] : []),
    ...all.map(
      (s) =>
        `${s.name} ${s.version} at ${s.endpoint} (${s.source})${s.warning ? ` — WARNING: ${s.warning}` : ''}`,
    ),
  ];
}
