/**
 * A southbound module (DESIGN §2, §7): heartbeats into KV `southbound`; the
 * modules' leader places the topology partitions (clusters with Kafka-bound
 * hosts, weighted by those hosts) over the live modules with LBMRC and writes KV
 * `placement` key `southbound.table`; each module runs a relay per (partition it owns,
 * Kafka cluster with hosts there) over one producer per Kafka cluster.
 * `start(config) → {stop()}` boots it in-process.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Admin } from 'kafkajs';
import { z } from 'zod';
import {
  DEFAULT_LAYOUT,
  compareAndSet,
  connectNats,
  createHostDirectory,
  createMembership,
  createPartitionAssignments,
  createRedisHostMapping,
  ensureLayout,
  createRegistry,
  kafkaBrokersFromEnv,
  liveGauge,
  natsConnectedFlag,
  objectCounters,
  stageHistogram,
  type Logger,
  type ReadinessChecks,
  type Registry,
  redisUrlFromEnv,
  checkKafkaAccess,
  type AccessVerdict,
} from '../../infra/index.js';
import {
  ConfigError,
  DEFAULT_BUCKET_COUNT,
  ID_PATTERN,
  DEFAULT_HOSTS_PER_PARTITION,
  MAX_HOSTS_PER_PARTITION,
  clusterKey,
  decodeSouthboundTable,
  kvBuckets,
  numbersFromEnv,
  place,
  withEnvNames,
  southboundKeys,
  type SouthboundTable,
  type TopologyPlace,
} from '../../shared/index.js';
import { KafkaBinding, type BindingMetrics } from './kafkaBinding.js';
import { Relay, type RelayMetrics } from './relay.js';

export const SouthboundConfigSchema = z.strictObject({
  instanceId: z.string().regex(ID_PATTERN),
  natsUrl: z.string().min(1),
  /** The nkey seed file of the `southbound` user (default: NATS_NKEY_SEED_FILE). */
  nkeySeedFile: z.string().optional(),
  redisUrl: z.string().min(1),
  /** Brokers per Kafka cluster id. */
  kafka: z.record(z.string().regex(ID_PATTERN), z.array(z.string().min(1)).min(1)),
  capacity: z.number().positive().max(1000).default(1),
  heartbeatTtlMs: z.number().int().min(500).max(600_000).default(5_000),
  epsilon: z.number().min(0).max(0.5).default(0.05),
  bucketCount: z.number().int().min(1).default(DEFAULT_BUCKET_COUNT),
  /** Goal states per Kafka produce. */
  batch: z.number().int().min(1).max(10_000).default(512),
  /** /readyz says "caught up" while every relay has at most this many goal states not in Kafka yet. */
  readyMaxLag: z.number().int().min(0).default(10_000),
  replicas: z.number().int().min(1).max(5).default(1),
  /**
   * Hosts sharing a partition of their group's Kafka topic, for topics this module
   * assigns first (docs/southbound.md, chosen by docs/evaluation.md).
   */
  kafkaHostsPerPartition: z
    .number()
    .int()
    .min(1)
    .max(MAX_HOSTS_PER_PARTITION)
    .default(DEFAULT_HOSTS_PER_PARTITION),
});
export type SouthboundConfigInput = z.input<typeof SouthboundConfigSchema>;
export type SouthboundConfig = z.output<typeof SouthboundConfigSchema>;

export function parseSouthboundConfig(input: SouthboundConfigInput): SouthboundConfig {
  const parsed = SouthboundConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(issue.path.join('.') || 'config', issue.message);
  }
  return parsed.data;
}

const ENV = {
  ALCOR_INSTANCE_ID: 'instanceId',
  ALCOR_CAPACITY: 'capacity',
  ALCOR_HEARTBEAT_TTL_MS: 'heartbeatTtlMs',
  ALCOR_EPSILON: 'epsilon',
  ALCOR_BUCKET_COUNT: 'bucketCount',
  ALCOR_SOUTHBOUND_BATCH: 'batch',
  ALCOR_READY_MAX_LAG: 'readyMaxLag',
  ALCOR_REPLICAS: 'replicas',
  ALCOR_KAFKA_HOSTS_PER_PARTITION: 'kafkaHostsPerPartition',
} as const;

/**
 * The configuration from the environment: NATS_URL, REDIS_URL, KAFKA_CLUSTERS with
 * KAFKA_<ID>_BROKERS, and `ALCOR_*` (instance id, capacity, heartbeat TTL, ε,
 * bucket count, batch, replicas, Kafka hosts per partition).
 */
export function southboundConfigFromEnv(env: NodeJS.ProcessEnv = process.env): SouthboundConfig {
  const { ALCOR_INSTANCE_ID: _id, ...numeric } = ENV;
  const kafka = kafkaBrokersFromEnv(env);
  const input = {
    instanceId: env.ALCOR_INSTANCE_ID ?? `southbound-${process.pid}`,
    natsUrl: env.NATS_URL ?? 'nats://127.0.0.1:4222',
    redisUrl: redisUrlFromEnv(env) ?? 'redis://127.0.0.1:6379',
    kafka,
    ...numbersFromEnv(env, numeric),
  };
  return withEnvNames(ENV, () => parseSouthboundConfig(input));
}

export interface SouthboundModule {
  instanceId: string;
  /** Partitions (cluster keys) this module relays now. */
  partitions: () => string[];
  isLeader: () => boolean;
  relayMetrics: RelayMetrics;
  bindings: () => Record<string, BindingMetrics & { state: string; connections: number }>;
  /**
   * Prometheus metrics: `alcor_stage_seconds{stage="relay", kafka}`, `alcor_relay_lag
   * {partition, kafka}`, `alcor_kafka_*_total{kafka}` (produce errors among them),
   * `alcor_kafka_ready{kafka}`, `alcor_relay_*_total`, `alcor_partitions_owned`.
   */
  registry: Registry;
  /** /readyz: NATS connected, placed (a table followed, lease valid), Kafka ready, caught up. */
  readiness: () => ReadinessChecks;
  stop: () => Promise<void>;
}

export async function start(
  input: SouthboundConfigInput & { log: Logger },
): Promise<SouthboundModule> {
  const { log: parentLog, ...rest } = input;
  const config = parseSouthboundConfig(rest);
  const logger = parentLog.child({ module: config.instanceId });
  const nc: NatsConnection = await connectNats(config.natsUrl, {
    name: `alcor-southbound-${config.instanceId}`,
    ...(config.nkeySeedFile === undefined ? {} : { nkeySeedFile: config.nkeySeedFile }),
  });
  const jsm = await jetstreamManager(nc);
  await ensureLayout(nc, jsm, {
    ...DEFAULT_LAYOUT,
    replicas: config.replicas,
    heartbeatTtlMs: config.heartbeatTtlMs,
  });
  const hosts = await createHostDirectory(nc, {
    onInvalid: (hostId, error) => logger.warn({ hostId, ...error }, 'host record ignored'),
  });
  const mapping = createRedisHostMapping(config.redisUrl);
  const bindings = new Map<string, KafkaBinding>();
  const admins: Record<string, Admin> = {};
  for (const [clusterId, brokers] of Object.entries(config.kafka)) {
    const binding = new KafkaBinding(clusterId, brokers, `alcor-sb-${config.instanceId}`, logger);
    bindings.set(clusterId, binding);
    // The admin shares the binding's client: its connections count with the producer's.
    admins[clusterId] = binding.client.kafka.admin();
  }
  // Each cluster asked what this module needs of it (infra/kafka/accessCheck.ts): a
  // definite refusal stops the start with the fix named; a cluster that does not
  // answer yet is waited for by its binding.
  const verdicts = await Promise.all(
    Object.entries(admins).map(async ([clusterId, admin]) => ({
      clusterId,
      verdict: await checkKafkaAccess(clusterId, admin),
    })),
  );
  for (const { clusterId, verdict } of verdicts)
    if (!verdict.ok && verdict.unreachable)
      logger.warn(
        { kafkaCluster: clusterId, err: verdict.message },
        'kafka cluster not reachable at start: its access is not checked; the binding waits for it',
      );
  const refused = verdicts.find(
    (v): v is { clusterId: string; verdict: Extract<AccessVerdict, { unreachable: false }> } =>
      !v.verdict.ok && !v.verdict.unreachable,
  );
  if (refused) {
    await Promise.allSettled(Object.values(admins).map((a) => a.disconnect()));
    await Promise.allSettled([...bindings.values()].map((b) => b.stop()));
    await mapping.close().catch(() => undefined);
    await hosts.stop();
    await nc.close();
    throw refused.verdict.error;
  }
  const assignments = await createPartitionAssignments(nc, admins, {
    hostsPerPartition: config.kafkaHostsPerPartition,
  });
  const kv = await new Kvm(nc).open(kvBuckets.placement);
  const membership = await createMembership(nc, {
    bucket: kvBuckets.southbound,
    id: config.instanceId,
    capacity: config.capacity,
    placed: true,
    ttlMs: config.heartbeatTtlMs,
    lead: true,
    logger,
  });
  const relays = new Map<string, Relay>();
  let owned: string[] = [];
  let stopping = false;
  let followed = false;
  const connected = natsConnectedFlag(nc);
  const registry = createRegistry('southbound', config.instanceId);
  const stages = stageHistogram(registry, ['kafka']);
  const relayLag = (): Array<[Record<string, string>, number]> =>
    [...relays].map(([key, relay]) => {
      const [partition, kafka] = key.split('/') as [string, string];
      return [{ partition, kafka }, relay.lag()];
    });
  liveGauge(
    registry,
    'alcor_relay_lag',
    'Goal states of a (partition, Kafka cluster) not in Kafka yet',
    relayLag,
    ['partition', 'kafka'],
  );
  objectCounters(
    registry,
    'alcor_kafka',
    {
      produced: 'Records Kafka acknowledged',
      produces: 'Produce requests Kafka acknowledged',
      produceErrors: 'Produce requests that failed (retried)',
      reconnects: 'Kafka producer connections made again after a failure',
    },
    () => [...bindings].map(([kafka, b]) => [{ kafka }, b.metrics]),
    ['kafka'],
  );
  liveGauge(
    registry,
    'alcor_kafka_ready',
    '1 when the Kafka binding is ready to produce',
    () => [...bindings].map(([kafka, b]) => [{ kafka }, b.state === 'ready' ? 1 : 0]),
    ['kafka'],
  );
  liveGauge(registry, 'alcor_partitions_owned', 'Topology partitions relayed', () => owned.length);
  const relayMetrics: RelayMetrics = {
    relayed: 0,
    records: 0,
    invalid: 0,
    mappingRebuilds: 0,
    restarts: 0,
    parts: 0,
    tooLarge: 0,
    receipts: 0,
  };
  objectCounters(
    registry,
    'alcor_relay',
    {
      relayed: 'Goal states taken from GOALSTATES and acknowledged by Kafka',
      records: 'Kafka records made from them (one per host, or per part)',
      invalid: 'Goal states in GOALSTATES that did not decode: not relayed',
      mappingRebuilds:
        "Requests to a VPC's owner to write its hosts to Redis again (the mapping had lost them)",
      restarts: 'Relays started again at their ack floor (deliveries lost on the way)',
      parts: 'Records carrying a part of a goal state too large for one message',
      tooLarge:
        'Goal states that could not be cut under the Kafka limit (an op alone over it): not relayed',
      receipts:
        "Relay receipts published: where Kafka put a goal state's records (stream RELAYS, for alcor trace)",
    } satisfies Record<keyof RelayMetrics, string>,
    () => [[{}, relayMetrics]],
  );

  /**
   * Partitions: clusters with Kafka-bound hosts, weighted by them; their places; and
   * per relay (`<partition>/<Kafka cluster>`) its hosts.
   */
  const partitionsNow = () => {
    const weights = new Map<string, number>();
    const places = new Map<string, TopologyPlace>();
    const clustersOf = new Map<string, Set<string>>();
    const hostsOf = new Map<string, string[]>();
    for (const host of hosts.all()) {
      if (host.binding.type !== 'kafka') continue;
      const key = clusterKey(host);
      weights.set(key, (weights.get(key) ?? 0) + 1);
      places.set(key, host);
      const set = clustersOf.get(key) ?? new Set();
      set.add(host.binding.cluster);
      clustersOf.set(key, set);
      const relayKey = `${key}/${host.binding.cluster}`;
      const list = hostsOf.get(relayKey) ?? [];
      list.push(host.hostId);
      hostsOf.set(relayKey, list);
    }
    return { weights, places, clustersOf, hostsOf };
  };

  const readTable = async (): Promise<{ table?: SouthboundTable; revision: number }> => {
    const entry = await kv.get(southboundKeys.table);
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return { revision: 0 };
    const decoded = decodeSouthboundTable(entry.value);
    if (!decoded.ok) {
      logger.warn(decoded.error, 'southbound table unreadable; rewriting it');
      return { revision: entry.revision };
    }
    return { table: decoded.value, revision: entry.revision };
  };

  /** Places the partitions if they need it; the table in force afterwards. */
  const lead = async (
    current: { table?: SouthboundTable; revision: number },
    weights: Map<string, number>,
  ): Promise<SouthboundTable | undefined> => {
    const { table, revision } = current;
    const members = (await membership.members())
      .filter((m) => m.record.placed)
      .map((m) => ({ id: m.record.id, capacity: m.record.capacity }));
    if (members.length === 0) return table;
    const placement = place({
      items: [...weights].map(([id, weight]) => ({ id, weight })),
      members,
      previous: new Map(Object.entries(table?.owners ?? {})),
      epsilon: config.epsilon,
    });
    const owners = Object.fromEntries([...placement.assignment].sort());
    if (table && JSON.stringify(owners) === JSON.stringify(table.owners)) return table;
    const maxOverFair = Math.max(
      0,
      ...placement.members.map((m) => (m.fair > 0 ? m.load / m.fair : 0)),
    );
    const next: SouthboundTable = {
      epoch: (table?.epoch ?? 0) + 1,
      leader: config.instanceId,
      at: new Date().toISOString(),
      owners,
      weights: Object.fromEntries(weights),
      maxOverFair,
    };
    if (!(await compareAndSet(kv, southboundKeys.table, next, revision))) {
      // Another leader wrote first: follow what is there.
      return (await readTable()).table;
    }
    logger.info(
      { epoch: next.epoch, partitions: weights.size, members: members.length, maxOverFair },
      'southbound table written',
    );
    return next;
  };

  /** Starts and stops relays to match the table; gives the relays' hosts their partitions. */
  const follow = async (
    table: SouthboundTable | undefined,
    { places, clustersOf, hostsOf }: ReturnType<typeof partitionsNow>,
  ): Promise<void> => {
    const mine = table
      ? Object.entries(table.owners)
          .filter(([, owner]) => owner === config.instanceId)
          .map(([key]) => key)
      : [];
    owned = mine.sort();
    const wanted = new Set<string>();
    for (const key of owned) {
      for (const clusterId of clustersOf.get(key) ?? []) wanted.add(`${key}/${clusterId}`);
    }
    for (const [key, relay] of relays) {
      if (!wanted.has(key) || !membership.leaseValid()) {
        relays.delete(key);
        await relay.stop();
        logger.info({ relay: key }, 'relay stopped');
      }
    }
    if (!membership.leaseValid()) return;
    for (const key of wanted) {
      if (relays.has(key)) continue;
      const [partition, clusterId] = key.split('/') as [string, string];
      const binding = bindings.get(clusterId);
      const where = places.get(partition);
      if (!binding || !where) {
        if (!binding)
          logger.error({ kafkaCluster: clusterId }, 'hosts bound to an unconfigured Kafka cluster');
        continue;
      }
      const relay = new Relay({
        nc,
        jsm,
        member: config.instanceId,
        place: where,
        binding,
        hosts,
        mapping,
        assignments,
        bucketCount: config.bucketCount,
        metrics: relayMetrics,
        logger,
        batch: config.batch,
        relayed: (seconds) => stages.observe({ stage: 'relay', kafka: clusterId }, seconds),
      });
      await relay.start();
      relays.set(key, relay);
      logger.info({ relay: key }, 'relay started');
    }
    // Agents read their partition (they may not write the table): every registered
    // host of a relay gets one as soon as it is seen, before its first record.
    for (const key of relays.keys()) {
      const [partition, clusterId] = key.split('/') as [string, string];
      const where = places.get(partition);
      const ids = hostsOf.get(key);
      if (!where || !ids) continue;
      await assignments.ensure(clusterId, where, ids).catch((err: unknown) => {
        logger.warn({ relay: key, err }, 'Kafka partitions not assigned yet; next tick');
      });
    }
  };

  const tickMs = Math.max(100, Math.floor(config.heartbeatTtlMs / 10));
  let ticking = Promise.resolve();
  const timer = setInterval(() => {
    ticking = ticking
      .then(async () => {
        if (stopping) return;
        // One read of the table and one pass over the hosts per tick.
        const current = await readTable();
        const partitions = partitionsNow();
        const table = membership.isLeader()
          ? await lead(current, partitions.weights)
          : current.table;
        await follow(table, partitions);
        followed = table !== undefined;
      })
      .catch((err: unknown) => logger.warn({ err }, 'southbound tick failed'));
  }, tickMs);

  logger.info(
    { kafkaClusters: Object.keys(config.kafka), hosts: hosts.size() },
    'southbound module started',
  );
  let stopped: Promise<void> | undefined;
  return {
    instanceId: config.instanceId,
    partitions: () => [...owned],
    isLeader: membership.isLeader,
    relayMetrics,
    bindings: () =>
      Object.fromEntries(
        [...bindings].map(([id, b]) => [
          id,
          { ...b.metrics, state: b.state, connections: b.client.openConnections() },
        ]),
      ),
    registry,
    readiness: () => {
      const behind = relayLag().filter(([, n]) => n > config.readyMaxLag);
      const down = [...bindings].filter(([, b]) => b.state !== 'ready').map(([id]) => id);
      return {
        nats: connected() || 'not connected to NATS',
        placed: !membership.leaseValid()
          ? 'membership lease not valid'
          : followed || 'no southbound table followed yet',
        kafka: down.length === 0 || `Kafka cluster(s) not ready: ${down.join(', ')}`,
        caughtUp:
          behind.length === 0 ||
          `relays behind: ${behind.map(([l, n]) => `${l.partition}/${l.kafka} ${n}`).join(', ')}`,
      };
    },
    stop: () =>
      (stopped ??= (async () => {
        stopping = true;
        clearInterval(timer);
        await ticking;
        await Promise.all([...relays.values()].map((r) => r.stop()));
        relays.clear();
        await membership.stop();
        await Promise.all(Object.values(admins).map((a) => a.disconnect().catch(() => undefined)));
        await Promise.all([...bindings.values()].map((b) => b.stop()));
        await mapping.close();
        await hosts.stop();
        await nc.drain();
        logger.info({ ...relayMetrics }, 'southbound module stopped');
      })()),
  };
}
