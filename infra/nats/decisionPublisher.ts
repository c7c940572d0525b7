/**
 * Decisions out to JetStream: goal states to GOALSTATES and status to STATUS, each
 * with a `Nats-Msg-Id`, so that publishing again after a crash stores nothing twice
 * within the duplicate window (and receivers ignore what is older than they have).
 */
import { createAsyncPublisher, type AsyncPublisher } from './asyncPublisher.js';
import { payloadRoom } from './payloadLimit.js';
import { headers, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import {
  AlcorError,
  splitGoalState,
  type DecisionPublisher,
  type GoalStateEnvelope,
  type Status,
} from '../../shared/index.js';

const encoder = new TextEncoder();

/** Header naming the intent a status is about (for tools that filter STATUS). */
export const INTENT_ID_HEADER = 'Alcor-Intent-Id';
/** Header naming the controller run (`<instance>/<incarnation>`) that wrote a message. */
export const WRITER_HEADER = 'Alcor-Writer';

export function writerHeaders(writer: string): MsgHdrs {
  const h = headers();
  h.set(WRITER_HEADER, writer);
  return h;
}

/** The largest goal-state body this connection's server takes, headers aside. */
export const goalStateLimit = payloadRoom;

/**
 * An envelope as what fits the limit (issue 22): itself, or its parts, each with
 * a msgId of its own (the envelope's and its first op), stable across retries.
 */
export function partsOf(envelope: GoalStateEnvelope, limit: number): GoalStateEnvelope[] {
  const split = splitGoalState(envelope.message, limit);
  if (!split.ok)
    throw new AlcorError(
      split.error.code,
      `goal state ${envelope.msgId} cannot be sent: ${split.error.message}`,
      { ...(split.error.path ? { field: split.error.path } : {}), retryable: false },
    );
  if (split.value.length === 1) return [envelope];
  return split.value.map((message) => ({
    subject: envelope.subject,
    msgId: `${envelope.msgId}~${message.part!.first}`,
    message,
  }));
}

export function createJetStreamDecisionPublisher(
  nc: NatsConnection,
  options: { timeoutMs?: number; writer?: () => string; publisher?: AsyncPublisher } = {},
): DecisionPublisher {
  const publisher =
    options.publisher ?? createAsyncPublisher(nc, { timeoutMs: options.timeoutMs ?? 10_000 });
  return {
    async goalStates(messages: readonly GoalStateEnvelope[]) {
      const writer = options.writer?.();
      const limit = goalStateLimit(nc);
      const publish = (subject: string, body: Uint8Array, msgId: string) =>
        publisher.publish(subject, body, {
          msgId,
          ...(writer ? { headers: writerHeaders(writer) } : {}),
        });
      const acks = await Promise.all(
        messages.flatMap((m) => {
          // Encoded once; cut into parts only when over the limit.
          const body = encoder.encode(JSON.stringify(m.message));
          if (body.length <= limit) return [publish(m.subject, body, m.msgId)];
          return partsOf(m, limit).map((part) =>
            publish(part.subject, encoder.encode(JSON.stringify(part.message)), part.msgId),
          );
        }),
      );
      const duplicates = acks.filter((a) => a.duplicate).length;
      return { stored: acks.length - duplicates, duplicates };
    },
    async status(subject: string, status: Status, msgId: string) {
      const h = options.writer ? writerHeaders(options.writer()) : headers();
      h.set(INTENT_ID_HEADER, status.intentId);
      await publisher.publish(subject, encoder.encode(JSON.stringify(status)), {
        msgId,
        headers: h,
      });
    },
  };
}
