/**
 * Decisions out to JetStream: goal states to GOALSTATES and status to STATUS, each
 * with a `Nats-Msg-Id`, so that publishing again after a crash stores nothing twice
 * within the duplicate window (and receivers ignore what is older than they have).
 */
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import type { DecisionPublisher, GoalStateEnvelope, Status } from '../../shared/index.js';

const encoder = new TextEncoder();

/** Header naming the intent a status is about (for tools that filter STATUS). */
export const INTENT_ID_HEADER = 'Alcor-Intent-Id';

export function createJetStreamDecisionPublisher(
  nc: NatsConnection,
  options: { timeoutMs?: number } = {},
): DecisionPublisher {
  const js: JetStreamClient = jetstream(nc, { timeout: options.timeoutMs ?? 10_000 });
  return {
    async goalStates(messages: readonly GoalStateEnvelope[]) {
      const acks = await Promise.all(
        messages.map((m) =>
          js.publish(m.subject, encoder.encode(JSON.stringify(m.message)), { msgID: m.msgId }),
        ),
      );
      const duplicates = acks.filter((a) => a.duplicate).length;
      return { stored: acks.length - duplicates, duplicates };
    },
    async status(subject: string, status: Status, msgId: string) {
      const h = headers();
      h.set(INTENT_ID_HEADER, status.intentId);
      await js.publish(subject, encoder.encode(JSON.stringify(status)), {
        msgID: msgId,
        headers: h,
      });
    },
  };
}
