/**
 * Reading a stretch of a stream for replay and tracing: direct batch gets over one
 * or more subjects, from a sequence or a time, up to what the stream held when the
 * read began (it never waits for new messages). Direct gets read without making a
 * consumer, so a reader needs no right to create or change one (the read-only
 * `operator` role reads this way), and leaves nothing behind on the server. Every
 * stream of this system allows direct gets; one that does not is refused.
 */
import { JetStreamError, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
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

/** Messages per direct batch request. */
const PAGE = 1000;

export async function* readStreamRange(
  nc: NatsConnection,
  stream: string,
  range: ReadRange = {},
): AsyncGenerator<StreamRecord> {
  const filters = range.filter === undefined ? ['>'] : [range.filter].flat();
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  const last = Math.min(range.toSeq ?? Infinity, info.state.last_seq);
  if (info.state.messages === 0 || last < (range.fromSeq ?? 0)) return;
  const start =
    range.fromSeq !== undefined
      ? { seq: Math.max(1, range.fromSeq) }
      : range.fromTime
        ? { start_time: range.fromTime.toISOString() }
        : { seq: 1 };
  if (!info.config.allow_direct)
    throw new Error(
      `stream ${stream} does not allow direct gets (allow_direct): it cannot be read here`,
    );
  const readers = filters.map((f) => pages(jsm, stream, f, start, last));
  if (readers.length === 1) {
    yield* readers[0]!;
    return;
  }
  // Several filters: each read in order, merged by sequence (a message matching
  // two of them is given once).
  const heads = await Promise.all(readers.map((r) => r.next()));
  let previous = 0;
  for (;;) {
    let at = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      if (!h.done && (at < 0 || h.value.seq < (heads[at]!.value as StreamRecord).seq)) at = i;
    }
    if (at < 0) return;
    const record = heads[at]!.value as StreamRecord;
    heads[at] = await readers[at]!.next();
    if (record.seq === previous) continue;
    previous = record.seq;
    yield record;
  }
}

/** One filter's messages in order, a page at a time, up to `last`. */
async function* pages(
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  start: { seq: number } | { start_time: string },
  last: number,
): AsyncGenerator<StreamRecord> {
  let from = start;
  for (;;) {
    let got = 0;
    let seq = 0;
    try {
      const batch = await jsm.direct.getBatch(stream, {
        ...from,
        next_by_subj: filter,
        batch: PAGE,
      });
      for await (const m of batch) {
        if (m.seq > last) return;
        got += 1;
        seq = m.seq;
        yield {
          subject: m.subject,
          seq: m.seq,
          time: m.time,
          msgId: m.header?.get('Nats-Msg-Id') || undefined,
          headers: m.header,
          data: m.data,
        };
        if (m.seq === last) return;
      }
    } catch (err) {
      // 404: no (more) message on the filter from there.
      if (err instanceof JetStreamError && (err as { code?: number }).code === 404) return;
      throw err;
    }
    if (got === 0) return;
    from = { seq: seq + 1 };
  }
}
