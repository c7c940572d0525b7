/**
 * The fleet's Kafka intake: one consumer per Kafka cluster for the fleet's hosts
 * bound to it, over the topics of their places. A partition holds the records of
 * its hosts (one, or `hostsPerPartition` of them: infra/kafka/partitions.ts), each
 * keyed by its host's id, so each record goes to exactly the host it names.
 * Offsets are committed once per interval, off the fetch path.
 */
import { createHash } from 'node:crypto';
import type { Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import {
  awaitKafkaPartitions,
  createKafkaClient,
  hostPartitionsAssigner,
  readKafkaPartitions,
  type KafkaClient,
  type Logger,
} from '../../infra/index.js';
import {
  clusterKey,
  hostPartition,
  kafkaTopics,
  type KafkaPartitions,
} from '../../shared/index.js';

import type { HostAgent } from './hostAgent.js';

/** What the intake needs of the fleet's options. */
export interface KafkaIntakeOptions {
  /** Names the consumer groups ({@link fleetGroupId}). */
  fleetId: string;
  logger: Logger;
  partitionWaitMs?: number;
  stage?: (stage: 'apply' | 'deliver', binding: string, seconds: number) => void;
}

/** How often the fleet commits the offsets its agents have taken (off the fetch path). */
export const COMMIT_INTERVAL_MS = 1000;
/** How often the partitions' log starts are compared with what their hosts expect. */
const GAP_CHECK_MS = 5000;
/** Tries to start the consumer (retriable errors only: a topic not in metadata yet), ~30 s. */
const START_ATTEMPTS = 20;

/**
 * The fleet consumer's settings (the raw Kafka chain of test/bench/latency.bench.ts
 * consumes with the same). A fetch returns as soon as any record is there (minBytes
 * 1); the wait only bounds how often an idle consumer asks again (it was 50 ms: 20
 * empty fetches a second of hundreds of partitions each).
 */
export const FLEET_CONSUMER = {
  maxWaitTimeInMs: 1000,
  sessionTimeout: 10_000,
  heartbeatInterval: 1000,
  retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 2000 },
} as const;

/**
 * Many partitions (a host each) per fetch: 8 at a time left the demo's Kafka hosts
 * 15 s behind (p50), 64 about 9 s; the rest is the consumer's CPU on 2 cores.
 * Offsets are committed by the caller, once per COMMIT_INTERVAL_MS.
 */
export const FLEET_RUN = {
  partitionsConsumedConcurrently: 64,
  autoCommit: false,
  eachBatchAutoResolve: true,
} as const;

/**
 * The consumer group of a fleet's hosts on a Kafka cluster:
 * `alcor-fleet-<fleetId>-<cluster>-<digest of the host ids>`. Hosts sharing a
 * partition may run in different processes; each set of hosts commits its own
 * offsets, or one process's commit would move another past records it has not
 * read. The same hosts restarted find their group again.
 */
export function fleetGroupId(
  fleetId: string,
  clusterId: string,
  hostIds: readonly string[],
): string {
  const digest = createHash('sha256')
    .update([...hostIds].sort().join('\n'))
    .digest('hex')
    .slice(0, 12);
  return `alcor-fleet-${fleetId}-${clusterId}-${digest}`;
}

/** One consumer per Kafka cluster for the fleet's hosts on it. */
export async function startKafkaIntake(
  clusterId: string,
  brokers: string[],
  agents: HostAgent[],
  options: KafkaIntakeOptions,
): Promise<{ client: KafkaClient; stop: () => Promise<void> }> {
  const client = createKafkaClient(clusterId, brokers, {
    clientId: `alcor-fleet-${options.fleetId}`,
    logger: options.logger,
  });
  /** Per topic and partition: this fleet's hosts there, by id, and every host the partition holds. */
  interface Route {
    mine: Map<string, HostAgent>;
    holds: Set<string>;
  }
  const routes = new Map<string, Array<Route | undefined>>();
  /** Per topic, how to read its assignment again (as one of its own hosts). */
  const readers = new Map<string, () => Promise<KafkaPartitions>>();
  const byPlace = new Map<string, HostAgent[]>();
  for (const agent of agents) {
    const key = clusterKey(agent.record);
    const list = byPlace.get(key) ?? [];
    list.push(agent);
    byPlace.set(key, list);
  }
  for (const list of byPlace.values()) {
    const first = list[0]!;
    const place = first.record;
    // Read by one of the topic's own hosts: its user may read that one key.
    const read = () => readKafkaPartitions(first.jsm, clusterId, place);
    readers.set(kafkaTopics.cluster(place), read);
    const layout = await awaitKafkaPartitions(
      read,
      list.map((a) => a.record.hostId),
      options.partitionWaitMs ?? 120_000,
    );
    // Indexed by partition; partitions with none of this fleet's hosts are holes.
    const order: Array<Route | undefined> = [];
    for (const agent of list) {
      const partition = hostPartition(layout, agent.record.hostId);
      const route = (order[partition] ??= { mine: new Map(), holds: new Set() });
      route.mine.set(agent.record.hostId, agent);
    }
    layout.hosts.forEach((hostId) => order[hostPartition(layout, hostId)]?.holds.add(hostId));
    routes.set(kafkaTopics.cluster(place), order);
  }
  // Only the partitions of this fleet's hosts are fetched.
  const wanted: Record<string, number[]> = {};
  for (const [topic, order] of routes) {
    wanted[topic] = order.flatMap((route, partition) => (route ? [partition] : []));
  }
  /**
   * Each other host of a shared partition fetches the record too and skips it: a
   * neighbour's, or misrouted when keyed for a host the partition does not hold.
   * A key not held when the intake started may be a host assigned since: the
   * topic's assignment is read again first (once at a time per topic).
   */
  const refreshing = new Map<string, Promise<void>>();
  const skipped = (topic: string, route: Route, hostId: string, agent?: HostAgent): void => {
    const count = () => {
      for (const other of route.mine.values())
        if (other !== agent) other.stats[route.holds.has(hostId) ? 'neighbours' : 'misrouted'] += 1;
    };
    if (route.holds.has(hostId)) return count();
    let refresh = refreshing.get(topic);
    if (!refresh) {
      refresh = (readers.get(topic)?.() ?? Promise.resolve({ hosts: [] }))
        .then((layout) => {
          for (const h of layout.hosts) routes.get(topic)?.[hostPartition(layout, h)]?.holds.add(h);
        })
        .catch(() => undefined)
        .finally(() => refreshing.delete(topic));
      refreshing.set(topic, refresh);
    }
    void refresh.then(count);
  };
  const deliver = (topic: string, partition: number, message: KafkaMessage): void => {
    const route = routes.get(topic)?.[partition];
    if (!route || !message.value) return;
    const hostId = message.key?.toString() ?? '';
    const agent = route.mine.get(hostId);
    if (route.mine.size > (agent ? 1 : 0)) skipped(topic, route, hostId, agent);
    if (!agent) return;
    options.stage?.('deliver', agent.label, (Date.now() - Number(message.timestamp)) / 1000);
    agent.receive(message.value, `${partition}@${message.offset}`);
  };
  // Offsets to commit (the next to read, per topic and partition), committed once
  // per interval off the fetch path: kafkajs's own auto-commit makes every message
  // wait for the commit check, and a commit can take longer than a fetch.
  const toCommit = new Map<string, { topic: string; partition: number; offset: string }>();
  let committing: Promise<void> | undefined;
  const commit = (): Promise<void> => {
    if (committing || toCommit.size === 0) return committing ?? Promise.resolve();
    const offsets = [...toCommit.values()];
    toCommit.clear();
    const mine = consumer;
    committing = mine
      .commitOffsets(offsets)
      .catch((err: unknown) => {
        // Kept for the next round unless newer offsets came meanwhile; a consumer
        // restarted without them reads those messages again (agents ignore them).
        for (const o of offsets) {
          const key = `${o.topic}/${o.partition}`;
          if (!toCommit.has(key)) toCommit.set(key, o);
        }
        options.logger.debug({ kafkaCluster: clusterId, err }, 'offset commit failed');
      })
      .finally(() => (committing = undefined));
    return committing;
  };
  const commitTimer = setInterval(() => void commit(), COMMIT_INTERVAL_MS);
  commitTimer.unref();
  // The next offset each partition's hosts expect: a partition's offsets have no
  // holes (no compaction, no transactions), so a first offset beyond it means
  // records skipped unread — the consumer's position was reset past them
  // (retention deleted them while the hosts were away, or an operator moved the
  // group). Each of the partition's hosts takes every VPC again.
  const expected = new Map<string, bigint>();
  /** The host's next record is at `next`: those from what it expected up to there are lost to it. */
  const skippedTo = (topic: string, partition: number, next: bigint, why: string): void => {
    const key = `${topic}/${partition}`;
    const want = expected.get(key);
    if (want === undefined || next <= want) return;
    expected.set(key, next);
    for (const agent of routes.get(topic)?.[partition]?.mine.values() ?? []) {
      agent.stats.gaps += 1;
      options.logger.warn(
        {
          kafkaCluster: clusterId,
          hostId: agent.record.hostId,
          topic,
          partition,
          expected: String(want),
          next: String(next),
          why,
        },
        'Kafka records skipped unread: taking every VPC again',
      );
      void agent.resync();
    }
  };
  const noteOffsets = (topic: string, partition: number, first: string, last: string): void => {
    skippedTo(topic, partition, BigInt(first), 'the next batch starts past them');
    expected.set(`${topic}/${partition}`, BigInt(last) + 1n);
  };
  // Retention can delete records a host has not read while nothing new comes for
  // it (the consumer then resets to the log's start without a word): every
  // GAP_CHECK_MS, each partition's log start is compared with what its host expects.
  const admin = client.kafka.admin();
  let adminUp: Promise<void> | undefined;
  const checkLogStarts = async (): Promise<void> => {
    adminUp ??= admin.connect();
    await adminUp;
    for (const [topic, order] of routes) {
      for (const { partition, low } of await admin.fetchTopicOffsets(topic)) {
        if (!order[partition]) continue;
        // A host that has had no record yet expects the log's start at the first look.
        const key = `${topic}/${partition}`;
        if (!expected.has(key)) expected.set(key, BigInt(low));
        else skippedTo(topic, partition, BigInt(low), 'retention deleted them');
      }
    }
  };
  // One check at a time, bounded: after a partition the admin's sockets may be dead
  // without a word (dropped packets), and each request would wait out kafkajs's
  // request timeout (30 s) while hosts stay behind. A check that fails or takes
  // too long drops the admin's connections; the next one connects afresh.
  let checking = false;
  let checksFailed = 0;
  const gapTimer = setInterval(() => {
    if (checking) return;
    checking = true;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('log start check timed out')), GAP_CHECK_MS);
    });
    Promise.race([checkLogStarts(), late])
      .then(() => {
        if (checksFailed > 0)
          options.logger.info(
            { kafkaCluster: clusterId, failed: checksFailed },
            'log start checks work again',
          );
        checksFailed = 0;
      })
      .catch(async (err: unknown) => {
        adminUp = undefined;
        // The first of a run of failures is told; the rest would repeat it every 5 s.
        if (checksFailed++ === 0)
          options.logger.warn(
            { kafkaCluster: clusterId, err },
            'log start check failed: records skipped unread are not seen until one works',
          );
        await admin.disconnect().catch(() => undefined);
      })
      .finally(() => {
        clearTimeout(timer);
        checking = false;
      });
  }, GAP_CHECK_MS);
  gapTimer.unref();
  const eachBatch = ({ batch }: EachBatchPayload): Promise<void> => {
    if (batch.messages.length > 0)
      noteOffsets(batch.topic, batch.partition, batch.firstOffset()!, batch.lastOffset());
    for (const message of batch.messages) deliver(batch.topic, batch.partition, message);
    if (batch.messages.length > 0)
      toCommit.set(`${batch.topic}/${batch.partition}`, {
        topic: batch.topic,
        partition: batch.partition,
        offset: (BigInt(batch.lastOffset()) + 1n).toString(),
      });
    return Promise.resolve();
  };
  let stopped = false;
  let consumer!: Consumer;
  let restartTimer: NodeJS.Timeout | undefined;
  let crashes = 0;
  const begin = async (): Promise<void> => {
    consumer = client.kafka.consumer({
      groupId,
      partitionAssigners: [hostPartitionsAssigner(wanted)],
      ...FLEET_CONSUMER,
    });
    // kafkajs restarts a consumer only after a retriable error. One it gives up on
    // (no group coordinator while the cluster restarts) would leave these hosts
    // deaf for good: start a new consumer, backing off, until one runs.
    const mine = consumer;
    mine.on(mine.events.CRASH, ({ payload }) => {
      if (payload.restart || stopped || mine !== consumer) return;
      const delay = Math.min(10_000, 500 * 2 ** Math.min(crashes++, 5));
      options.logger.warn(
        { kafkaCluster: clusterId, err: payload.error, delayMs: delay },
        'Kafka consumer stopped by an error; starting a new one',
      );
      restartTimer = setTimeout(() => void again(), delay);
    });
    await mine.connect();
    await mine.subscribe({ topics: [...routes.keys()], fromBeginning: true });
    await mine.run({ ...FLEET_RUN, eachBatch });
    crashes = 0;
  };
  const again = async (): Promise<void> => {
    if (stopped) return;
    await consumer.disconnect().catch(() => undefined);
    try {
      await begin();
    } catch (err) {
      const delay = Math.min(10_000, 500 * 2 ** Math.min(crashes++, 5));
      options.logger.warn(
        { kafkaCluster: clusterId, err, delayMs: delay },
        'Kafka consumer not started; retrying',
      );
      if (!stopped) restartTimer = setTimeout(() => void again(), delay);
    }
  };
  // What each host expects first: the group's committed offset (where the consumer
  // resumes), or, with none, the log's start now — what came before is covered by
  // the agents' resync at start. Without this, a host that had no record yet when
  // its records were deleted would take the moved log start as its first look.
  const groupId = fleetGroupId(
    options.fleetId,
    clusterId,
    agents.map((a) => a.record.hostId),
  );
  try {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      (async () => {
        adminUp ??= admin.connect();
        await adminUp;
        const committed = new Map<string, bigint>();
        for (const t of await admin.fetchOffsets({ groupId, topics: [...routes.keys()] }))
          for (const p of t.partitions)
            if (BigInt(p.offset) >= 0n)
              committed.set(`${t.topic}/${p.partition}`, BigInt(p.offset));
        for (const [topic, order] of routes)
          for (const { partition, low } of await admin.fetchTopicOffsets(topic)) {
            const key = `${topic}/${partition}`;
            if (order[partition] && !expected.has(key))
              expected.set(key, committed.get(key) ?? BigInt(low));
          }
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), GAP_CHECK_MS);
      }),
    ]).finally(() => clearTimeout(timer));
  } catch (err) {
    // The first log start check sets it instead.
    adminUp = undefined;
    options.logger.warn(
      { kafkaCluster: clusterId, err },
      'offsets at start not read: a host with no record yet may miss a gap',
    );
  }
  // A topic created a moment ago may not be in every broker's metadata yet
  // ('This server does not host this topic-partition', retriable): try again a
  // while before failing the start.
  for (let attempt = 1; ; attempt++) {
    try {
      await begin();
      break;
    } catch (err) {
      if ((err as { retriable?: boolean }).retriable !== true || attempt >= START_ATTEMPTS)
        throw err;
      await consumer.disconnect().catch(() => undefined);
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
    }
  }
  return {
    client,
    stop: async () => {
      stopped = true;
      clearTimeout(restartTimer);
      clearInterval(commitTimer);
      clearInterval(gapTimer);
      await admin.disconnect().catch(() => undefined);
      await commit();
      await consumer.disconnect().catch(() => undefined);
    },
  };
}
