/**
 * The published JSON Schemas (docs/schemas/*.json): one per message, made from the
 * zod schemas in shared/contracts with `z.toJSONSchema`.
 *
 * Options: target draft-07 (what an AsyncAPI 3.0 document's default schema format
 * extends); `io: 'input'`, the shape a sender must write (no contract schema has a
 * transform or a default, so input and output are the same); `unrepresentable`
 * left at `'throw'`, so that a type JSON Schema cannot express stops the generator
 * instead of turning into "anything". Refinements are dropped by `z.toJSONSchema`:
 * what JSON Schema can say of them travels as metadata beside each refinement
 * (shared/contracts/fields.ts, intent.ts); what it cannot say is listed in
 * {@link NOT_EXPRESSED} and in docs/contracts.md.
 */
import { z } from 'zod';
import {
  ApplyReplySchema,
  ApplyRequestSchema,
  ErrorDetailSchema,
  EventCommitSchema,
  EventGroupSchema,
  GoalStateAckSchema,
  GoalStateMessageSchema,
  HandoffRecordSchema,
  HostValueSchema,
  IntentSchema,
  KafkaPartitionsSchema,
  LeaderRecordSchema,
  MemberRecordSchema,
  NcaStateReplySchema,
  NcaStateRequestSchema,
  PlacementTableSchema,
  ResyncReplySchema,
  RelayReceiptSchema,
  ResyncRequestSchema,
  SouthboundTableSchema,
  StatusSchema,
} from '../../shared/index.js';

export type JsonSchema = { [key: string]: unknown };

export interface SchemaFile {
  /** File name under docs/schemas/, without `.json`. */
  name: string;
  title: string;
  description: string;
  schema: z.ZodType;
}

export const SCHEMA_FILES: SchemaFile[] = [
  {
    name: 'intent',
    title: 'Intent',
    description:
      'An intent as published to `intent.<vpcId>` (one alternative per kind, under definitions).',
    schema: IntentSchema,
  },
  {
    name: 'apply-request',
    title: 'Sync API request',
    description: 'The body of a request to `alcor.intents.apply`.',
    schema: ApplyRequestSchema,
  },
  {
    name: 'apply-reply',
    title: 'Sync API reply',
    description: 'The reply to a request to `alcor.intents.apply`.',
    schema: ApplyReplySchema,
  },
  {
    name: 'status',
    title: 'Status',
    description: "An intent's decision or final outcome, on `status.<vpcId>` (stream STATUS).",
    schema: StatusSchema,
  },
  {
    name: 'event-message',
    title: 'EVENTS message',
    description:
      'A message of `evt.<vpcId>` (stream EVENTS): one commit, or a group of 2 to 256 commits of one VPC appended together.',
    schema: z.union([EventCommitSchema, EventGroupSchema]),
  },
  {
    name: 'goal-state',
    title: 'Goal state',
    description: 'A goal-state message on `gs.…` or `gsm.…` (stream GOALSTATES) and on Kafka.',
    schema: GoalStateMessageSchema,
  },
  {
    name: 'goal-state-ack',
    title: 'Goal-state ack',
    description: "An agent's ack on `gsack.<bucket>.<vpcId>.<hostId>` (stream ACKS).",
    schema: GoalStateAckSchema,
  },
  {
    name: 'relay-receipt',
    title: 'Relay receipt',
    description:
      'Where a southbound relay put the records of one goal state in Kafka, on `relay.<vpcId>` (stream RELAYS).',
    schema: RelayReceiptSchema,
  },
  {
    name: 'resync-request',
    title: 'Resync request',
    description: 'The body of a request to `alcor.resync.<hostId>` (an empty body is {hostId}).',
    schema: ResyncRequestSchema,
  },
  {
    name: 'resync-reply',
    title: 'Resync reply',
    description: "One owner's reply to a resync request, or why the request was refused.",
    schema: z.union([ResyncReplySchema, z.strictObject({ error: ErrorDetailSchema })]),
  },
  {
    name: 'nca-state-request',
    title: 'Agent state request',
    description: 'The body of a request to `alcor.nca.state.<hostId>`.',
    schema: NcaStateRequestSchema,
  },
  {
    name: 'nca-state-reply',
    title: 'Agent state reply',
    description: "A host agent's answer to `alcor.nca.state.<hostId>`: what it holds, as digests.",
    schema: NcaStateReplySchema,
  },
  {
    name: 'host',
    title: 'Host record',
    description: 'The value of KV hosts key `<hostId>`.',
    schema: HostValueSchema,
  },
  {
    name: 'member-record',
    title: 'Member record',
    description:
      'The value of KV controllers / KV southbound key `member.<instanceId>` (a heartbeat).',
    schema: MemberRecordSchema,
  },
  {
    name: 'leader-record',
    title: 'Leader record',
    description: 'The value of KV controllers / KV southbound key leader.',
    schema: LeaderRecordSchema,
  },
  {
    name: 'placement-table',
    title: 'Placement table',
    description: 'The value of KV placement key table: bucket → controller instance.',
    schema: PlacementTableSchema,
  },
  {
    name: 'handoff-record',
    title: 'Handoff record',
    description: 'The value of KV placement key `handoff.<bucket>`.',
    schema: HandoffRecordSchema,
  },
  {
    name: 'southbound-table',
    title: 'Southbound placement table',
    description: 'The value of KV placement key southbound.table: topology cluster → module.',
    schema: SouthboundTableSchema,
  },
  {
    name: 'kafka-partitions',
    title: 'Kafka partitions of a topic',
    description: 'The value of KV placement key `kafka.<kafkaCluster>.<topic>`.',
    schema: KafkaPartitionsSchema,
  },
];

/** What the schemas check that JSON Schema cannot say (the server checks it). */
export const NOT_EXPRESSED: Array<{ where: string; rule: string; code: string }> = [
  {
    where: 'every CIDR field',
    rule: 'the host bits are zero (`10.0.0.0/16`, not `10.0.0.1/16`)',
    code: 'invalid_cidr',
  },
  { where: 'security-group rule', rule: '`portMax` ≥ `portMin`', code: 'invalid_port_range' },
  { where: 'goal state `part`', rule: '`first` < `total`', code: 'out_of_range' },
  {
    where: 'goal state with `part`',
    rule: 'at least one op, and `part.first` + the number of ops ≤ `part.total`',
    code: 'out_of_range',
  },
];

/**
 * Alternatives of a union that name themselves (every one has a property with a
 * constant: `kind`, `type`, `outcome`, `op` …) move to `definitions`, named by their
 * constants, and are referenced: a kind is found by its name, and a union used
 * twice (one intent, or an array of them) is written once.
 */
function hoistUnions(root: JsonSchema): JsonSchema {
  const definitions: Record<string, JsonSchema> = {
    ...((root.definitions as Record<string, JsonSchema> | undefined) ?? {}),
  };
  const nameOf = (alt: unknown): string | undefined => {
    const props = (alt as { properties?: Record<string, { const?: unknown }> }).properties;
    if (!props) return undefined;
    const consts = Object.values(props)
      .map((p) => p.const)
      .filter((c): c is string => typeof c === 'string');
    return consts.length > 0 ? consts.join('-') : undefined;
  };
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (typeof node !== 'object' || node === null) return node;
    const out: JsonSchema = {};
    for (const [key, value] of Object.entries(node)) out[key] = walk(value);
    for (const key of ['oneOf', 'anyOf'] as const) {
      const alts = out[key];
      if (!Array.isArray(alts)) continue;
      const names = alts.map(nameOf);
      if (names.some((n) => n === undefined) || new Set(names).size !== names.length) continue;
      out[key] = alts.map((alt, i) => {
        const name = names[i]!;
        const existing = definitions[name];
        if (existing && JSON.stringify(existing) !== JSON.stringify(alt))
          throw new Error(`two different schemas named ${name}`);
        definitions[name] = alt as JsonSchema;
        return { $ref: `#/definitions/${name}` };
      });
    }
    return out;
  };
  const { definitions: _old, ...rest } = walk(root) as JsonSchema;
  return Object.keys(definitions).length > 0 ? { ...rest, definitions } : rest;
}

/** The JSON Schema of one file, as written (before formatting). */
export function jsonSchemaOf(file: SchemaFile): JsonSchema {
  const generated = z.toJSONSchema(file.schema, { target: 'draft-07', io: 'input' }) as JsonSchema;
  const { $schema, description, ...body } = generated;
  return hoistUnions({
    $schema,
    $id: `${file.name}.json`,
    title: file.title,
    description:
      typeof description === 'string' ? `${file.description} ${description}` : file.description,
    ...body,
  });
}
