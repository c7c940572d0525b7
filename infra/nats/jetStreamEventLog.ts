/**
 * EventLog on JetStream: one subject per VPC (`evt.<vpcId>`) in stream EVENTS, so
 * per-VPC order, compare-and-set (`Nats-Expected-Last-Subject-Sequence`) and
 * per-VPC replay are native operations. `Nats-Msg-Id` = `<vpcId>:<intentId>` makes
 * a re-sent append a no-op that returns the first revision. The id is scoped to the
 * VPC because the stream deduplicates across all its subjects: with the bare intent
 * id, a commit of another VPC that used the same id within the duplicate window
 * was taken for this one, and this VPC's commit was never written (found by the
 * bad-input fuzzer).
 */
import {
  DeliverPolicy,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { writerHeaders } from './decisionPublisher.js';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  AlcorError,
  streams,
  subjects,
  type AppendResult,
  type EventCommit,
  decodeEventCommit,
  type EventLog,
  type LogEntry,
} from '../../shared/index.js';

/** JSStreamWrongLastSequenceErr: the subject's last sequence is not the expected one. */
const WRONG_LAST_SEQUENCE = 10071;

const encoder = new TextEncoder();

/** The `Nats-Msg-Id` of a commit in EVENTS: unique per VPC, as intent ids are. */
export const eventMsgId = (vpcId: string, intentId: string): string => `${vpcId}:${intentId}`;

export async function createJetStreamEventLog(
  nc: NatsConnection,
  options: { stream?: string; writer?: () => string } = {},
): Promise<EventLog> {
  const stream = options.stream ?? streams.events;
  const js: JetStreamClient = jetstream(nc);
  const jsm: JetStreamManager = await jetstreamManager(nc);

  const lastRevision = async (vpcId: string): Promise<number> => {
    const last = await jsm.direct.getMessage(stream, { last_by_subj: subjects.event(vpcId) });
    return last?.seq ?? 0;
  };

  return {
    lastRevision,

    async append(
      vpcId: string,
      commit: EventCommit,
      expectedRevision: number,
    ): Promise<AppendResult> {
      if (commit.vpcId !== vpcId) {
        throw new AlcorError(
          'wrong_stream',
          `a commit of ${commit.vpcId} cannot go to evt.${vpcId}`,
        );
      }
      try {
        const ack = await js.publish(
          subjects.event(vpcId),
          encoder.encode(JSON.stringify(commit)),
          {
            msgID: eventMsgId(vpcId, commit.intentId),
            expect: { lastSubjectSequence: expectedRevision },
            ...(options.writer ? { headers: writerHeaders(options.writer()) } : {}),
          },
        );
        return ack.duplicate
          ? { type: 'duplicate', revision: ack.seq }
          : { type: 'appended', revision: ack.seq };
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE)
          return { type: 'conflict' };
        throw err;
      }
    },

    async *read(vpcId: string, afterRevision: number): AsyncIterable<LogEntry<EventCommit>> {
      const last = await lastRevision(vpcId);
      if (last <= afterRevision) return;
      const consumer = await js.consumers.get(stream, {
        filter_subjects: subjects.event(vpcId),
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: afterRevision + 1,
      });
      const messages = await consumer.consume({ max_messages: 1024 });
      try {
        for await (const m of messages) {
          const commit = decodeEventCommit(vpcId, m.data);
          yield commit.ok
            ? { revision: m.seq, commit: commit.value }
            : { revision: m.seq, skipped: commit.error };
          if (m.info.pending === 0 && m.seq >= last) break;
        }
      } finally {
        await messages.close();
      }
    },
  };
}
