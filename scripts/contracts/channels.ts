/**
 * Every subject, Kafka topic and KV key of the wire, once: who publishes, who
 * subscribes, what it carries and where it is kept. docs/asyncapi.yaml and the
 * tables of docs/contracts.md are both made from this list; the unit test checks
 * that every builder of shared/subjects.ts builds the address of a channel here.
 */
import { APPLY_QUEUE_GROUP, KAFKA_HEADERS, kvBuckets, streams } from '../../shared/index.js';
import { INTENT_ID_HEADER, WRITER_HEADER } from '../../infra/nats/decisionPublisher.js';
import { WAIT_HEADERS } from '../../services/controller/api/statusWatch.js';

export interface Header {
  name: string;
  description: string;
}

/** A message: a schema file of docs/schemas, or an inline schema (internal channels). */
export interface Message {
  name: string;
  title: string;
  schema: string | { [key: string]: unknown };
  contentType?: string;
  headers?: Header[];
}

export interface Channel {
  id: string;
  /** The subject (topic, KV key) with `{parameters}`; KV keys as `$KV.<bucket>.<key>`. */
  address: string;
  server: 'nats' | 'kafka';
  summary: string;
  description?: string;
  /** Keys of `subjects` in shared/subjects.ts that build this address or filter on it. */
  builders: string[];
  /** The stream or KV bucket that keeps it. */
  kept?: { stream: string } | { kv: string };
  publishers: string;
  subscribers: string;
  messages: Message[];
  /** Request/reply: what the responders answer (on the requester's reply subject). */
  reply?: Message & { responders: string };
  /** Whether the system (controllers, southbound modules) sends or receives it. */
  action: 'send' | 'receive';
  /** NATS queue group of the receivers. */
  queue?: string;
  internal?: boolean;
}

export const PARAMETERS: Record<string, string> = {
  vpcId: 'a VPC id (^[A-Za-z0-9_-]{1,64}$)',
  hostId: 'a host id (^[A-Za-z0-9_-]{1,64}$)',
  bucket:
    "the VPC's bucket: FNV-1a 32 of the vpcId modulo the bucket count (ALCOR_BUCKET_COUNT, 1,024)",
  region: "the host's region in the topology",
  az: "the host's availability zone",
  dc: "the host's data centre",
  cluster: "the host's cluster (a host group)",
  instanceId: 'a controller or southbound instance id (ALCOR_INSTANCE_ID)',
  kafkaCluster: 'a Kafka cluster id (KAFKA_CLUSTERS)',
  snapshotKey: '<vpcId> for the manifest, <vpcId>.<revision>.<n> for a chunk',
};

const msgId = (description: string): Header => ({ name: 'Nats-Msg-Id', description });
const writer: Header = {
  name: WRITER_HEADER,
  description: 'the controller run that wrote it, `<instance>/<incarnation>` (fencing checks)',
};

const schema = (name: string, title: string, headers?: Header[]): Message => ({
  name,
  title,
  schema: name,
  ...(headers ? { headers } : {}),
});

const STATUS_HEADERS: Header[] = [
  msgId(
    '`<intentId>:<outcome>`; refusals before any VPC recorded them: `<intentId>:refused-<seq>` (intake), `<intentId>:invalid-<code>` (sync API)',
  ),
  { name: INTENT_ID_HEADER, description: 'the intent the status is about (filter STATUS by it)' },
  writer,
];

const GOAL_STATE_HEADERS: Header[] = [
  msgId('`<vpcId>:<revision>:<target>`; a part: `…~<first>`; a resync full: `…:resync:<nonce>`'),
  writer,
];

export const CHANNELS: Channel[] = [
  {
    id: 'intent',
    address: 'intent.{vpcId}',
    server: 'nats',
    summary: 'Intents in (the asynchronous way).',
    description:
      'Publish (plain NATS or JetStream) one intent per message, at most 64 KiB. The server maps the subject to `intent.<bucket>.<vpcId>` and stream INTENTS keeps it; the decision appears on `status.<vpcId>`.',
    builders: ['intent', 'intentMappingSource'],
    kept: { stream: streams.intents },
    publishers: 'clients (the `client` user); the sync API, for each item of a request',
    subscribers:
      "nobody directly: the server's subject mapping stores it as `intent.<bucket>.<vpcId>`",
    messages: [
      schema('intent', 'Intent', [
        msgId(
          "the intent's id: INTENTS drops a repeat within its duplicate window (the VPC's owner answers a repeat like the first in any case)",
        ),
      ]),
    ],
    action: 'receive',
  },
  {
    id: 'intentStored',
    address: 'intent.{bucket}.{vpcId}',
    server: 'nats',
    summary: 'Intents as stored in INTENTS, by bucket.',
    description:
      "What the subject mapping makes of `intent.<vpcId>`. Not for clients: one published here with another bucket than the VPC's is refused (wrong_bucket).",
    builders: ['intentMapped', 'intentBucketFilter', 'intentsAll', 'intentMappingDestination'],
    kept: { stream: streams.intents },
    publishers: 'nats-server (the mapping of `intent.<vpcId>`)',
    subscribers:
      "the bucket's owner: one durable consumer per controller run, filtered to its buckets",
    messages: [schema('intent', 'Intent')],
    action: 'receive',
  },
  {
    id: 'apply',
    address: 'alcor.intents.apply',
    server: 'nats',
    summary: 'Intents in (the synchronous way): request and reply.',
    description:
      'A request holds one intent or an array of up to 1,000 (8 MiB). Each item that names a usable VPC id is published to `intent.<vpcId>` as sent, valid or not, and answered by its decision; an item without one is answered at once and noted on `status._invalid`.',
    builders: ['applyIntents'],
    publishers: 'clients (request)',
    subscribers: `every controller, queue group \`${APPLY_QUEUE_GROUP}\``,
    messages: [
      schema('apply-request', 'Sync API request', [
        {
          name: WAIT_HEADERS.wait,
          description:
            '`programmed`: also wait for each accepted intent to be programmed (reply field `programmed`)',
        },
        {
          name: WAIT_HEADERS.waitMs,
          description: `with ${WAIT_HEADERS.wait}: how long to wait, 1 to 3600000 ms (default ALCOR_PROGRAMMED_DEADLINE_MS + 2 s)`,
        },
      ]),
    ],
    reply: {
      ...schema('apply-reply', 'Sync API reply'),
      responders: 'the controller that took the request',
    },
    action: 'receive',
    queue: APPLY_QUEUE_GROUP,
  },
  {
    id: 'events',
    address: 'evt.{vpcId}',
    server: 'nats',
    summary: "The VPC's facts: one message per commit (or group of commits).",
    description:
      "Every intent stored in INTENTS leaves exactly one trace here: its accepted events or one IntentRejected. The VPC's revision is the EVENTS sequence of its last message.",
    builders: ['event', 'eventsAll'],
    kept: { stream: streams.events },
    publishers: "the VPC's owner, by compare-and-set",
    subscribers:
      'a new owner (hydration); `alcor vpc show`, `replay`, `trace`, `check`; nobody subscribes live',
    messages: [
      schema('event-message', 'EVENTS message', [
        msgId(
          'one commit: `<vpcId>:<intentId>`; a group: `<vpcId>:group:<first>-<last>` (INTENTS sequences)',
        ),
        {
          name: 'Nats-Expected-Last-Subject-Sequence',
          description: "the VPC's revision the owner decided on (the compare-and-set)",
        },
        writer,
      ]),
    ],
    action: 'send',
  },
  {
    id: 'goalStateHost',
    address: 'gs.{region}.{az}.{dc}.{cluster}.{hostId}',
    server: 'nats',
    summary: 'Unicast goal states: what only this host needs.',
    builders: ['goalStateHost', 'goalStatesAll', 'goalStatesOfCluster'],
    kept: { stream: streams.goalStates },
    publishers: "the VPC's owner (decisions, and full states answering a resync)",
    subscribers:
      "the host's agent (JetStream binding); the southbound relays of the host's cluster (Kafka-bound hosts)",
    messages: [schema('goal-state', 'Goal state', GOAL_STATE_HEADERS)],
    action: 'send',
  },
  {
    id: 'goalStateMulticast',
    address: 'gsm.{region}.{az}.{dc}.{cluster}.{vpcId}',
    server: 'nats',
    summary: 'Multicast goal states: what every host of the VPC in this cluster needs.',
    builders: ['goalStateMulticast', 'goalStatesAll', 'goalStatesOfCluster'],
    kept: { stream: streams.goalStates },
    publishers: "the VPC's owner, one message per cluster that hosts the VPC",
    subscribers:
      'the agents of the cluster that hold the VPC (JetStream binding); the relays of the cluster',
    messages: [schema('goal-state', 'Goal state', GOAL_STATE_HEADERS)],
    action: 'send',
  },
  {
    id: 'kafkaGoalStates',
    address: 'alcor.gs.{region}.{az}.{dc}.{cluster}',
    server: 'kafka',
    summary:
      'Goal states on Kafka: one topic per topology cluster, hostsPerPartition hosts to a partition.',
    description:
      "Record key = hostId. A host's partition is ⌊its index / hostsPerPartition⌋ in KV placement key `kafka.<kafkaCluster>.<topic>` (default 8 hosts to a partition; 1 = a partition per host); an agent takes the records keyed with its id. A gsm message becomes one record per Kafka-bound host of the cluster that has the VPC. Parts are cut again to the brokers' message.max.bytes.",
    builders: [],
    publishers: 'the southbound module that works the cluster (one producer per Kafka cluster)',
    subscribers:
      'Kafka-bound agents, each reading its partition and taking the records keyed for it',
    messages: [
      schema('goal-state', 'Goal state', [
        { name: KAFKA_HEADERS.vpcId, description: 'the VPC' },
        { name: KAFKA_HEADERS.revision, description: "the message's revision (decimal text)" },
        { name: KAFKA_HEADERS.hostId, description: 'the host the record is for' },
      ]),
    ],
    action: 'send',
  },
  {
    id: 'status',
    address: 'status.{vpcId}',
    server: 'nats',
    summary: "Each intent's decision, then its final outcome.",
    description:
      '`accepted` or `rejected` once decided; then, for an accepted intent, `programmed` when every host it reached applied it, or `incomplete` at the deadline (ALCOR_PROGRAMMED_DEADLINE_MS) or when some failed.',
    builders: ['status', 'statusAll'],
    kept: { stream: streams.status },
    publishers: "the VPC's owner; the intake (wrong_bucket)",
    subscribers: 'clients (the `client` user may); the sync API; `alcor status`, `watch`, `trace`',
    messages: [schema('status', 'Status', STATUS_HEADERS)],
    action: 'send',
  },
  {
    id: 'statusInvalid',
    address: 'status._invalid',
    server: 'nats',
    summary: 'Refusals of intents that name no usable VPC id.',
    builders: ['statusInvalid', 'statusAll'],
    kept: { stream: streams.status },
    publishers:
      'the intake (a subject whose VPC token is not an id); the sync API (an item without a usable vpcId)',
    subscribers: 'clients, operators',
    messages: [schema('status', 'Status', STATUS_HEADERS)],
    action: 'send',
  },
  {
    id: 'ack',
    address: 'gsack.{bucket}.{vpcId}.{hostId}',
    server: 'nats',
    summary: "A host's ack of a goal state.",
    description:
      'Plain NATS publishes; stream ACKS keeps them a while (1 hour by default) for tracing and for a new owner of the bucket.',
    builders: ['ack', 'ackBucket', 'acksAll', 'acksOfVpc', 'acksOfHost'],
    kept: { stream: streams.acks },
    publishers: "every host's agent, once per goal state applied (or failed)",
    subscribers: "the VPC's owner (per bucket); `alcor trace`, `replay host`",
    messages: [schema('goal-state-ack', 'Goal-state ack')],
    action: 'receive',
  },
  {
    id: 'relayReceipt',
    address: 'relay.{vpcId}',
    server: 'nats',
    summary: 'Where a southbound relay put a goal state of the VPC in Kafka.',
    description:
      'Plain NATS publishes, once Kafka acknowledged the records of a goal state: which module, which Kafka cluster, and per host the topic, partition and offset. Stream RELAYS keeps them a while (1 hour by default) for `alcor trace`. A goal state of more than 500 records has them over several receipts of the same `seq`.',
    builders: ['relayReceipt', 'relayReceiptsAll'],
    kept: { stream: streams.relays },
    publishers: 'southbound modules (each relay, after Kafka acknowledged)',
    subscribers: '`alcor trace`',
    messages: [schema('relay-receipt', 'Relay receipt')],
    action: 'send',
  },
  {
    id: 'resync',
    address: 'alcor.resync.{hostId}',
    server: 'nats',
    summary: 'A host asks for full states of its VPCs: request, several replies.',
    description:
      "Each controller answers for the VPCs of the host it owns: it publishes their full states on the host's gs subject, then replies with what it sent and which buckets it covers.",
    builders: ['resync', 'resyncAll'],
    publishers: "the host's agent: on start, after a reconnect, on a gap or a failed apply",
    subscribers: 'every controller (no queue group: each answers for its own buckets)',
    messages: [schema('resync-request', 'Resync request')],
    reply: {
      ...schema('resync-reply', 'Resync reply'),
      responders: 'each controller that owns some of the asked buckets',
    },
    action: 'receive',
  },
  {
    id: 'hostInbox',
    address: '_INBOX.{hostId}.>',
    server: 'nats',
    summary:
      "A host's reply subjects: replies to its requests (resync) arrive under its inbox prefix.",
    builders: ['hostInbox'],
    publishers: 'controllers (replies)',
    subscribers: "the host's agent only",
    messages: [schema('resync-reply', 'Resync reply')],
    action: 'send',
  },
  {
    id: 'ncaState',
    address: 'alcor.nca.state.{hostId}',
    server: 'nats',
    summary: "Debugging: what a host's agent holds, as digests (the convergence oracle).",
    builders: ['ncaState', 'ncaStateAll'],
    publishers: 'tools: `alcor check`, the demo (request)',
    subscribers: "the host's agent",
    messages: [schema('nca-state-request', 'Agent state request')],
    reply: { ...schema('nca-state-reply', 'Agent state reply'), responders: "the host's agent" },
    action: 'send',
  },
  {
    id: 'mappingRebuild',
    address: 'alcor.ctl.mapping.{bucket}',
    server: 'nats',
    summary:
      "Internal: a southbound module asks a VPC's owner to write the VPC's lost Redis host set.",
    builders: ['mappingRebuild'],
    publishers: 'southbound modules (request)',
    subscribers: "the bucket's owner",
    messages: [
      {
        name: 'mapping-rebuild-request',
        title: 'Mapping rebuild request',
        contentType: 'text/plain',
        schema: { type: 'string', description: 'the vpcId, as text' },
      },
    ],
    reply: {
      name: 'mapping-rebuild-reply',
      title: 'Mapping rebuild reply',
      schema: {
        type: 'object',
        properties: { ok: { type: 'boolean' }, error: { type: 'string' } },
        required: ['ok'],
      },
      responders: "the bucket's owner",
    },
    action: 'receive',
    internal: true,
  },
  {
    id: 'kvHosts',
    address: `$KV.${kvBuckets.hosts}.{hostId}`,
    server: 'nats',
    summary: 'The topology registry: one record per host.',
    builders: [],
    kept: { kv: kvBuckets.hosts },
    publishers: 'operators (`alcor topology load`)',
    subscribers: 'controllers and southbound modules (watch every key); each agent reads its own',
    messages: [schema('host', 'Host record')],
    action: 'receive',
  },
  {
    id: 'kvControllerMember',
    address: `$KV.${kvBuckets.controllers}.member.{instanceId}`,
    server: 'nats',
    summary: "A controller's heartbeat (expires with the bucket's TTL).",
    builders: [],
    kept: { kv: kvBuckets.controllers },
    publishers: 'each controller, every TTL/6',
    subscribers: 'the placement leader; `alcor placement`',
    messages: [schema('member-record', 'Member record')],
    action: 'send',
  },
  {
    id: 'kvControllerLeader',
    address: `$KV.${kvBuckets.controllers}.leader`,
    server: 'nats',
    summary: "The controllers' placement leader (created when absent, renewed by compare-and-set).",
    builders: [],
    kept: { kv: kvBuckets.controllers },
    publishers: 'the leading controller',
    subscribers: 'controllers',
    messages: [schema('leader-record', 'Leader record')],
    action: 'send',
  },
  {
    id: 'kvSouthboundMember',
    address: `$KV.${kvBuckets.southbound}.member.{instanceId}`,
    server: 'nats',
    summary: "A southbound module's heartbeat.",
    builders: [],
    kept: { kv: kvBuckets.southbound },
    publishers: 'each southbound module',
    subscribers: "the modules' leader",
    messages: [schema('member-record', 'Member record')],
    action: 'send',
  },
  {
    id: 'kvSouthboundLeader',
    address: `$KV.${kvBuckets.southbound}.leader`,
    server: 'nats',
    summary: "The southbound modules' placement leader.",
    builders: [],
    kept: { kv: kvBuckets.southbound },
    publishers: 'the leading module',
    subscribers: 'southbound modules',
    messages: [schema('leader-record', 'Leader record')],
    action: 'send',
  },
  {
    id: 'kvPlacementTable',
    address: `$KV.${kvBuckets.placement}.table`,
    server: 'nats',
    summary: 'Bucket → controller instance (LBMRC), written whole by compare-and-set.',
    builders: [],
    kept: { kv: kvBuckets.placement },
    publishers: "the controllers' leader",
    subscribers: 'controllers; `alcor placement`',
    messages: [schema('placement-table', 'Placement table')],
    action: 'send',
  },
  {
    id: 'kvPlacementHandoff',
    address: `$KV.${kvBuckets.placement}.handoff.{bucket}`,
    server: 'nats',
    summary: "A bucket's handoff record: who works it and up to where it is handled.",
    builders: [],
    kept: { kv: kvBuckets.placement },
    publishers: "the bucket's owners, by compare-and-set",
    subscribers: "the bucket's next owner",
    messages: [schema('handoff-record', 'Handoff record')],
    action: 'send',
  },
  {
    id: 'kvSouthboundTable',
    address: `$KV.${kvBuckets.placement}.southbound.table`,
    server: 'nats',
    summary: 'Topology cluster → southbound module.',
    builders: [],
    kept: { kv: kvBuckets.placement },
    publishers: "the modules' leader",
    subscribers: 'southbound modules',
    messages: [schema('southbound-table', 'Southbound placement table')],
    action: 'send',
  },
  {
    id: 'kvKafkaPartitions',
    address: `$KV.${kvBuckets.placement}.kafka.{kafkaCluster}.alcor.gs.{region}.{az}.{dc}.{cluster}`,
    server: 'nats',
    summary: "A Kafka topic's host → partition assignment (the list only grows).",
    builders: [],
    kept: { kv: kvBuckets.placement },
    publishers: 'southbound modules, by compare-and-set',
    subscribers: 'southbound modules; Kafka-bound agents (to find their partition)',
    messages: [schema('kafka-partitions', 'Kafka partitions of a topic')],
    action: 'send',
  },
  {
    id: 'kvSnapshots',
    address: `$KV.${kvBuckets.vpcSnapshots}.{snapshotKey}`,
    server: 'nats',
    summary: "Internal: a VPC's snapshot (a manifest and 512 KiB chunks); its format is private.",
    builders: [],
    kept: { kv: kvBuckets.vpcSnapshots },
    publishers: "the VPC's owner",
    subscribers: 'the next owner (hydration)',
    messages: [
      {
        name: 'vpc-snapshot',
        title: 'VPC snapshot (internal)',
        schema: { description: "the VPC's state; not a contract: rebuild it from EVENTS" },
      },
    ],
    action: 'send',
    internal: true,
  },
];

/** NATS matching of a sample subject (`*`, `>` allowed) against a channel address. */
export function addressMatches(address: string, subject: string): boolean {
  const a = address.split('.');
  const s = subject.split('.');
  for (let i = 0; i < a.length; i++) {
    const token = a[i]!;
    if (token === '>') return true; // the rest, or nothing more (an inbox prefix)
    const sample = s[i];
    if (sample === undefined) return false;
    if (sample === '>') return true; // a filter over every subject below
    const isParameter = token.startsWith('{') && token.endsWith('}');
    if (isParameter) continue; // any token, `*` and server mapping functions included
    if (sample !== token) return false;
  }
  return s.length === a.length;
}
