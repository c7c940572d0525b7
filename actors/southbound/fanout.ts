/**
 * Which hosts one goal state becomes Kafka records for, on one relay (a topology
 * partition's hosts on one Kafka cluster, DESIGN §7) — pure:
 *   `gs…<host>` (unicast)  → that host, if it is in the partition and bound to the cluster;
 *   `gsm…<vpc>` (multicast) → each host that has the VPC (the mapping) and is.
 * A host the directory does not know, of another partition or binding, gets none.
 */
import {
  clusterKey,
  KAFKA_HEADERS,
  type GoalStateMessage,
  type HostRecord,
  type TopologyPlace,
} from '../../shared/index.js';

export interface RelayScope {
  place: TopologyPlace;
  kafkaCluster: string;
}

/** The hosts of `candidates` that get a record from this relay, in order. */
export function recordHosts(
  candidates: readonly string[],
  scope: RelayScope,
  record: (hostId: string) => HostRecord | undefined,
): HostRecord[] {
  const key = clusterKey(scope.place);
  const out: HostRecord[] = [];
  for (const hostId of candidates) {
    const host = record(hostId);
    if (!host || clusterKey(host) !== key) continue;
    if (host.binding.type !== 'kafka' || host.binding.cluster !== scope.kafkaCluster) continue;
    out.push(host);
  }
  return out;
}

/** A goal state's record headers for one host (DESIGN §4.6): route without decoding. */
export function recordHeaders(message: GoalStateMessage, hostId: string): Record<string, string> {
  return {
    [KAFKA_HEADERS.vpcId]: message.vpcId,
    [KAFKA_HEADERS.revision]: String(message.revision),
    [KAFKA_HEADERS.hostId]: hostId,
  };
}
