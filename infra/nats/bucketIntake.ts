/**
 * Intake of stream INTENTS (DESIGN §2): a durable pull consumer over a set of
 * buckets, filtered on their `intent.<bucket>.*` subjects. A controller runs one
 * for the buckets it owns. Measured (docs/performance.md, intake): one consumer
 * per bucket — 1,024 of them — cuts the server's publish rate to 0.13× and its
 * backlog rate to 0.06×, because the server's work per message grows with the
 * number of consumers; one consumer per instance keeps both near the raw rate.
 *
 * The durable's name is derived from the bucket set, so an instance restarted on
 * the same buckets (whatever its id) takes over the same ack floor.
 *
 * Deliveries are headers-only: they only say "VPC v has an intent at sequence s";
 * the VPC actor reads the intents themselves from the stream in order from its
 * cursor. A delivery is acked once the actor has handled its sequence; unacked
 * ones come back after `ack_wait` (or at once after a takeover, see below).
 * `max_ack_pending` bounds what is in flight: back-pressure stays in the server.
 */
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  jetstream,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { ConfigMismatchError, fnv1a32, streams, subjects } from '../../shared/index.js';

export interface IntakeOptions {
  stream?: string;
  /** Durable name prefix; a digest of the bucket set is appended. */
  durablePrefix?: string;
  ackWaitMs?: number;
  maxAckPending?: number;
  /** Deliveries buffered per pull. */
  batch?: number;
}

const DEFAULTS = {
  stream: streams.intents,
  durablePrefix: 'intake-',
  ackWaitMs: 60_000,
  maxAckPending: 10_000,
  batch: 1024,
};

/** The durable's name for a set of buckets: `intake-<count>-<fnv1a32 of the list>`. */
export function intakeDurable(buckets: readonly number[], options: IntakeOptions = {}): string {
  const sorted = [...new Set(buckets)].sort((a, b) => a - b);
  const digest = fnv1a32(new TextEncoder().encode(sorted.join(','))).toString(16);
  return `${options.durablePrefix ?? DEFAULTS.durablePrefix}${sorted.length}-${digest}`;
}

function consumerConfig(
  buckets: readonly number[],
  options: IntakeOptions,
): Partial<ConsumerConfig> {
  const name = intakeDurable(buckets, options);
  const filters = [...new Set(buckets)].sort((a, b) => a - b).map(subjects.intentBucketFilter);
  return {
    name,
    durable_name: name,
    ...(filters.length === 1 ? { filter_subject: filters[0]! } : { filter_subjects: filters }),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: (options.ackWaitMs ?? DEFAULTS.ackWaitMs) * 1_000_000,
    max_ack_pending: options.maxAckPending ?? DEFAULTS.maxAckPending,
    max_deliver: -1,
    headers_only: true,
  };
}

const filtersOf = (c: Partial<ConsumerConfig>): string =>
  JSON.stringify([...(c.filter_subjects ?? (c.filter_subject ? [c.filter_subject] : []))].sort());

/** Creates the bucket set's durable consumer, or checks the one that exists. */
export async function ensureIntakeConsumer(
  jsm: JetStreamManager,
  buckets: readonly number[],
  options: IntakeOptions = {},
): Promise<string> {
  const stream = options.stream ?? DEFAULTS.stream;
  const config = consumerConfig(buckets, options);
  const name = config.name!;
  let info: ConsumerInfo;
  try {
    info = await jsm.consumers.add(stream, config);
  } catch (err) {
    // Adding an identical consumer returns it; one that exists with other settings
    // (a tuned ack wait, say) is kept as it is, unless it filters something else.
    if (!(err instanceof JetStreamApiError)) throw err;
    info = await jsm.consumers.info(stream, name).catch(() => {
      throw err;
    });
  }
  if (filtersOf(info.config) !== filtersOf(config)) {
    throw new ConfigMismatchError(`consumer ${stream}/${name}`, [
      `filters ${filtersOf(info.config).slice(0, 200)} ≠ declared ${filtersOf(config).slice(0, 200)}`,
    ]);
  }
  if (info.num_ack_pending > 0) await takeOver(jsm, stream, name);
  return name;
}

/**
 * The previous owner left deliveries unacked (it crashed, or handed over):
 * restart delivery from the ack floor now instead of after `ack_wait` (consumer
 * reset, nats-server 2.14+; older servers redeliver after ack_wait). Deliveries
 * only wake actors, so a repeat is harmless.
 */
async function takeOver(jsm: JetStreamManager, stream: string, name: string): Promise<void> {
  try {
    await jsm.consumers.reset(stream, name);
  } catch {
    // Not supported by this server: the pending deliveries come back after ack_wait.
  }
}

/** One intake delivery: the bucket and VPC token from the subject, and the sequence. */
export interface IntakeDelivery {
  bucket: number;
  /** The subject's last token; not checked (a client may publish any token). */
  vpcToken: string;
  seq: number;
  deliveryCount: number;
  ack: () => void;
  nak: (delayMs?: number) => void;
  term: (reason: string) => void;
}

export interface Intake {
  stop: () => Promise<void>;
}

/** Consumes the bucket set's durable (create it first with ensureIntakeConsumer). */
export async function consumeIntake(
  nc: NatsConnection,
  buckets: readonly number[],
  onDelivery: (delivery: IntakeDelivery) => void,
  options: IntakeOptions = {},
): Promise<Intake> {
  // A server busy catching consumers up on a backlog answers API requests late.
  const js = jetstream(nc, { timeout: 30_000 });
  const consumer = await js.consumers.get(
    options.stream ?? DEFAULTS.stream,
    intakeDurable(buckets, options),
  );
  const messages: ConsumerMessages = await consumer.consume({
    max_messages: options.batch ?? DEFAULTS.batch,
    callback: (m: JsMsg) => {
      const first = m.subject.indexOf('.');
      const second = m.subject.indexOf('.', first + 1);
      onDelivery({
        bucket: Number(m.subject.slice(first + 1, second)),
        vpcToken: m.subject.slice(second + 1),
        seq: m.seq,
        deliveryCount: m.info.deliveryCount,
        ack: () => m.ack(),
        nak: (delayMs) => m.nak(delayMs),
        term: (reason) => m.term(reason),
      });
    },
  });
  return {
    stop: async () => {
      await messages.close();
    },
  };
}
