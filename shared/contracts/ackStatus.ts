/** Acks from NCAs (DESIGN §4.5) and status messages to clients (§4.3). */
import { z } from 'zod';
import { id, revision } from './fields.js';
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
