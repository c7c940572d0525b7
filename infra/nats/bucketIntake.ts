/**
 * Intake of stream INTENTS by bucket (DESIGN §2): one durable pull consumer per
 * bucket, filtered on `intent.<bucket>.*`. Its name belongs to the bucket, not to
 * the instance, so the ack floor moves with the bucket when ownership changes.
 *
 * Deliveries are headers-only: they only say "VPC v has an intent at sequence s";
 * the VPC actor reads the intents themselves from the stream in order from its
 * cursor. A delivery is acked once the actor has handled its sequence; unacked
 * ones come back after `ack_wait` (the crash case). `max_ack_pending` bounds how
 * much each bucket has in flight: back-pressure stays in the server.
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
import { ConfigMismatchError, streams, subjects } from '../../shared/index.js';

export interface IntakeOptions {
  stream?: string;
  /** Durable name prefix; the bucket number is appended. */
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
  maxAckPending: 1000,
  batch: 256,
};

export function intakeDurable(bucket: number, options: IntakeOptions = {}): string {
  return `${options.durablePrefix ?? DEFAULTS.durablePrefix}${bucket}`;
}

function consumerConfig(bucket: number, options: IntakeOptions): Partial<ConsumerConfig> {
  const name = intakeDurable(bucket, options);
  return {
    name,
    durable_name: name,
    filter_subject: subjects.intentBucketFilter(bucket),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: (options.ackWaitMs ?? DEFAULTS.ackWaitMs) * 1_000_000,
    max_ack_pending: options.maxAckPending ?? DEFAULTS.maxAckPending,
    max_deliver: -1,
    headers_only: true,
  };
}

/** Creates the bucket's durable consumer, or checks the one that exists. */
export async function ensureIntakeConsumer(
  jsm: JetStreamManager,
  bucket: number,
  options: IntakeOptions = {},
): Promise<string> {
  const stream = options.stream ?? DEFAULTS.stream;
  const config = consumerConfig(bucket, options);
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
  if (info.config.filter_subject !== config.filter_subject) {
    throw new ConfigMismatchError(`consumer ${stream}/${name}`, [
      `filter ${info.config.filter_subject} ≠ declared ${config.filter_subject}`,
    ]);
  }
  if (info.num_ack_pending > 0) await takeOver(jsm, stream, name);
  return name;
}

/**
 * The bucket's previous owner left deliveries unacked (it crashed, or handed the
 * bucket over): restart delivery from the ack floor now instead of after
 * `ack_wait` (consumer reset, nats-server 2.14+; older servers redeliver after
 * ack_wait). Deliveries only wake actors, so a repeat is harmless.
 */
async function takeOver(jsm: JetStreamManager, stream: string, name: string): Promise<void> {
  try {
    await jsm.consumers.reset(stream, name);
  } catch {
    // Not supported by this server: the pending deliveries come back after ack_wait.
  }
}

/** One intake delivery: the VPC token from the subject and the stream sequence. */
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

export interface BucketIntake {
  bucket: number;
  stop: () => Promise<void>;
}

export async function consumeBucket(
  nc: NatsConnection,
  bucket: number,
  onDelivery: (delivery: IntakeDelivery) => void,
  options: IntakeOptions = {},
): Promise<BucketIntake> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(
    options.stream ?? DEFAULTS.stream,
    intakeDurable(bucket, options),
  );
  const messages: ConsumerMessages = await consumer.consume({
    max_messages: options.batch ?? DEFAULTS.batch,
    callback: (m: JsMsg) => {
      onDelivery({
        bucket,
        vpcToken: m.subject.slice(m.subject.indexOf('.', m.subject.indexOf('.') + 1) + 1),
        seq: m.seq,
        deliveryCount: m.info.deliveryCount,
        ack: () => m.ack(),
        nak: (delayMs) => m.nak(delayMs),
        term: (reason) => m.term(reason),
      });
    },
  });
  return {
    bucket,
    stop: async () => {
      await messages.close();
    },
  };
}
