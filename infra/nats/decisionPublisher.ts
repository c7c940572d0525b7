/**
 * Decisions out to JetStream: goal states to GOALSTATES and status to STATUS, each
 * with a `Nats-Msg-Id`, so that publishing again after a crash stores nothing twice
 * within the duplicate window (and receivers ignore what is older than they have).
 */
import { createAsyncPublisher, type AsyncPublisher } from './asyncPublisher.js';
import { headers, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import type { DecisionPublisher, GoalStateEnvelope, Status } from '../../shared/index.js';

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

export function createJetStreamDecisionPublisher(
  nc: NatsConnection,
  options: { timeoutMs?: number; writer?: () => string; publisher?: AsyncPublisher } = {},
): DecisionPublisher {
  const publisher =
    options.publisher ?? createAsyncPublisher(nc, { timeoutMs: options.timeoutMs ?? 10_000 });
  return {
    async goalStates(messages: readonly GoalStateEnvelope[]) {
      const writer = options.writer?.();
      const acks = await Promise.all(
        messages.map((m) =>
          publisher.publish(m.subject, encoder.encode(JSON.stringify(m.message)), {
            msgId: m.msgId,
            ...(writer ? { headers: writerHeaders(writer) } : {}),
          }),
        ),
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
