/**
 * The hosts of a group on partitions of its group's topic (DESIGN §4.6; the
 * evaluation, docs/evaluation.md, measured the layouts): topic
 * `alcor.gs.<region>.<az>.<dc>.<cluster>` on the host's Kafka cluster, the hosts in
 * order of assignment, `hostsPerPartition` of them to a partition (host i on
 * partition ⌊i / hostsPerPartition⌋; each takes the records keyed by its id). KV
 * `placement` key `kafka.<kafkaCluster>.<topic>` = `{hosts: [hostId, …],
 * hostsPerPartition}`. The list only grows (compare-and-set) and the grouping is
 * fixed by the first writer, so a host keeps its partition; the topic grows with
 * it. Southbound modules write it (and size the topics); agents only read it, each
 * its own topic's key (docs/security.md).
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { AssignerProtocol, type Admin, type PartitionAssigner } from 'kafkajs';
import { z } from 'zod';
import { compareAndSet } from '../nats/placementStore.js';
import {
  KafkaPartitionsSchema,
  hostPartition,
  kafkaTopics,
  partitionsNeeded,
  type KafkaPartitions,
  kvBuckets,
  southboundKeys,
  type TopologyPlace,
} from '../../shared/index.js';

const AssignmentSchema = KafkaPartitionsSchema;
const WantedSchema = z.record(z.string(), z.array(z.number().int().min(0)));

/** The group protocol name of {@link hostPartitionsAssigner}. */
export const HOST_PARTITIONS_PROTOCOL = 'AlcorHostPartitions';

/**
 * A consumer-group assigner that gives each member exactly the partitions it
 * asks for (its hosts' partitions, carried in its join metadata), so an agent
 * fetches only its own records — kafkajs has no manual `assign`. Members of one
 * group must ask for disjoint partitions (each host runs one agent).
 */
export function hostPartitionsAssigner(wanted: Record<string, number[]>): PartitionAssigner {
  return () => ({
    name: HOST_PARTITIONS_PROTOCOL,
    version: 1,
    protocol: ({ topics }) => ({
      name: HOST_PARTITIONS_PROTOCOL,
      metadata: AssignerProtocol.MemberMetadata.encode({
        version: 1,
        topics,
        userData: Buffer.from(JSON.stringify(wanted)),
      }),
    }),
    assign: ({ members }) =>
      Promise.resolve(
        members.map((member) => {
          const meta = AssignerProtocol.MemberMetadata.decode(member.memberMetadata);
          let asked: Record<string, number[]> = {};
          try {
            const parsed = WantedSchema.safeParse(JSON.parse(meta?.userData.toString() ?? '{}'));
            if (parsed.success) asked = parsed.data;
          } catch {
            // A member that sent no readable wish gets nothing.
          }
          return {
            memberId: member.memberId,
            memberAssignment: AssignerProtocol.MemberAssignment.encode({
              version: 1,
              assignment: asked,
              userData: Buffer.alloc(0),
            }),
          };
        }),
      ),
  });
}

export interface PartitionAssignments {
  /** Every host given has a partition in its topic on `kafkaCluster`; returns the topic's assignment. */
  ensure(
    kafkaCluster: string,
    place: TopologyPlace,
    hostIds: readonly string[],
  ): Promise<KafkaPartitions>;
  /** The partition of a host (assigning one if new). */
  partitionOf(kafkaCluster: string, place: TopologyPlace, hostId: string): Promise<number>;
  /** The topic's assignment as stored, without assigning. */
  read(kafkaCluster: string, topic: string): Promise<KafkaPartitions>;
}

export interface PartitionAssignmentOptions {
  /**
   * Hosts per partition for a topic assigned first by this module (default 1); a
   * topic already assigned keeps its own (a host never moves partition).
   */
  hostsPerPartition?: number;
}

/**
 * The topic's partition count. A topic another client has just created is
 * listed before its metadata is served (UNKNOWN_TOPIC_OR_PARTITION, no leader
 * yet): wait for it, up to about 15 s.
 */
async function partitionCount(admin: Admin, topic: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      return meta.topics[0]?.partitions.length ?? 0;
    } catch (err) {
      if (attempt >= 30 || (err as { retriable?: boolean }).retriable !== true) throw err;
      await new Promise((r) => setTimeout(r, Math.min(1000, 100 * (attempt + 1))));
    }
  }
}

export async function createPartitionAssignments(
  nc: NatsConnection,
  admins: Record<string, Admin>,
  options: PartitionAssignmentOptions = {},
): Promise<PartitionAssignments> {
  const kv: KV = await new Kvm(nc).open(kvBuckets.placement);
  const grouping = options.hostsPerPartition ?? 1;
  const cache = new Map<string, KafkaPartitions>();
  /** Partitions known to exist per `<kafkaCluster>/<topic>`. */
  const sized = new Map<string, number>();

  const read = async (kafkaCluster: string, topic: string) => {
    const entry = await kv.get(southboundKeys.kafkaPartitions(kafkaCluster, topic));
    if (!entry || entry.operation !== 'PUT' || entry.length === 0)
      return { layout: undefined, revision: 0 };
    const parsed = AssignmentSchema.safeParse(entry.json<unknown>());
    if (!parsed.success) throw new Error(`KV placement ${entry.key} is not a partition assignment`);
    return { layout: parsed.data, revision: entry.revision };
  };

  const sizeTopic = async (kafkaCluster: string, topic: string, count: number) => {
    const key = `${kafkaCluster}/${topic}`;
    if ((sized.get(key) ?? 0) >= count) return;
    const admin = admins[kafkaCluster];
    if (!admin) throw new Error(`no Kafka cluster ${kafkaCluster} configured`);
    const topics = await admin.listTopics();
    if (!topics.includes(topic)) {
      await admin
        .createTopics({
          topics: [{ topic, numPartitions: count, replicationFactor: -1 }],
          waitForLeaders: true,
        })
        .catch((err: unknown) => {
          // Another client created it first, or its leaders are not elected yet
          // (partitionCount below waits for them).
          const e = err as { message?: string; retriable?: boolean };
          if (!/already exists/i.test(String(e.message)) && e.retriable !== true) throw err;
        });
    }
    const have = await partitionCount(admin, topic);
    if (have < count) {
      await admin
        .createPartitions({ topicPartitions: [{ topic, count }], validateOnly: false })
        .catch((err: unknown) => {
          // Another module grew it first.
          if (!/partitions|INVALID_PARTITIONS/i.test(String((err as Error).message))) throw err;
        });
    }
    sized.set(key, count);
  };

  const ensure: PartitionAssignments['ensure'] = async (kafkaCluster, place, hostIds) => {
    const topic = kafkaTopics.cluster(place);
    const key = `${kafkaCluster}/${topic}`;
    const known = cache.get(key);
    if (known && hostIds.every((h) => known.hosts.includes(h))) {
      await sizeTopic(kafkaCluster, topic, partitionsNeeded(known));
      return known;
    }
    for (;;) {
      const { layout, revision } = await read(kafkaCluster, topic);
      const hosts = layout?.hosts ?? [];
      const missing = [...new Set(hostIds)].filter((h) => !hosts.includes(h)).sort();
      if (layout && missing.length === 0) {
        cache.set(key, layout);
        await sizeTopic(kafkaCluster, topic, partitionsNeeded(layout));
        return layout;
      }
      const next: KafkaPartitions = {
        hosts: [...hosts, ...missing],
        hostsPerPartition: layout ? (layout.hostsPerPartition ?? 1) : grouping,
      };
      const k = southboundKeys.kafkaPartitions(kafkaCluster, topic);
      if (!(await compareAndSet(kv, k, next, revision))) continue;
      cache.set(key, next);
      await sizeTopic(kafkaCluster, topic, partitionsNeeded(next));
      return next;
    }
  };

  return {
    ensure,
    partitionOf: async (kafkaCluster, place, hostId) =>
      hostPartition(await ensure(kafkaCluster, place, [hostId]), hostId),
    read: async (kafkaCluster, topic) =>
      (await read(kafkaCluster, topic)).layout ?? { hosts: [], hostsPerPartition: grouping },
  };
}

/**
 * A topic's assignment as stored, read with a direct get of its one key — what an
 * agent's own NATS user may do (its account imports that get); no hosts when no
 * host of the topic has a partition yet.
 */
export async function readKafkaPartitions(
  jsm: JetStreamManager,
  kafkaCluster: string,
  place: TopologyPlace,
): Promise<KafkaPartitions> {
  const key = southboundKeys.kafkaPartitions(kafkaCluster, kafkaTopics.cluster(place));
  const msg = await jsm.direct.getMessage(`KV_${kvBuckets.placement}`, {
    last_by_subj: `$KV.${kvBuckets.placement}.${key}`,
  });
  if (!msg || msg.data.length === 0 || msg.header?.get('KV-Operation')) return { hosts: [] };
  const parsed = AssignmentSchema.safeParse(msg.json<unknown>());
  if (!parsed.success) throw new Error(`KV placement ${key} is not a partition assignment`);
  return parsed.data;
}

/**
 * Waits until every one of `hostIds` has a partition in its topic (the southbound
 * module that relays the topic assigns them as hosts register), polling with
 * backoff; returns the topic's assignment.
 */
export async function awaitKafkaPartitions(
  read: () => Promise<KafkaPartitions>,
  hostIds: readonly string[],
  timeoutMs: number,
): Promise<KafkaPartitions> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const layout = await read().catch((): KafkaPartitions => ({ hosts: [] }));
    const missing = hostIds.filter((h) => !layout.hosts.includes(h));
    if (missing.length === 0) return layout;
    if (Date.now() >= deadline)
      throw new Error(
        `no Kafka partition assigned to ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''} within ${timeoutMs} ms: is a southbound module running for their cluster?`,
      );
    await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** Math.min(attempt, 5))));
  }
}
