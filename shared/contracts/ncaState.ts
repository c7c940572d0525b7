/**
 * `alcor.nca.state.<hostId>` (debugging: the convergence oracle, `alcor check`): a
 * host's agent answers what it holds, each resource as its revision and a digest
 * of its value (FNV-1a 32 of the value's JSON, base 36). Only tools ask it.
 */
import { z } from 'zod';
import { id, revision } from './fields.js';

export const NcaStateRequestSchema = z
  .strictObject({
    vpcIds: z.array(id).optional().describe('only these VPCs (absent: every VPC)'),
  })
  .describe('an empty body asks for every VPC');
export type NcaStateRequest = z.infer<typeof NcaStateRequestSchema>;

export const NcaStateReplySchema = z.strictObject({
  hostId: id,
  binding: z.string().describe('how the agent receives: `jetstream` or `kafka:<cluster>`'),
  vpcs: z
    .record(id, z.record(z.string(), z.tuple([revision, z.string()])))
    .describe('vpcId → resource key (`port:<id>`, `route:<cidr>` …) → [revision, digest]'),
});
export type NcaStateReply = z.infer<typeof NcaStateReplySchema>;
