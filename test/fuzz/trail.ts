/**
 * Where a divergent host's goal state got lost: for its first stale resource,
 * the message of the VPC at the revision the log says it must have is looked for
 * in GOALSTATES (was it published?), in the host's Kafka partition (was it
 * relayed?), and against the fleets' committed offsets (was it consumed?).
 * Read only when the oracle is not clean; it changes nothing.
 */
import {
  createKafkaClient,
  createPartitionAssignments,
  hostPartitionsAssigner,
  kafkaBrokersFromEnv,
  kafkaSaslFromEnv,
  readStreamRange,
  type Logger,
} from '../../infra/index.js';
import {
  KAFKA_HEADERS,
  decodeGoalState,
  hostPartition,
  kafkaTopics,
  placeOf,
  streams,
  subjects,
  type HostRecord,
} from '../../shared/index.js';
import type { FaultSystem } from '../fault/system.js';
import type { CheckReport } from '../../services/cli/check.js';

export interface Trail {
  key: string;
  expectedRev: number;
  actualRev: number;
  /** GOALSTATES messages of the VPC that carry the key at expectedRev (unicast to the host, or multicast). */
  published: string[];
  kafka?: {
    topic: string;
    partition: number;
    high: number;
    /** Committed offset of each fleet group that has one for the partition. */
    committed: Record<string, number>;
    /** Offsets of the partition's records of the VPC at expectedRev. */
    found: number[];
    /** Records of the VPC in the partition, and their highest revision. */
    vpcRecords: number;
    maxRevision: number;
  };
}

const carriesKey = (data: Uint8Array, key: string, rev: number): number | undefined => {
  const parsed = decodeGoalState(data);
  if (!parsed.ok) return undefined;
  return parsed.value.ops.some((op) => op.key === key && op.rev === rev)
    ? parsed.value.revision
    : undefined;
};

export async function trailOf(
  system: FaultSystem,
  d: CheckReport['diverged'][number],
  log: Logger,
): Promise<Trail | undefined> {
  const stale = d.different[0];
  if (!stale) return undefined;
  const host = system.hosts.find((h) => h.hostId === d.hostId);
  if (!host) return undefined;
  const place = placeOf(host);
  const trail: Trail = { ...stale, published: [] };
  for await (const m of readStreamRange(system.nc, streams.goalStates, {
    filter: [
      subjects.goalStateHost(place, host.hostId),
      subjects.goalStateMulticast(place, d.vpcId),
    ],
  })) {
    const revision = carriesKey(m.data, stale.key, stale.expectedRev);
    if (revision !== undefined) trail.published.push(`${m.subject}#${m.seq} r${revision}`);
  }
  if (host.binding.type === 'kafka')
    trail.kafka = await kafkaTrail(system, host, host.binding.cluster, d.vpcId, stale, log);
  return trail;
}

async function kafkaTrail(
  system: FaultSystem,
  host: HostRecord,
  cluster: string,
  vpcId: string,
  stale: { key: string; expectedRev: number },
  log: Logger,
): Promise<Trail['kafka']> {
  const env = system.servers.env();
  const brokers = kafkaBrokersFromEnv(env)[cluster] ?? [];
  const client = createKafkaClient(cluster, brokers, {
    clientId: 'alcor-fuzz-trail',
    logger: log,
    sasl: kafkaSaslFromEnv(cluster, env) ?? null,
  });
  const admin = client.kafka.admin();
  await admin.connect();
  try {
    const topic = kafkaTopics.cluster(host);
    const assignments = await createPartitionAssignments(system.nc, { [cluster]: admin });
    const partition = hostPartition(await assignments.read(cluster, topic), host.hostId);
    const high = Number(
      (await admin.fetchTopicOffsets(topic)).find((p) => p.partition === partition)?.high ?? -1,
    );
    const committed: Record<string, number> = {};
    const groups = (await admin.listGroups()).groups.filter((g) =>
      g.groupId.startsWith('alcor-fleet-'),
    );
    for (const g of groups) {
      const offsets = await admin.fetchOffsets({ groupId: g.groupId, topics: [topic] });
      const mine = offsets[0]?.partitions.find((p) => p.partition === partition);
      if (mine && Number(mine.offset) >= 0) committed[g.groupId] = Number(mine.offset);
    }
    const out = {
      topic,
      partition,
      high,
      committed,
      found: [] as number[],
      vpcRecords: 0,
      maxRevision: 0,
    };
    if (partition < 0 || high <= 0) return out;
    // The partition read whole by a group of its own (kafkajs has no manual assign).
    const consumer = client.kafka.consumer({
      groupId: `alcor-fuzz-trail-${Date.now()}`,
      partitionAssigners: [hostPartitionsAssigner({ [topic]: [partition] })],
      maxWaitTimeInMs: 100,
    });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => resolve(), 60_000);
        consumer
          .run({
            eachMessage: ({ partition: p, message }) => {
              if (p !== partition) return Promise.resolve();
              const vpc = message.headers?.[KAFKA_HEADERS.vpcId]?.toString();
              if (vpc === vpcId) {
                out.vpcRecords += 1;
                const revision = Number(message.headers?.[KAFKA_HEADERS.revision]?.toString());
                out.maxRevision = Math.max(out.maxRevision, revision);
                if (
                  message.value &&
                  carriesKey(message.value, stale.key, stale.expectedRev) !== undefined
                )
                  out.found.push(Number(message.offset));
              }
              if (Number(message.offset) >= high - 1) {
                clearTimeout(timer);
                resolve();
              }
              return Promise.resolve();
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect().catch(() => undefined);
    }
    return out;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
