/**
 * The sync API's messages (DESIGN §4.1): a request to `alcor.intents.apply` is one
 * intent or an array of them; the reply is one item per intent, in request order,
 * or one error for a request that is unusable as a whole. The controller's reply
 * types derive from these schemas (services/controller/api/applyApi.ts).
 */
import { z } from 'zod';
import { ErrorDetailSchema, id, revision } from './fields.js';
import { IntentSchema, LIMITS } from './intent.js';
import { StatusSchema } from './ackStatus.js';

export const ApplyRequestSchema = z
  .union([IntentSchema, z.array(IntentSchema).min(1).max(LIMITS.batchSize)])
  .describe(
    `one intent, or an array of 1 to ${LIMITS.batchSize} (${LIMITS.batchBytes / 1024 / 1024} MiB at most); an item that does not validate is answered in its place, the others go on`,
  );

/** With `Alcor-Wait: programmed`: the intent's final status, or why the wait ended. */
export const ProgrammedAnswerSchema = z.union([
  z
    .strictObject({
      outcome: z.enum(['programmed', 'incomplete']),
      hosts: StatusSchema.shape.hosts,
      error: ErrorDetailSchema.optional(),
    })
    .meta({ title: 'final status' }),
  z
    .strictObject({
      outcome: z.literal('pending').describe('not programmed when the wait ended'),
      error: ErrorDetailSchema.describe('code programmed_timeout'),
    })
    .meta({ title: 'wait ended' }),
]);
export type ProgrammedAnswer = z.infer<typeof ProgrammedAnswerSchema>;

export const ApplyReplyItemSchema = z.discriminatedUnion('outcome', [
  z.strictObject({
    id,
    vpcId: id,
    outcome: z.literal('accepted'),
    revision: revision.describe('the VPC revision that recorded the intent'),
    unchanged: z
      .literal(true)
      .optional()
      .describe(
        'the id was decided before: this is its first answer again, nothing new was recorded',
      ),
    programmed: ProgrammedAnswerSchema.optional().describe('with Alcor-Wait: programmed only'),
  }),
  z.strictObject({
    id: id.optional().describe('absent when the item had no usable id'),
    vpcId: id.optional().describe('absent when the item had no usable VPC id'),
    outcome: z.literal('rejected'),
    revision: revision
      .optional()
      .describe(
        'the revision that recorded the refusal, where the VPC is now (a revision_conflict retried with it goes through unless the VPC moved again); absent: refused before any VPC recorded it',
      ),
    unchanged: z
      .literal(true)
      .optional()
      .describe(
        'the id was decided before: this is its first answer again, nothing new was recorded',
      ),
    error: ErrorDetailSchema,
  }),
  z.strictObject({
    id,
    vpcId: id,
    outcome: z.literal('pending').describe('stored, not decided before the deadline'),
    error: ErrorDetailSchema.describe(
      'code decision_timeout; the decision will appear on status.<vpcId>',
    ),
  }),
]);
export type ApplyReplyItem = z.infer<typeof ApplyReplyItemSchema>;

export const ApplyRequestErrorSchema = z.strictObject({
  error: ErrorDetailSchema.describe('the request as a whole is unusable: nothing was stored'),
});

export const ApplyReplySchema = z
  .union([ApplyReplyItemSchema, z.array(ApplyReplyItemSchema), ApplyRequestErrorSchema])
  .describe('one item for a single intent, an array in request order for an array, or an error');
export type ApplyReply = z.infer<typeof ApplyReplySchema>;
