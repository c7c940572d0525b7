/**
 * Goal states (DESIGN §4.4): what a host must have. Each op upserts or deletes one
 * resource and carries the revision that last changed it, so a receiver applies
 * ops idempotently and never goes back to an older revision of a resource.
 *
 * mode `full` replaces the receiver's view of the VPC as of `revision`: resources
 * it does not list are gone. A full message with no ops is the removal sent to a
 * host that leaves the VPC.
 */
import { z } from 'zod';
import { cidr, id, ipv4, mac, revision } from './fields.js';
import { SecurityGroupRule, decodeJson } from './intent.js';
import { parseWith, type Result } from './validation.js';

export const ResourceValues = {
  vpc: z.strictObject({ cidr, vni: z.number().int() }),
  subnet: z.strictObject({ subnetId: id, cidr, gatewayIp: ipv4 }),
  /** A port bound on this host, with what DHCP hands out. */
  port: z.strictObject({
    portId: id,
    subnetId: id,
    ip: ipv4,
    mac,
    securityGroupIds: z.array(id),
  }),
  /** Every port of the VPC, for the neighbor table (and remote-group rules). */
  neighbor: z.strictObject({
    portId: id,
    subnetId: id,
    ip: ipv4,
    mac,
    hostId: id,
    securityGroupIds: z.array(id),
  }),
  sg: z.strictObject({ sgId: id, rules: z.array(SecurityGroupRule) }),
  route: z.strictObject({ destination: cidr, nextHop: ipv4 }),
} as const;

export type ResourceKind = keyof typeof ResourceValues;
export type ResourceValue<K extends ResourceKind> = z.infer<(typeof ResourceValues)[K]>;

/** The schema of each op, by `<op>:<kind>` (the only alternative of the union an op can match). */
const opSchemaByKey = new Map<string, z.ZodType>(
  (Object.keys(ResourceValues) as ResourceKind[]).flatMap((kind) => [
    [
      `upsert:${kind}`,
      z.strictObject({
        op: z.literal('upsert'),
        kind: z.literal(kind),
        key: z.string(),
        rev: revision,
        value: ResourceValues[kind],
      }),
    ],
    [
      `delete:${kind}`,
      z.strictObject({
        op: z.literal('delete'),
        kind: z.literal(kind),
        key: z.string(),
        rev: revision,
      }),
    ],
  ]),
);
const opSchemas = [...opSchemaByKey.values()];

export type UpsertOp = {
  [K in ResourceKind]: { op: 'upsert'; kind: K; key: string; rev: number; value: ResourceValue<K> };
}[ResourceKind];
export type DeleteOp = { op: 'delete'; kind: ResourceKind; key: string; rev: number };
export type GoalStateOp = UpsertOp | DeleteOp;

/** Most ops one (reassembled) goal-state message may hold. */
export const GOAL_STATE_MAX_OPS = 1_048_576;

/**
 * A message too large for a hop travels as parts: each part is the
 * message with a run of its ops, `ops[i]` being op `first + i` of `total`. A
 * receiver applies the message once parts covering every op are in. Any hop may
 * split a part again (by ranges), and a part delivered twice changes nothing.
 */
export const GoalStatePartSchema = z
  .strictObject({
    first: z.number().int().min(0),
    total: z.number().int().min(1).max(GOAL_STATE_MAX_OPS),
  })
  .refine((p) => p.first < p.total, {
    message: 'first must be below total',
    params: { code: 'out_of_range' },
  });
export type GoalStatePart = z.infer<typeof GoalStatePartSchema>;

const GoalStateObject = z.strictObject({
  vpcId: id,
  bucket: z.number().int().min(0).describe("the VPC's bucket"),
  revision: revision.describe('the VPC revision this message brings the target to'),
  mode: z
    .enum(['delta', 'full'])
    .describe(
      "full: the target's whole view of the VPC (what it omits is gone); empty ops: the host left the VPC",
    ),
  /** hostId for unicast, `region.az.dc.cluster` for multicast. */
  target: z.string().describe('the hostId (unicast), or `region.az.dc.cluster` (multicast)'),
  /**
   * The revision of the message its owner sent this target before this one, for
   * the VPC (a delta's only; absent when the owner does not know it, just after
   * it took the VPC on). A receiver that holds less of the target's messages than
   * `prev` missed one: it takes the VPC's full state instead of applying.
   */
  prev: revision
    .optional()
    .describe(
      "a delta's: the revision of the message this target was sent before it (a receiver holding less missed one, and takes the VPC again)",
    ),
  /** Present when the message is one part of a larger one. */
  part: GoalStatePartSchema.optional().describe(
    'present when the message is one part of a larger one: ops[i] is op first + i of total',
  ),
  ops: z.array(z.union(opSchemas as unknown as [z.ZodType<GoalStateOp>, z.ZodType<GoalStateOp>])),
});

/** A part holds at least one op and none past its total. */
const partFits = (m: { part?: GoalStatePart; ops: unknown[] }): boolean =>
  !m.part || (m.ops.length > 0 && m.part.first + m.ops.length <= m.part.total);
const PART_FITS = {
  message: 'a part holds at least one op and none past part.total',
  path: ['part'],
  params: { code: 'out_of_range' },
};

/** A message follows the one before it for its target. */
const prevBefore = (m: { prev?: number; revision: number }): boolean =>
  m.prev === undefined || m.prev < m.revision;
const PREV_BEFORE = {
  message: 'prev must be below revision',
  path: ['prev'],
  params: { code: 'out_of_range' },
};

export const GoalStateMessageSchema = GoalStateObject.refine(partFits, PART_FITS).refine(
  prevBefore,
  PREV_BEFORE,
);

export interface GoalStateMessage {
  vpcId: string;
  bucket: number;
  revision: number;
  mode: 'delta' | 'full';
  target: string;
  /** A delta's: the revision of the message this target was sent before it. */
  prev?: number;
  /** Present when the message is one part of a larger one. */
  part?: GoalStatePart;
  ops: GoalStateOp[];
}

/** The key of a resource in a host's model: `vpc`, `port:<id>`, `route:<cidr>` … */
export function resourceKey(kind: ResourceKind, name?: string): string {
  return name === undefined ? kind : `${kind}:${name}`;
}

/** The message with its ops not looked into (they are checked one by one, below). */
const EnvelopeSchema = GoalStateObject.extend({ ops: z.array(z.unknown()) })
  .refine(partFits, PART_FITS)
  .refine(prevBefore, PREV_BEFORE);

/**
 * A goal state checked against GoalStateMessageSchema. Each op is checked against
 * the one op schema its `op` and `kind` name rather than the union of all twelve
 * (which zod tries in turn: 4–5× slower over a 100k-op full state). Anything that
 * fails is checked again against the whole schema, so the error is the schema's.
 */
export function parseGoalState(input: unknown): Result<GoalStateMessage> {
  const whole = () =>
    parseWith(GoalStateMessageSchema as z.ZodType<GoalStateMessage>, input, 'goal state');
  const envelope = EnvelopeSchema.safeParse(input);
  if (!envelope.success) return whole();
  const ops: GoalStateOp[] = [];
  for (const op of envelope.data.ops) {
    const o = op as { op?: unknown; kind?: unknown } | null;
    const schema =
      typeof o === 'object' && o
        ? opSchemaByKey.get(`${String(o.op)}:${String(o.kind)}`)
        : undefined;
    const parsed = schema?.safeParse(op);
    if (!parsed?.success) return whole();
    ops.push(parsed.data as GoalStateOp);
  }
  return { ok: true, value: { ...envelope.data, ops } };
}

/** Largest goal-state message read (a full state of a large VPC). */
export const GOAL_STATE_MAX_BYTES = 16 * 1024 * 1024;

/** A goal-state message as it arrives (bytes): decoded, then checked. */
export function decodeGoalState(bytes: Uint8Array): Result<GoalStateMessage> {
  const json = decodeJson(bytes, GOAL_STATE_MAX_BYTES);
  return json.ok ? parseGoalState(json.value) : json;
}
