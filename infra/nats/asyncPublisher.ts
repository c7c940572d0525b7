/**
 * JetStream publishes without a request per message: each publish carries a reply
 * subject under one inbox subscription of the publisher's, the server's ack is
 * routed back by its last token, and one sweep times out what was not answered.
 * The client library's `js.publish` makes a request — a timer, a mux entry and, on
 * completion, an error object — per message, which profiled at about a quarter of
 * the controller's busy time. Order is kept: publishes leave in the order they are
 * made, on one connection.
 *
 * At most `maxInFlightBytes` (and `maxInFlight` messages) wait for their acks;
 * publishes beyond that wait their turn here, in order. nats-server refuses what
 * comes in faster than a stream takes it (429 "too many requests" once a stream's
 * ingest queue holds 128 MiB or 100,000 messages) while it goes on storing what
 * comes after: a publisher that outran it found its refused messages stored behind
 * later ones when it sent them again, and a host's deltas out of order.
 */
import {
  createInbox,
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/transport-node';
import { AlcorError } from '../../shared/index.js';

export interface PubAckInfo {
  stream: string;
  seq: number;
  duplicate: boolean;
}

/** The server refused a publish (its JetStream API error), or nobody took it. */
export class PublishRejectedError extends AlcorError {
  constructor(
    readonly subject: string,
    /** JetStream's `err_code` (10071: wrong last sequence), 503 for no responders, 408 timeout. */
    readonly errCode: number,
    message: string,
  ) {
    super('publish_rejected', `${subject}: ${message}`, { retryable: errCode !== 10071 });
  }
}

/** JSStreamWrongLastSequenceErr: the subject's last sequence is not the expected one. */
export const WRONG_LAST_SEQUENCE = 10071;

export interface PublishOptions {
  msgId?: string;
  /** Nats-Expected-Last-Subject-Sequence: the compare-and-set on the subject. */
  expectLastSubjectSequence?: number;
  headers?: MsgHdrs;
}

export interface AsyncPublisher {
  publish(subject: string, data: Uint8Array, options?: PublishOptions): Promise<PubAckInfo>;
  /** Publishes waiting for their ack. */
  pending(): number;
  close(): void;
}

interface Waiting {
  subject: string;
  at: number;
  resolve: (ack: PubAckInfo) => void;
  reject: (err: Error) => void;
}

const decoder = new TextDecoder();

/** Bytes waiting for their acks, at most (a larger message goes alone). */
export const MAX_IN_FLIGHT_BYTES = 16 * 1024 * 1024;
const MAX_IN_FLIGHT = 16_384;

interface Queued {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
  resolve: (ack: PubAckInfo) => void;
  reject: (err: Error) => void;
}

export function createAsyncPublisher(
  nc: NatsConnection,
  options: {
    timeoutMs?: number;
    inboxPrefix?: string;
    maxInFlightBytes?: number;
    maxInFlight?: number;
  } = {},
): AsyncPublisher {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBytes = options.maxInFlightBytes ?? MAX_IN_FLIGHT_BYTES;
  const maxCount = options.maxInFlight ?? MAX_IN_FLIGHT;
  const prefix = createInbox(options.inboxPrefix);
  const waiting = new Map<number, Waiting & { bytes: number }>();
  const queued: Queued[] = [];
  let inFlightBytes = 0;
  let closed = false;
  let next = 0;

  /** Sends one publish now; its ack settles it. */
  const send = (q: Queued): void => {
    const id = ++next;
    waiting.set(id, {
      subject: q.subject,
      at: Date.now(),
      resolve: q.resolve,
      reject: q.reject,
      bytes: q.data.length,
    });
    inFlightBytes += q.data.length;
    try {
      nc.publish(q.subject, q.data, {
        reply: `${prefix}.${id}`,
        ...(q.headers ? { headers: q.headers } : {}),
      });
    } catch (err) {
      forget(id);
      q.reject(err instanceof Error ? err : new Error(String(err)));
    }
  };
  const roomFor = (bytes: number): boolean =>
    waiting.size === 0 || (inFlightBytes + bytes <= maxBytes && waiting.size < maxCount);
  /** Sends what waits here, in order, while there is room. */
  const pump = (): void => {
    while (queued.length > 0 && !closed && roomFor(queued[0]!.data.length)) send(queued.shift()!);
  };
  const forget = (id: number): (Waiting & { bytes: number }) | undefined => {
    const w = waiting.get(id);
    if (!w) return undefined;
    waiting.delete(id);
    inFlightBytes -= w.bytes;
    return w;
  };

  const settle = (m: Msg): void => {
    const id = Number(m.subject.slice(prefix.length + 1));
    const w = forget(id);
    if (!w) return; // timed out already
    pump();
    if (m.headers?.hasError && m.data.length === 0) {
      w.reject(
        new PublishRejectedError(
          w.subject,
          m.headers.code,
          m.headers.description || 'no responders',
        ),
      );
      return;
    }
    let ack: {
      stream?: string;
      seq?: number;
      duplicate?: boolean;
      error?: { err_code?: number; code?: number; description?: string };
    };
    try {
      ack = JSON.parse(decoder.decode(m.data)) as typeof ack;
    } catch {
      w.reject(new PublishRejectedError(w.subject, 0, 'an ack that is not JSON'));
      return;
    }
    if (ack.error) {
      w.reject(
        new PublishRejectedError(
          w.subject,
          ack.error.err_code ?? ack.error.code ?? 0,
          ack.error.description ?? 'refused',
        ),
      );
      return;
    }
    w.resolve({ stream: ack.stream ?? '', seq: ack.seq ?? 0, duplicate: ack.duplicate === true });
  };
  const sub = nc.subscribe(`${prefix}.*`, {
    callback: (err, m) => {
      if (!err) settle(m);
    },
  });
  const sweep = setInterval(
    () => {
      const before = Date.now() - timeoutMs;
      for (const [id, w] of waiting) {
        if (w.at > before) break; // in order of publishing
        forget(id);
        w.reject(new PublishRejectedError(w.subject, 408, `no ack within ${timeoutMs} ms`));
      }
      pump();
    },
    Math.min(1000, timeoutMs),
  );
  sweep.unref();

  return {
    publish(subject, data, opts = {}) {
      return new Promise<PubAckInfo>((resolve, reject) => {
        if (closed) return reject(new PublishRejectedError(subject, 503, 'publisher closed'));
        let h = opts.headers;
        if (opts.msgId !== undefined || opts.expectLastSubjectSequence !== undefined) {
          h ??= natsHeaders();
          if (opts.msgId !== undefined) h.set('Nats-Msg-Id', opts.msgId);
          if (opts.expectLastSubjectSequence !== undefined)
            h.set('Nats-Expected-Last-Subject-Sequence', String(opts.expectLastSubjectSequence));
        }
        const q: Queued = { subject, data, headers: h, resolve, reject };
        // Behind what waits already, or now if there is room.
        if (queued.length === 0 && roomFor(data.length)) send(q);
        else queued.push(q);
      });
    },
    pending: () => waiting.size + queued.length,
    close() {
      closed = true;
      clearInterval(sweep);
      sub.unsubscribe();
      for (const w of waiting.values())
        w.reject(new PublishRejectedError(w.subject, 503, 'publisher closed'));
      waiting.clear();
      inFlightBytes = 0;
      for (const q of queued.splice(0))
        q.reject(new PublishRejectedError(q.subject, 503, 'publisher closed'));
    },
  };
}
