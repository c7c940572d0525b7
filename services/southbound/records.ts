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
  isMulticast,
  kafkaTopics,
  subjects,
  type HostMapping,
  type TopologyPlace,
} from '../../shared/index.js';
import type { KafkaRecord } from './kafkaBinding.js';
import type { RelayMetrics } from './relay.js';

export interface RecordsDeps {
  nc: NatsConnection;
  place: TopologyPlace;
  kafkaCluster: string;
  hosts: HostDirectory;
  mapping: HostMapping;
  assignments: PartitionAssignments;
  bucketCount: number;
  metrics: RelayMetrics;
  logger: Logger;
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
  const out: KafkaRecord[] = [];
  for (const host of southbound.recordHosts(candidates, { place, kafkaCluster }, (id) =>
    hosts.record(id),
  )) {
    out.push({
      topic: kafkaTopics.cluster(host),
      partition: await deps.assignments.partitionOf(kafkaCluster, host, host.hostId),
      message: {
        key: host.hostId,
        value: Buffer.from(m.data),
        headers: southbound.recordHeaders(message, host.hostId),
      },
    });
  }
  return out;
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
