/** Acks from NCAs (DESIGN §4.5) and status messages to clients (§4.3). */
import { z } from 'zod';
import { id, revision } from './fields.js';
import { bucketOf } from '../bucket.js';
import { decodeJson } from './intent.js';
import { parseWith, type Result } from './validation.js';

const errorDetail = z.strictObject({
  code: z.string(),
  message: z.string(),
  path: z.string().optional(),
});

export const GoalStateAckSchema = z.strictObject({
  hostId: id,
  vpcId: id,
  revision,
  status: z.enum(['applied', 'failed']),
  /**
   * The mode of the message acked (an addition to DESIGN §4.5): an applied `full`
   * at revision r covers every earlier revision of the VPC on that host.
   */
  mode: z.enum(['delta', 'full']).optional(),
  error: errorDetail.optional(),
  /** Milliseconds per stage, as the agent measured them. */
  timings: z.record(z.string(), z.number()).optional(),
});
export type GoalStateAck = z.infer<typeof GoalStateAckSchema>;

export const StatusSchema = z.strictObject({
  intentId: z.string(),
  vpcId: z.string(),
  revision,
  outcome: z.enum(['accepted', 'rejected', 'programmed', 'incomplete']),
  error: errorDetail.optional(),
  hosts: z
    .strictObject({
      total: z.number().int(),
      applied: z.number().int(),
      failed: z.number().int(),
      pending: z.number().int(),
      missing: z.array(z.string()).optional(),
      failedHosts: z.array(z.string()).optional(),
    })
    .optional(),
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
  hostId: id,
  vpcIds: z.array(id).max(1000).optional(),
  buckets: z
    .string()
    .max(8192)
    .regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, 'a bucket set: numbers and ranges, comma separated')
    .optional(),
});
export type ResyncRequest = z.infer<typeof ResyncRequestSchema>;

/**
 * Each owner replies with what it re-sent, and which of the asked buckets it owns
 * (`buckets`, the same text form) out of `bucketCount`: an agent knows a full
 * resync is whole once the replies' buckets cover every bucket.
 */
export interface ResyncReply {
  hostId: string;
  owner: string;
  vpcs: Array<{ vpcId: string; revision: number }>;
  buckets?: string;
  bucketCount?: number;
}

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
