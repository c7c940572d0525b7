/**
 * Intake of stream INTENTS (DESIGN §2): one durable pull consumer per controller
 * run, filtered on the `intent.<bucket>.*` subjects of the buckets it works. A
 * measured choice (docs/performance.md, intake): one consumer per bucket — 1,024
 * of them — cuts the server's publish rate to 0.13× and its backlog rate to 0.06×,
 * because the server's work per message grows with the number of consumers; one
 * consumer per instance keeps both near the raw rate.
 *
 * The consumer is created delivering only new messages and its filter follows the
 * buckets the controller acquires and releases; what a bucket held before it was
 * acquired is read by `scanBuckets` from the floor its handoff record gives. The
 * name carries the run's incarnation, so a successor can read a dead run's ack
 * floor; the server deletes it after `inactiveMs` without pulls.
 *
 * Deliveries carry the intents: the VPC's lane decides them in the order they
 * come (the stream's), and reads the stream back only to fill a gap — a sequence
 * it was woken for without a body, or after deliveries may have been lost on the
 * way (`onTrouble`: a jump in the consumer's delivery sequence, a consumer
 * notification that something went missing). A delivery is acked once its intent
 * is decided; unacked ones come back after `ack_wait`. `max_ack_pending` bounds
 * what is in flight: back-pressure stays in the server.
 */
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  JetStreamError,
  jetstream,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
  type StoredMsg,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { AlcorError, streams, subjects } from '../../shared/index.js';

export interface IntakeOptions {
  stream?: string;
  ackWaitMs?: number;
  maxAckPending?: number;
  /** Deliveries buffered per pull. */
  batch?: number;
  /** The server deletes the durable after this long without pulls. */
  inactiveMs?: number;
  /** What a new durable delivers: new messages (default; scans cover the past) or all. */
  deliver?: 'new' | 'all';
}

const DEFAULTS = {
  stream: streams.intents,
  ackWaitMs: 60_000,
  maxAckPending: 10_000,
  batch: 1024,
  inactiveMs: 120_000,
};

/** A filter that matches no intent: the consumer of a run that works no bucket. */
const NO_BUCKET = 'intent._none_._none_';

/** The durable of one controller run: `intake-<instance>-<incarnation>`. */
export const intakeDurable = (instanceId: string, incarnation: string): string =>
  `intake-${instanceId}-${incarnation}`;

const filtersFor = (buckets: Iterable<number>): string[] => {
  const sorted = [...new Set(buckets)].sort((a, b) => a - b);
  return sorted.length === 0 ? [NO_BUCKET] : sorted.map(subjects.intentBucketFilter);
};

/** Creates the run's durable (new messages only) filtered on `buckets`. */
export async function createIntakeConsumer(
  jsm: JetStreamManager,
  name: string,
  buckets: Iterable<number>,
  options: IntakeOptions = {},
): Promise<void> {
  await jsm.consumers.add(options.stream ?? DEFAULTS.stream, {
    name,
    durable_name: name,
    filter_subjects: filtersFor(buckets),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: options.deliver === 'all' ? DeliverPolicy.All : DeliverPolicy.New,
    ack_wait: (options.ackWaitMs ?? DEFAULTS.ackWaitMs) * 1_000_000,
    max_ack_pending: options.maxAckPending ?? DEFAULTS.maxAckPending,
    max_deliver: -1,
    inactive_threshold: (options.inactiveMs ?? DEFAULTS.inactiveMs) * 1_000_000,
  });
}

/**
 * Points the durable at `buckets`. Messages of an added bucket stored before the
 * update are not delivered (scan them); a removed bucket's deliveries already on
 * their way still arrive.
 */
export async function setIntakeBuckets(
  jsm: JetStreamManager,
  name: string,
  buckets: Iterable<number>,
  options: IntakeOptions = {},
): Promise<void> {
  const stream = options.stream ?? DEFAULTS.stream;
  await jsm.consumers.update(stream, name, { filter_subjects: filtersFor(buckets) });
}

/**
 * The durable's ack floor (every delivery at or below it acked), or undefined if it
 * is gone. With `bucket`: undefined too when the durable no longer takes that
 * bucket — the floor then moves past the bucket's intents it was never delivered.
 */
export async function intakeAckFloor(
  jsm: JetStreamManager,
  name: string,
  options: IntakeOptions & { bucket?: number } = {},
): Promise<number | undefined> {
  try {
    const info = await jsm.consumers.info(options.stream ?? DEFAULTS.stream, name);
    if (options.bucket !== undefined) {
      const filters = info.config.filter_subjects ?? [info.config.filter_subject ?? ''];
      if (!filters.includes(subjects.intentBucketFilter(options.bucket))) return undefined;
    }
    return info.ack_floor.stream_seq;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.status === 404) return undefined;
    throw err;
  }
}

/**
 * A replica heard from within this long: the leader that reports it still has its
 * quorum (raft followers answer its heartbeat every second; a new leader is
 * elected only after four seconds without one).
 */
const QUORUM_HEARD_NS = 3_000_000_000;
const LEADER_RETRY_MS = 500;
/** How long to wait for a leader that holds its quorum (a deposed one answers for up to ten seconds). */
const LEADER_WAIT_MS = 20_000;

/** A read of a stream answered by a copy behind a sequence known to be stored: read again. */
export class StaleReadError extends AlcorError {
  constructor(message: string) {
    super('stale_read', message, { retryable: true });
  }
}

/**
 * The stream's last sequence, from a leader that holds its quorum. A leader cut
 * off by a partition keeps answering as leader until it steps down (up to ten
 * seconds), with a stream a new leader has since written past: an answer from
 * one whose replicas it has not heard from lately is asked again.
 */
export async function streamLastSeq(jsm: JetStreamManager, stream: string): Promise<number> {
  const deadline = Date.now() + LEADER_WAIT_MS;
  for (;;) {
    const info = await jsm.streams.info(stream);
    const replicas = info.cluster?.replicas ?? [];
    const heard = replicas.filter((r) => !r.offline && r.active < QUORUM_HEARD_NS).length;
    if (2 * (heard + 1) > replicas.length + 1) return info.state.last_seq;
    if (Date.now() > deadline)
      throw new StaleReadError(
        `${stream}: its leader ${info.cluster?.leader ?? '?'} has not heard from its replicas lately (a partition?); its last sequence may be behind`,
      );
    await new Promise((r) => setTimeout(r, LEADER_RETRY_MS));
  }
}

/**
 * Every intent stored in the given buckets after each one's floor: bucket, VPC
 * token and sequence. One sweep of direct batch gets over `intent.*.*` from the
 * lowest floor to the end of the stream (one request per page, whatever the number
 * of buckets; the tail after a handoff floor is short). The end is the last
 * sequence of a leader that holds its quorum; a page that ends before it (a
 * replica behind) is continued from the leader, and a sweep that cannot reach it
 * fails rather than end short.
 */
export async function scanBuckets(
  jsm: JetStreamManager,
  floors: ReadonlyMap<number, number>,
  onIntent: (bucket: number, vpcToken: string, seq: number) => void,
  options: IntakeOptions & { pageSize?: number } = {},
): Promise<number> {
  if (floors.size === 0) return 0;
  const stream = options.stream ?? DEFAULTS.stream;
  const subject = 'intent.*.*';
  // The end as the stream leader knows it (every acknowledged intent is at or below).
  const last = await streamLastSeq(jsm, stream);
  let after = Math.min(...floors.values());
  let found = 0;
  const take = (m: { seq: number; subject: string }): void => {
    after = m.seq;
    const first = m.subject.indexOf('.');
    const second = m.subject.indexOf('.', first + 1);
    const bucket = Number(m.subject.slice(first + 1, second));
    const floor = floors.get(bucket);
    if (floor === undefined || m.seq <= floor) return;
    onIntent(bucket, m.subject.slice(second + 1), m.seq);
    found += 1;
  };
  for (;;) {
    const page = await directPage(jsm, stream, subject, after, options.pageSize ?? 1000);
    for (const m of page) take(m);
    if (page.length > 0) continue;
    if (after >= last) return found;
    // Any replica answers a direct get, and one catching up (back after a loss)
    // ends early: the next intent from the leader, then direct pages again.
    const next = await leaderNext(jsm, stream, subject, after);
    if (!next)
      throw new StaleReadError(
        `${stream}: the copy that answered ends at ${after}, before ${last}; scan again`,
      );
    take(next);
  }
}

/**
 * The next message on `subject` after sequence `after`, from the stream leader
 * (STREAM.MSG.GET): every acknowledged message, where a direct get may be answered
 * by a replica that is behind. Null if there is none.
 */
export function leaderNext(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  after: number,
): Promise<StoredMsg | null> {
  // The server's STREAM.MSG.GET takes next_by_subj; the client's type lacks it.
  return jsm.streams.getMessage(stream, {
    seq: after + 1,
    next_by_subj: subject,
  } as unknown as { seq: number });
}

/** Up to `max` messages on `subject` (may hold wildcards) after sequence `after`. */
export async function directPage(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  after: number,
  max: number,
): Promise<Array<{ seq: number; subject: string; data: Uint8Array; time: Date }>> {
  const batch = await jsm.direct.getBatch(stream, {
    seq: after + 1,
    next_by_subj: subject,
    batch: max,
  });
  const out: Array<{ seq: number; subject: string; data: Uint8Array; time: Date }> = [];
  try {
    for await (const m of batch)
      out.push({ seq: m.seq, subject: m.subject, data: m.data, time: m.time });
  } catch (err) {
    // 404: no (more) message on the subject after that sequence.
    if (!(err instanceof JetStreamError && (err as { code?: number }).code === 404)) throw err;
  }
  return out;
}

/** One intake delivery: the bucket and VPC token from the subject, the intent as stored. */
export interface IntakeDelivery {
  bucket: number;
  /** The subject's last token; not checked (a client may publish any token). */
  vpcToken: string;
  subject: string;
  seq: number;
  data: Uint8Array;
  /** When the stream stored it, ISO 8601. */
  time: string;
  deliveryCount: number;
  /** Messages left in the consumer after this one (its lag, as the server saw it). */
  pending: number;
  ack: () => void;
  nak: (delayMs?: number) => void;
  term: (reason: string) => void;
}

export interface Intake {
  stop: () => Promise<void>;
}

/**
 * When the stream stored a delivered message, to the millisecond, exactly as a
 * direct get of it says (`Nats-Time-Stamp`, truncated). The client's `m.time`
 * divides the nanoseconds as a float and is now and then a millisecond later, so
 * a replay from the stream would decide an intent with another `at`; the exact
 * nanoseconds are a BigInt.
 */
export function storedAt(m: JsMsg): string {
  return new Date(Number(m.timestampNanos / 1_000_000n)).toISOString();
}

/**
 * How long a pull stays open. The server sends idle heartbeats every half of it,
 * and two missed (the consumer's leader lost with its node) make the client pull
 * again, from the new leader: with the client's default (30 s) an intake or a
 * relay stood still for half a minute after a NATS node was lost.
 */
export const PULL_EXPIRES_MS = 5_000;

/** Consumer notifications after which deliveries may have been lost on the way. */
export const CONSUMER_TROUBLE: ReadonlySet<string> = new Set([
  'heartbeats_missed',
  'consumer_not_found',
  'stream_not_found',
  'consumer_deleted',
  'no_responders',
  'reset',
]);

/**
 * Consumes the run's durable (create it first with createIntakeConsumer).
 * `onTrouble` is called when deliveries may have been lost: the consumer's
 * delivery sequence jumped, or a notification says so.
 */
export async function consumeIntake(
  nc: NatsConnection,
  name: string,
  onDelivery: (delivery: IntakeDelivery) => void,
  options: IntakeOptions & { onTrouble?: (why: string) => void } = {},
): Promise<Intake> {
  // A server busy catching consumers up on a backlog answers API requests late.
  const js = jetstream(nc, { timeout: 30_000 });
  const consumer = await js.consumers.get(options.stream ?? DEFAULTS.stream, name);
  let lastDelivery = 0;
  const messages: ConsumerMessages = await consumer.consume({
    max_messages: options.batch ?? DEFAULTS.batch,
    expires: PULL_EXPIRES_MS,
    callback: (m: JsMsg) => {
      const delivered = m.info.deliverySequence;
      if (lastDelivery > 0 && delivered > lastDelivery + 1)
        options.onTrouble?.(`delivery sequence jumped from ${lastDelivery} to ${delivered}`);
      lastDelivery = Math.max(lastDelivery, delivered);
      const first = m.subject.indexOf('.');
      const second = m.subject.indexOf('.', first + 1);
      onDelivery({
        bucket: Number(m.subject.slice(first + 1, second)),
        vpcToken: m.subject.slice(second + 1),
        subject: m.subject,
        seq: m.seq,
        data: m.data,
        time: storedAt(m),
        deliveryCount: m.info.deliveryCount,
        pending: m.info.pending,
        ack: () => m.ack(),
        nak: (delayMs) => m.nak(delayMs),
        term: (reason) => m.term(reason),
      });
    },
  });
  void (async () => {
    for await (const n of messages.status())
      if (CONSUMER_TROUBLE.has(n.type)) options.onTrouble?.(n.type);
  })();
  return {
    stop: async () => {
      await messages.close();
    },
  };
}
