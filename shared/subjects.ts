/**
 * Wire names (DESIGN §4): every subject, stream and KV bucket name is written here
 * and nowhere else. Builders check their tokens so that a bad id can never widen a
 * subject (a `*` or `.` inside a token would).
 */
import { isId } from './ids.js';
import { InvalidIdError } from './errors.js';

export interface TopologyPlace {
  region: string;
  az: string;
  dc: string;
  cluster: string;
}

function token(value: string, field: string): string {
  if (!isId(value)) throw new InvalidIdError(field, value);
  return value;
}

function placePath(place: TopologyPlace): string {
  return [
    token(place.region, 'region'),
    token(place.az, 'az'),
    token(place.dc, 'dc'),
    token(place.cluster, 'cluster'),
  ].join('.');
}

export const streams = {
  intents: 'INTENTS',
  events: 'EVENTS',
  goalStates: 'GOALSTATES',
  status: 'STATUS',
  /** NCA acks, kept a while for tracing (an addition to DESIGN §4.5: docs/runbook.md). */
  acks: 'ACKS',
  /** Relay receipts: where the southbound put each goal state in Kafka (docs/southbound.md). */
  relays: 'RELAYS',
} as const;

export const kvBuckets = {
  hosts: 'hosts',
  controllers: 'controllers',
  southbound: 'southbound',
  placement: 'placement',
  vpcSnapshots: 'vpc-snapshots',
} as const;

export const subjects = {
  /** What clients publish; the server maps it to {@link subjects.intentMapped}. */
  intent: (vpcId: string) => `intent.${token(vpcId, 'vpcId')}`,
  intentMapped: (bucket: number, vpcId: string) => `intent.${bucket}.${token(vpcId, 'vpcId')}`,
  intentBucketFilter: (bucket: number) => `intent.${bucket}.*`,
  intentsAll: 'intent.*.*',
  /** The subject-mapping source and destination for the server's config. */
  intentMappingSource: 'intent.*',
  intentMappingDestination: (bucketCount: number) =>
    `intent.{{partition(${bucketCount},1)}}.{{wildcard(1)}}`,
  event: (vpcId: string) => `evt.${token(vpcId, 'vpcId')}`,
  eventsAll: 'evt.*',
  goalStateHost: (place: TopologyPlace, hostId: string) =>
    `gs.${placePath(place)}.${token(hostId, 'hostId')}`,
  goalStateMulticast: (place: TopologyPlace, vpcId: string) =>
    `gsm.${placePath(place)}.${token(vpcId, 'vpcId')}`,
  goalStatesAll: ['gs.>', 'gsm.>'] as const,
  /** A topology cluster's unicast and multicast goal states (a southbound partition). */
  goalStatesOfCluster: (place: TopologyPlace) => [
    `gs.${placePath(place)}.*`,
    `gsm.${placePath(place)}.*`,
  ],
  status: (vpcId: string) => `status.${token(vpcId, 'vpcId')}`,
  statusInvalid: 'status._invalid',
  statusAll: 'status.>',
  ack: (bucket: number, vpcId: string, hostId: string) =>
    `gsack.${bucket}.${token(vpcId, 'vpcId')}.${token(hostId, 'hostId')}`,
  ackBucket: (bucket: number) => `gsack.${bucket}.>`,
  acksAll: 'gsack.>',
  /** Every host's acks for one VPC. */
  acksOfVpc: (bucket: number, vpcId: string) => `gsack.${bucket}.${token(vpcId, 'vpcId')}.*`,
  /** An ack of one host for one VPC (any bucket: the bucket follows from the VPC). */
  acksOfHost: (hostId: string) => `gsack.*.*.${token(hostId, 'hostId')}`,
  /** A southbound relay's receipts for the goal states of one VPC it put in Kafka. */
  relayReceipt: (vpcId: string) => `relay.${token(vpcId, 'vpcId')}`,
  relayReceiptsAll: 'relay.*',
  resync: (hostId: string) => `alcor.resync.${token(hostId, 'hostId')}`,
  resyncAll: 'alcor.resync.*',
  /** Internal: a southbound module asks a VPC's owner to write its lost host mapping. */
  mappingRebuild: (bucket: number) => `alcor.ctl.mapping.${bucket}`,
  applyIntents: 'alcor.intents.apply',
  /**
   * Debugging (the convergence oracle, `alcor check`): request a host's agent for
   * what it holds, as digests. Internal: agents answer it, only tools ask.
   */
  ncaState: (hostId: string) => `alcor.nca.state.${token(hostId, 'hostId')}`,
  ncaStateAll: 'alcor.nca.state.*',
  /** A host's NCA inbox prefix: replies to it (resync) arrive under it, and only it may read them. */
  hostInbox: (hostId: string) => `_INBOX.${token(hostId, 'hostId')}`,
} as const;

/** Queue group of the controllers serving `alcor.intents.apply`. */
export const APPLY_QUEUE_GROUP = 'alcor-controllers';

/** `Nats-Msg-Id` of a goal-state message (DESIGN §4.4). */
export function goalStateMsgId(vpcId: string, revision: number, target: string): string {
  return `${vpcId}:${revision}:${target}`;
}

/** `Nats-Msg-Id` of an intent's decision status (one per intent and outcome). */
export function statusMsgId(intentId: string, outcome: string): string {
  return `${intentId}:${outcome}`;
}

/**
 * Redis keys of the VPC↔host mapping (DESIGN §4.7). The hash tag keeps each side
 * in one slot, so a Redis Cluster spreads the table. The revision keys guard the
 * sets: a write older than the last one applied is skipped.
 */
export const redisKeys = {
  vpcHosts: (vpcId: string) => `{vpc:${token(vpcId, 'vpcId')}}:hosts`,
  /** The VPC revision the hosts set is at (absent: never written, or lost). */
  vpcRevision: (vpcId: string) => `{vpc:${token(vpcId, 'vpcId')}}:rev`,
  hostVpcs: (hostId: string) => `{host:${token(hostId, 'hostId')}}:vpcs`,
  /** Per VPC, the revision of the last change of the host's membership in it. */
  hostVpcRevisions: (hostId: string) => `{host:${token(hostId, 'hostId')}}:revs`,
} as const;

/** Kafka topics (DESIGN §4.6): one per host group (a topology cluster), keyed by hostId. */
export const kafkaTopics = {
  cluster: (place: TopologyPlace) => `alcor.gs.${placePath(place)}`,
} as const;

/** Headers of a Kafka goal-state record (DESIGN §4.6). */
export const KAFKA_HEADERS = { vpcId: 'vpcId', revision: 'revision', hostId: 'hostId' } as const;

/**
 * Southbound keys in KV `placement` (kept without a TTL: KV `southbound` holds only
 * the modules' heartbeats, which expire).
 */
export const southboundKeys = {
  /** The module placement table (partition → module). */
  table: 'southbound.table',
  /** A topic's host → partition assignment on one Kafka cluster (a partition per host). */
  kafkaPartitions: (kafkaCluster: string, topic: string) =>
    `kafka.${token(kafkaCluster, 'kafkaCluster')}.${topic}`,
  kafkaPartitionsAll: 'kafka.>',
} as const;
