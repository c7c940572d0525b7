/**
 * Reading a stretch of a stream for replay and tracing: an ordered consumer over
 * one or more subjects, from a sequence or a time, up to what the stream held when
 * the read began (it never waits for new messages).
 */
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';

export interface StreamRecord {
  subject: string;
  seq: number;
  /** When the stream stored it. */
  time: Date;
  msgId: string | undefined;
  headers: MsgHdrs | undefined;
  data: Uint8Array;
}

export interface ReadRange {
  filter?: string | string[];
  /** First sequence to read (inclusive). */
  fromSeq?: number;
  /** Or the first time to read (inclusive); ignored with fromSeq. */
  fromTime?: Date;
  /** Stop after this sequence (inclusive). */
  toSeq?: number;
}

export async function* readStreamRange(
  nc: NatsConnection,
  stream: string,
  range: ReadRange = {},
): AsyncGenerator<StreamRecord> {
  const filters = range.filter === undefined ? [] : [range.filter].flat();
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  const last = Math.min(range.toSeq ?? Infinity, info.state.last_seq);
  if (info.state.messages === 0 || last < (range.fromSeq ?? 0)) return;
  const start =
    range.fromSeq !== undefined
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, range.fromSeq) }
      : range.fromTime
        ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: range.fromTime.toISOString() }
        : { deliver_policy: DeliverPolicy.All };
  const consumer = await jetstream(nc).consumers.get(stream, {
    ...start,
    ...(filters.length > 0 ? { filter_subjects: filters } : {}),
  });
  // Nothing to read: return at once (consuming would wait for a first message).
  if ((await consumer.info()).num_pending === 0) return;
  const messages = await consumer.consume({ max_messages: 4096 });
  try {
    for await (const m of messages) {
      if (m.seq > last) break;
      yield {
        subject: m.subject,
        seq: m.seq,
        time: m.time,
        msgId: m.headers?.get('Nats-Msg-Id') || undefined,
        headers: m.headers,
        data: m.data,
      };
      if (m.info.pending === 0 || m.seq === last) break;
    }
  } finally {
    await messages.close();
  }
}
