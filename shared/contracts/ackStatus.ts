/** Acks from NCAs (DESIGN §4.5) and status messages to clients (§4.3). */
import { z } from 'zod';
import { ErrorDetailSchema, id, revision } from './fields.js';
import { bucketOf } from '../bucket.js';
import { decodeJson } from './intent.js';
import { parseWith, type Result } from './validation.js';

export const GoalStateAckSchema = z.strictObject({
  hostId: id.describe('the host that applied (or failed to apply) the goal state'),
  vpcId: id,
  revision: revision.describe("the goal state's revision"),
  status: z.enum(['applied', 'failed']),
  /**
   * The mode of the message acked (an addition to DESIGN §4.5): an applied `full`
   * at revision r covers every earlier revision of the VPC on that host.
   */
  mode: z
    .enum(['delta', 'full'])
    .optional()
    .describe('the mode of the message acked: an applied full at r answers every revision ≤ r'),
  error: ErrorDetailSchema.optional().describe('why it failed (with status failed)'),
  /** Milliseconds per stage, as the agent measured them. */
  timings: z
    .record(z.string(), z.number())
    .optional()
    .describe(
      'milliseconds per stage, as the agent measured them (`apply`; an ACA bridge adds `aca_queue`, `aca_roundtrip`, `aca_total`, `dataplane_programming`, `network_configuration`: docs/aca-bridge.md)',
    ),
});
export type GoalStateAck = z.infer<typeof GoalStateAckSchema>;

const count = z.number().int();

export const StatusSchema = z.strictObject({
  intentId: z
    .string()
    .describe(
      "the intent's id; when it had none readable: `invalid-<seq>` or `seq-<seq>` (its INTENTS sequence), `unknown` (sync API)",
    ),
  vpcId: z.string().describe("the intent's VPC ('' on status._invalid when it named none)"),
  revision: revision.describe(
    'accepted: the VPC revision that recorded the intent; rejected: the revision that recorded the refusal (0: refused before any VPC recorded it)',
  ),
  outcome: z.enum(['accepted', 'rejected', 'programmed', 'incomplete']),
  resent: z
    .literal(true)
    .optional()
    .describe(
      "accepted or rejected given again: the intent's id was decided before (a re-sent intent), nothing new was recorded",
    ),
  error: ErrorDetailSchema.optional().describe(
    'why it was rejected, or what is missing (incomplete)',
  ),
  hosts: z
    .strictObject({
      total: count.describe('hosts the intent reached'),
      applied: count,
      failed: count,
      pending: count.describe('hosts that have not answered'),
      missing: z
        .array(z.string())
        .optional()
        .describe('hosts that have not answered (at most 1,000 listed)'),
      failedHosts: z
        .array(z.string())
        .optional()
        .describe('hosts that failed (at most 1,000 listed)'),
    })
    .optional()
    .describe('with programmed and incomplete: the hosts the intent reached'),
});
export type Status = z.infer<typeof StatusSchema>;

export function parseAck(input: unknown): Result<GoalStateAck> {
  return parseWith(GoalStateAckSchema, input, 'ack');
}

/**
 * `alcor.resync.<hostId>` (DESIGN §4.5). An empty body asks for every VPC of the
 * host; `vpcIds` for just those (an agent that may have missed a multicast);
 * `buckets` (the text form of ALCOR_BUCKETS, `0-511,700`) for the host's VPCs in
 * those buckets only (an agent asking again for buckets no owner answered).
 */
export const ResyncRequestSchema = z.strictObject({
  hostId: id.describe('the asking host (the subject names it too)'),
  vpcIds: z.array(id).max(1000).optional().describe('only these VPCs of the host'),
  buckets: z
    .string()
    .max(8192)
    .regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, 'a bucket set: numbers and ranges, comma separated')
    .optional()
    .describe("only the host's VPCs in these buckets (`0-511,700`)"),
});
export type ResyncRequest = z.infer<typeof ResyncRequestSchema>;

/**
 * Each owner replies with what it re-sent, and which of the asked buckets it owns
 * (`buckets`, the same text form) out of `bucketCount`: an agent knows a full
 * resync is whole once the replies' buckets cover every bucket.
 */
export const ResyncReplySchema = z.strictObject({
  hostId: id,
  owner: z.string().describe('the controller instance that answers'),
  vpcs: z
    .array(z.strictObject({ vpcId: id, revision }))
    .describe("the VPCs whose full state it sent on the host's gs subject, at that revision"),
  buckets: z.string().optional().describe('the asked buckets it owns (`0-511,700`)'),
  bucketCount: z.number().int().min(1).optional().describe('buckets in all'),
  retryAfterMs: z
    .number()
    .int()
    .min(0)
    .max(60_000)
    .optional()
    .describe(
      'the owner is answering other resyncs: it sent nothing and claims no bucket; ask its buckets again after this long',
    ),
});
export type ResyncReply = z.infer<typeof ResyncReplySchema>;

export function parseResyncRequest(input: unknown): Result<ResyncRequest> {
  return parseWith(ResyncRequestSchema, input, 'resync request');
}

/** Largest ack a controller reads. */
export const MAX_ACK_BYTES = 64 * 1024;

/**
 * An NCA's ack as stored on `gsack.<bucket>.<vpc>.<host>`: valid, and about the
 * VPC, host and bucket its subject names.
 */
export function readAck(
  subject: string,
  data: Uint8Array,
  bucketCount: number,
): Result<GoalStateAck> {
  const json = decodeJson(data, MAX_ACK_BYTES);
  const ack = json.ok ? parseAck(json.value) : json;
  if (!ack.ok) return ack;
  const [, bucketToken, vpcToken, hostToken] = subject.split('.');
  const { vpcId, hostId } = ack.value;
  if (
    vpcId !== vpcToken ||
    hostId !== hostToken ||
    String(bucketOf(vpcId, bucketCount)) !== bucketToken
  )
    return {
      ok: false,
      error: {
        code: 'subject_mismatch',
        message: `an ack of ${vpcId} on ${hostId} does not belong on ${subject.slice(0, 200)}`,
      },
    };
  return ack;
}
