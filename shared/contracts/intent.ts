/**
 * Northbound intents (DESIGN §4.1): the envelope, every kind with its spec, and
 * the decoding of raw bytes into a typed intent or a specific error.
 */
import { z } from 'zod';
import { isId } from '../ids.js';
import type { ErrorDetail } from '../errors.js';
import { cidr, id, idSet, ipv4, mac, revision } from './fields.js';
import { fail, issueToError, ok, type Result } from './validation.js';

export const LIMITS = {
  /** Largest intent message accepted, in bytes. */
  intentBytes: 64 * 1024,
  rulesPerGroup: 256,
  groupsPerPort: 16,
  /** Largest batch on `alcor.intents.apply`. */
  batchSize: 1000,
  batchBytes: 8 * 1024 * 1024,
} as const;

const port = z.number().int().min(1).max(65535);

export const SecurityGroupRule = z
  .strictObject({
    direction: z.enum(['ingress', 'egress']).describe('traffic into or out of the member ports'),
    protocol: z.enum(['tcp', 'udp', 'icmp', 'any']),
    portMin: port.optional().describe('lowest port (tcp and udp only)'),
    portMax: port.optional().describe('highest port, at least portMin (tcp and udp only)'),
    remoteCidr: cidr.optional().describe('the peers as a block (not with remoteGroupId)'),
    remoteGroupId: id
      .optional()
      .describe('the peers as the ports of a group of the VPC, this one included'),
  })
  .superRefine((rule, ctx) => {
    const hasPorts = rule.portMin !== undefined || rule.portMax !== undefined;
    if (hasPorts && rule.protocol !== 'tcp' && rule.protocol !== 'udp') {
      ctx.addIssue({
        code: 'custom',
        path: [rule.portMin !== undefined ? 'portMin' : 'portMax'],
        message: `ports apply to tcp and udp only, not ${rule.protocol}`,
        params: { code: 'invalid_port_range' },
      });
    } else if (
      rule.portMin !== undefined &&
      rule.portMax !== undefined &&
      rule.portMin > rule.portMax
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['portMax'],
        message: `portMax ${rule.portMax} is below portMin ${rule.portMin}`,
        params: { code: 'invalid_port_range' },
      });
    }
    if (rule.remoteCidr !== undefined && rule.remoteGroupId !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['remoteGroupId'],
        message: 'give remoteCidr or remoteGroupId, not both',
        params: { code: 'conflicting_fields' },
      });
    }
  })
  // What JSON Schema can say of the checks above (not portMax ≥ portMin).
  .meta({
    title: 'rule',
    allOf: [
      {
        if: { properties: { protocol: { enum: ['icmp', 'any'] } }, required: ['protocol'] },
        then: { properties: { portMin: false, portMax: false } },
      },
      { not: { required: ['remoteCidr', 'remoteGroupId'] } },
    ],
  });
export type SecurityGroupRule = z.infer<typeof SecurityGroupRule>;

const rules = z.array(SecurityGroupRule).max(LIMITS.rulesPerGroup).describe('the rules');

export const specSchemas = {
  'vpc.create': z.strictObject({
    cidr: cidr.describe("the VPC's block, /8 to /28"),
    vni: z
      .number()
      .int()
      .min(1)
      .max(16_777_215)
      .optional()
      .describe(
        'VXLAN network id; derived from the vpcId when absent (give one when VNIs must be unique)',
      ),
  }),
  'vpc.delete': z
    .strictObject({})
    .describe('only a VPC that holds nothing: a delete does not cascade'),
  'subnet.create': z.strictObject({
    subnetId: id.describe('new in the VPC'),
    cidr: cidr.describe('inside the VPC block, /29 or larger, overlapping no other subnet'),
    gatewayIp: ipv4.describe('inside the subnet, neither its network nor its broadcast address'),
  }),
  'subnet.delete': z.strictObject({
    subnetId: id.describe("a subnet without ports and without a route's next hop"),
  }),
  'port.create': z.strictObject({
    portId: id.describe('new in the VPC'),
    subnetId: id.describe('an existing subnet'),
    hostId: id.describe('a host of the topology (KV hosts)'),
    ip: ipv4
      .optional()
      .describe(
        "in the subnet, free, not its network, broadcast or gateway; absent: the subnet's first free one",
      ),
    mac: mac
      .optional()
      .describe(
        'unicast, lower case, free in the VPC; absent: fa:16:3e and 24 bits of a hash of vpcId/portId',
      ),
    securityGroupIds: idSet(LIMITS.groupsPerPort).optional().describe('existing groups'),
  }),
  'port.update': z
    .strictObject({
      portId: id.describe('an existing port'),
      hostId: id.optional().describe('moves the port to this host of the topology (a migration)'),
      securityGroupIds: idSet(LIMITS.groupsPerPort)
        .optional()
        .describe("existing groups: they replace the port's"),
    })
    .refine((s) => s.hostId !== undefined || s.securityGroupIds !== undefined, {
      message: 'give hostId, securityGroupIds or both',
      params: { code: 'empty_update' },
    })
    .meta({
      description: 'give hostId, securityGroupIds or both',
      anyOf: [{ required: ['hostId'] }, { required: ['securityGroupIds'] }],
    }),
  'port.delete': z.strictObject({ portId: id.describe('an existing port') }),
  'sg.create': z.strictObject({ sgId: id.describe('new in the VPC'), rules }),
  'sg.update': z.strictObject({
    sgId: id.describe('an existing group'),
    rules: rules.describe("they replace the group's"),
  }),
  'sg.delete': z.strictObject({
    sgId: id.describe("a group no port uses and no other group's rule names"),
  }),
  'route.set': z.strictObject({
    destination: cidr.describe(
      'not inside the VPC block (wider, as 0.0.0.0/0, is fine); sets or replaces the route',
    ),
    nextHop: ipv4.describe('inside a subnet of the VPC'),
  }),
  'route.delete': z.strictObject({ destination: cidr.describe('an existing route') }),
} as const;

export type IntentKind = keyof typeof specSchemas;
export const INTENT_KINDS = Object.keys(specSchemas) as IntentKind[];

export type IntentSpec<K extends IntentKind> = z.infer<(typeof specSchemas)[K]>;

export type VpcIntent = {
  [K in IntentKind]: {
    id: string;
    kind: K;
    vpcId: string;
    expectedRevision?: number;
    spec: IntentSpec<K>;
  };
}[IntentKind];

export type IntentOf<K extends IntentKind> = Extract<VpcIntent, { kind: K }>;

const envelopeFields = {
  id: id.describe(
    'chosen by the client, the idempotency key: the same id again is a no-op answered like the first',
  ),
  vpcId: id.describe('the VPC; publish to intent.<vpcId> with the same id'),
  expectedRevision: revision
    .optional()
    .describe(
      'apply only if the VPC is at this revision (compare-and-set), else revision_conflict',
    ),
};

const Envelope = z.strictObject({ ...envelopeFields, kind: z.string(), spec: z.unknown() });

/** The intent of one kind, envelope and spec, as one schema (for documentation and tools). */
export function intentSchemaOf<K extends IntentKind>(kind: K) {
  return z.strictObject({
    id: envelopeFields.id,
    kind: z.literal(kind),
    vpcId: envelopeFields.vpcId,
    expectedRevision: envelopeFields.expectedRevision,
    spec: specSchemas[kind],
  });
}

/**
 * Every intent, one alternative per kind. `parseIntent` reads the same rules in two
 * steps (the envelope, then the kind's spec) so that its errors name the field.
 */
export const IntentSchema = z.discriminatedUnion(
  'kind',
  INTENT_KINDS.map(intentSchemaOf) as unknown as [KindSchema, ...KindSchema[]],
);
type KindSchema = { [K in IntentKind]: ReturnType<typeof intentSchemaOf<K>> }[IntentKind];
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _sameIntent: Same<z.infer<typeof IntentSchema>, VpcIntent> = true;

export interface IntentError {
  error: ErrorDetail;
  /** The intent's id and vpcId when they were readable, to route the answer. */
  id?: string;
  vpcId?: string;
}

export type IntentResult = { ok: true; value: VpcIntent } | ({ ok: false } & IntentError);

function identify(input: unknown): { id?: string; vpcId?: string } {
  if (typeof input !== 'object' || input === null) return {};
  const record = input as Record<string, unknown>;
  return {
    ...(isId(record.id) ? { id: record.id } : {}),
    ...(isId(record.vpcId) ? { vpcId: record.vpcId } : {}),
  };
}

/** Validates an already-parsed value as an intent. Never throws. */
export function parseIntent(input: unknown): IntentResult {
  const ids = identify(input);
  const envelope = Envelope.safeParse(input, { reportInput: true });
  if (!envelope.success) {
    const first = envelope.error.issues[0];
    const error = first
      ? issueToError(first)
      : { code: 'invalid_value', message: 'invalid intent' };
    return { ok: false, error, ...ids };
  }
  const { kind, spec } = envelope.data;
  // Own keys only: `in` also finds `constructor`, `toString`… on the prototype.
  if (!Object.hasOwn(specSchemas, kind)) {
    return {
      ok: false,
      error: {
        code: 'unknown_kind',
        message: `kind ${JSON.stringify(kind).slice(0, 80)} is not one of ${INTENT_KINDS.join(', ')}`,
        path: 'kind',
      },
      ...ids,
    };
  }
  const parsed = specSchemas[kind as IntentKind].safeParse(spec, { reportInput: true });
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const error = first
      ? issueToError(first, 'spec')
      : { code: 'invalid_value', message: 'invalid spec', path: 'spec' };
    return { ok: false, error, ...ids };
  }
  return { ok: true, value: { ...envelope.data, kind, spec: parsed.data } as VpcIntent };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses JSON bytes within a size limit: `too_large`, `invalid_json` or the value. */
export function decodeJson(bytes: Uint8Array, maxBytes: number): Result<unknown> {
  if (bytes.byteLength > maxBytes) {
    return fail('too_large', `message is ${bytes.byteLength} bytes; the limit is ${maxBytes}`);
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return fail('invalid_json', 'message is not UTF-8 text');
  }
  try {
    return ok(JSON.parse(text) as unknown);
  } catch (err) {
    return fail('invalid_json', `message is not JSON: ${(err as Error).message}`);
  }
}

/** Raw bytes (a NATS message) to a typed intent or a specific error. Never throws. */
export function decodeIntent(bytes: Uint8Array): IntentResult {
  const json = decodeJson(bytes, LIMITS.intentBytes);
  if (!json.ok) return { ok: false, error: json.error };
  return parseIntent(json.value);
}
