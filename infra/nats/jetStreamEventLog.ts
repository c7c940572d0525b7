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
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import {
  PublishRejectedError,
  WRONG_LAST_SEQUENCE,
  createAsyncPublisher,
  type AsyncPublisher,
} from './asyncPublisher.js';
import { directPage } from './bucketIntake.js';
import { writerHeaders } from './decisionPublisher.js';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  AlcorError,
  streams,
  subjects,
  type AppendResult,
  type EventCommit,
  decodeEventMessage,
  encodeEventMessage,
  type EventLog,
  type LogEntry,
} from '../../shared/index.js';

const encoder = new TextEncoder();
/** Messages per direct batch get when a VPC's log is read. */
const READ_PAGE = 512;

/**
 * The `Nats-Msg-Id` of an EVENTS message: of one commit, `<vpc>:<intentId>` (unique
 * per VPC, as intent ids are); of a group, its first and last commits' INTENTS
 * sequences (unique to that group).
 */
export function eventMsgId(vpcId: string, commits: readonly EventCommit[]): string {
  if (commits.length === 1) return `${vpcId}:${commits[0]!.intentId}`;
  return `${vpcId}:group:${commits[0]!.cursor}-${commits.at(-1)!.cursor}`;
}

export async function createJetStreamEventLog(
  nc: NatsConnection,
  options: { stream?: string; writer?: () => string; publisher?: AsyncPublisher } = {},
): Promise<EventLog> {
  const stream = options.stream ?? streams.events;
  const publisher = options.publisher ?? createAsyncPublisher(nc);
  const jsm: JetStreamManager = await jetstreamManager(nc);

  const lastRevision = async (vpcId: string): Promise<number> => {
    const last = await jsm.direct.getMessage(stream, { last_by_subj: subjects.event(vpcId) });
    return last?.seq ?? 0;
  };

  return {
    lastRevision,

    async append(
      vpcId: string,
      commits: readonly EventCommit[],
      expectedRevision: number,
    ): Promise<AppendResult> {
      const first = commits[0];
      if (!first) throw new AlcorError('empty_group', `no commit to append to evt.${vpcId}`);
      const other = commits.find((c) => c.vpcId !== vpcId);
      if (other) {
        throw new AlcorError(
          'wrong_stream',
          `a commit of ${other.vpcId} cannot go to evt.${vpcId}`,
        );
      }
      try {
        const ack = await publisher.publish(
          subjects.event(vpcId),
          encoder.encode(encodeEventMessage(commits)),
          {
            msgId: eventMsgId(vpcId, commits),
            expectLastSubjectSequence: expectedRevision,
            ...(options.writer ? { headers: writerHeaders(options.writer()) } : {}),
          },
        );
        return ack.duplicate
          ? { type: 'duplicate', revision: ack.seq }
          : { type: 'appended', revision: ack.seq };
      } catch (err) {
        if (err instanceof PublishRejectedError && err.errCode === WRONG_LAST_SEQUENCE)
          return { type: 'conflict' };
        throw err;
      }
    },

    async *read(vpcId: string, afterRevision: number): AsyncIterable<LogEntry<EventCommit>> {
      const subject = subjects.event(vpcId);
      const last = await lastRevision(vpcId);
      let after = afterRevision;
      while (after < last) {
        // Direct batch gets on the VPC's subject: no consumer to create per read.
        let page = await directPage(jsm, stream, subject, after, READ_PAGE);
        if (page.length === 0) {
          // A replica behind the one that gave `last`: go on from the stream leader.
          const m = await jsm.streams.getMessage(stream, {
            seq: after + 1,
            next_by_subj: subject,
          } as unknown as { seq: number });
          if (!m) return;
          page = [{ seq: m.seq, subject: m.subject, data: m.data, time: m.time }];
        }
        for (const m of page) {
          if (m.seq > last) return;
          const decoded = decodeEventMessage(vpcId, m.data);
          if (decoded.ok) for (const commit of decoded.value) yield { revision: m.seq, commit };
          else yield { revision: m.seq, skipped: decoded.error };
          after = m.seq;
        }
      }
    },
  };
}
