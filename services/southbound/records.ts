/**
 * One relay's goal state → Kafka records: decoded once, its hosts chosen by the
 * pure fanout (actors/southbound/fanout.ts), each host's partition from the
 * assignments. A multicast's hosts come from the VPC↔host mapping in Redis; when
 * Redis lost it, the VPC's owner is asked to write it again.
 */
import type { JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { southbound } from '../../actors/index.js';
import type { HostDirectory, Logger, PartitionAssignments } from '../../infra/index.js';
import {
  bucketOf,
  decodeGoalState,
  splitGoalState,
  type GoalStateMessage,
  isMulticast,
  kafkaTopics,
  subjects,
  type HostMapping,
  type TopologyPlace,
} from '../../shared/index.js';
import type { KafkaRecord } from './kafkaBinding.js';

export interface RelayMetrics {
  relayed: number;
  records: number;
  invalid: number;
  mappingRebuilds: number;
  /** Consumers started again at their ack floor (deliveries lost on the way). */
  restarts: number;
  /** Records that carry a part of a goal state too large for one message (cut here or before). */
  parts: number;
  /** Goal states that could not be cut to the record limit (an op alone is over it): not relayed. */
  tooLarge: number;
  /** Relay receipts published (where Kafka put a goal state's records: stream RELAYS). */
  receipts: number;
}

/** What a relay and its records share: its partition, the lookups, the counters. */
export interface RelayScopeDeps {
  nc: NatsConnection;
  place: TopologyPlace;
  hosts: HostDirectory;
  mapping: HostMapping;
  assignments: PartitionAssignments;
  bucketCount: number;
  metrics: RelayMetrics;
  logger: Logger;
}

export interface RecordsDeps extends RelayScopeDeps {
  kafkaCluster: string;
  /** The most goal-state bytes one record may carry on this cluster. */
  maxRecordBytes: () => number;
  /** False once the relay stops: a missing mapping is not waited for any more. */
  running: () => boolean;
}

const encoder = new TextEncoder();
/** Tries to have a lost mapping written again before the multicast is given up. */
const MAPPING_TRIES = 20;

/** The records of one goal state; none for one that does not decode (counted, logged). */
export async function recordsOf(deps: RecordsDeps, m: JsMsg): Promise<KafkaRecord[]> {
  const { hosts, place, kafkaCluster, metrics, logger } = deps;
  const parsed = decodeGoalState(m.data);
  if (!parsed.ok) {
    metrics.invalid += 1;
    logger.warn({ subject: m.subject, seq: m.seq, ...parsed.error }, 'goal state not relayed');
    return [];
  }
  const message = parsed.value;
  const candidates = isMulticast(message.target)
    ? await vpcHosts(deps, message.vpcId)
    : [message.target];
  const to = southbound.recordHosts(candidates, { place, kafkaCluster }, (id) => hosts.record(id));
  if (to.length === 0) return [];
  const values = valuesOf(deps, m, message, to.length);
  const out: KafkaRecord[] = [];
  for (const host of to) {
    const topic = kafkaTopics.cluster(host);
    const partition = await deps.assignments.partitionOf(kafkaCluster, host, host.hostId);
    const headers = southbound.recordHeaders(message, host.hostId);
    // A host's parts go in order on its partition.
    for (const value of values)
      out.push({ topic, partition, message: { key: host.hostId, value, headers } });
  }
  // Parts cut here, or a part as GOALSTATES holds it (cut to NATS's max_payload).
  if (values.length > 1 || message.part) deps.metrics.parts += values.length * to.length;
  return out;
}

/**
 * The record values of one goal state: its bytes, or — over the cluster's record
 * limit — its parts (issue 22). One that cannot be cut that small (an op alone is
 * over it) is not relayed: logged with its VPC, size and hosts, and counted.
 */
function valuesOf(deps: RecordsDeps, m: JsMsg, message: GoalStateMessage, hosts: number): Buffer[] {
  const limit = deps.maxRecordBytes();
  if (m.data.length <= limit) return [Buffer.from(m.data)];
  const split = splitGoalState(message, limit);
  if (!split.ok) {
    deps.metrics.tooLarge += 1;
    deps.logger.error(
      {
        vpcId: message.vpcId,
        target: message.target,
        bytes: m.data.length,
        limit,
        hosts,
        ...split.error,
      },
      'goal state too large for a Kafka record even in parts; not relayed',
    );
    return [];
  }
  return split.value.map((part) => Buffer.from(JSON.stringify(part)));
}

/** The VPC's hosts from the mapping; asks the owner to write it when Redis lost it. */
async function vpcHosts(deps: RecordsDeps, vpcId: string): Promise<readonly string[]> {
  for (let attempt = 0; deps.running() && attempt < MAPPING_TRIES; attempt++) {
    const found = await deps.mapping.hostsOf(vpcId);
    if (found) return found.hosts;
    deps.metrics.mappingRebuilds += 1;
    try {
      await deps.nc.request(
        subjects.mappingRebuild(bucketOf(vpcId, deps.bucketCount)),
        encoder.encode(vpcId),
        { timeout: 5000 },
      );
    } catch {
      // No owner right now: wait and ask again.
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
    }
  }
  deps.logger.error({ vpcId }, 'no host mapping for the VPC; its multicast is not relayed');
  return [];
}
