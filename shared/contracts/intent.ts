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
    direction: z.enum(['ingress', 'egress']),
    protocol: z.enum(['tcp', 'udp', 'icmp', 'any']),
    portMin: port.optional(),
    portMax: port.optional(),
    remoteCidr: cidr.optional(),
    remoteGroupId: id.optional(),
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
  });
export type SecurityGroupRule = z.infer<typeof SecurityGroupRule>;

const rules = z.array(SecurityGroupRule).max(LIMITS.rulesPerGroup);

export const specSchemas = {
  'vpc.create': z.strictObject({ cidr, vni: z.number().int().min(1).max(16_777_215).optional() }),
  'vpc.delete': z.strictObject({}),
  'subnet.create': z.strictObject({ subnetId: id, cidr, gatewayIp: ipv4 }),
  'subnet.delete': z.strictObject({ subnetId: id }),
  'port.create': z.strictObject({
    portId: id,
    subnetId: id,
    hostId: id,
    ip: ipv4.optional(),
    mac: mac.optional(),
    securityGroupIds: idSet(LIMITS.groupsPerPort).optional(),
  }),
  'port.update': z
    .strictObject({
      portId: id,
      hostId: id.optional(),
      securityGroupIds: idSet(LIMITS.groupsPerPort).optional(),
    })
    .refine((s) => s.hostId !== undefined || s.securityGroupIds !== undefined, {
      message: 'give hostId, securityGroupIds or both',
      params: { code: 'empty_update' },
    }),
  'port.delete': z.strictObject({ portId: id }),
  'sg.create': z.strictObject({ sgId: id, rules }),
  'sg.update': z.strictObject({ sgId: id, rules }),
  'sg.delete': z.strictObject({ sgId: id }),
  'route.set': z.strictObject({ destination: cidr, nextHop: ipv4 }),
  'route.delete': z.strictObject({ destination: cidr }),
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

const Envelope = z.strictObject({
  id,
  kind: z.string(),
  vpcId: id,
  expectedRevision: revision.optional(),
  spec: z.unknown(),
});

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
