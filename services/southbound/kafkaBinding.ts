/**
 * One Kafka cluster binding: the cluster's single producer (idempotent, acks from
 * all in-sync replicas) driven by the binding machine (actors/southbound). Relays
 * call `send`, which resolves only once Kafka acknowledged every record — with the
 * offset Kafka gave each — and waits through outages: a failed produce degrades
 * the binding, and the same records are sent again, in the same order, once it is
 * ready.
 */
import { createActor, fromPromise, type Actor } from 'xstate';
import kafkajs, { type Message, type Producer } from 'kafkajs';
import { createKafkaClient, type KafkaClient, type Logger } from '../../infra/index.js';
import { southbound } from '../../actors/index.js';

export interface KafkaRecord {
  topic: string;
  partition: number;
  message: Message;
}

// kafkajs is CommonJS: its enums are not named ESM exports.
const { ConfigResourceTypes } = kafkajs;

/** Records in one produce request at most (several relays' sends together). */
const MAX_RECORDS_PER_PRODUCE = 8192;
/** The broker's message.max.bytes until it is read (Kafka's default). */
const DEFAULT_MESSAGE_MAX_BYTES = 1_048_588;
/** Room under message.max.bytes for a record batch's framing, the key and the headers. */
const RECORD_HEADROOM_BYTES = 2048;

interface QueuedSend {
  records: readonly KafkaRecord[];
  stillWanted: () => boolean;
  /** The records' offsets, in order; undefined when they were not all sent. */
  done: (offsets: string[] | undefined) => void;
}

export interface BindingMetrics {
  /** Records acknowledged. */
  produced: number;
  /** Produce requests acknowledged. */
  produces: number;
  produceErrors: number;
  reconnects: number;
}

export class KafkaBinding {
  readonly client: KafkaClient;
  readonly metrics: BindingMetrics = { produced: 0, produces: 0, produceErrors: 0, reconnects: 0 };
  private readonly queue: QueuedSend[] = [];
  private flushing = false;
  private producer: Producer | undefined;
  private readonly actor: Actor<southbound.KafkaBindingMachine>;
  private readyWaiters: Array<() => void> = [];
  private messageMaxBytes = DEFAULT_MESSAGE_MAX_BYTES;

  constructor(
    readonly clusterId: string,
    brokers: string[],
    clientId: string,
    private readonly logger: Logger,
  ) {
    this.client = createKafkaClient(clusterId, brokers, {
      clientId,
      logger,
      retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 },
      requestTimeout: 5000,
    });
    const machine = southbound.kafkaBindingMachine.provide({
      actors: {
        connect: fromPromise(async () => {
          const producer = this.client.kafka.producer({
            idempotent: true,
            maxInFlightRequests: 1,
            allowAutoTopicCreation: false,
            retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 },
          });
          try {
            await producer.connect();
            this.messageMaxBytes = await this.readMessageMaxBytes().catch((err: unknown) => {
              // Not allowed to read broker configs, or not now: Kafka's default.
              this.logger.warn(
                { kafkaCluster: clusterId, err },
                "message.max.bytes not read; assuming Kafka's default",
              );
              return DEFAULT_MESSAGE_MAX_BYTES;
            });
          } catch (err) {
            await producer.disconnect().catch(() => undefined);
            throw err;
          }
          this.producer = producer;
        }),
        disconnect: fromPromise(async () => {
          const producer = this.producer;
          this.producer = undefined;
          await producer?.disconnect().catch(() => undefined);
        }),
      },
    });
    this.actor = createActor(machine, { input: { clusterId } });
    let previous = '';
    this.actor.subscribe((snapshot) => {
      const state = String(snapshot.value);
      if (state === previous) return;
      if (state === 'degraded')
        this.logger.warn(
          {
            kafkaCluster: clusterId,
            error: snapshot.context.lastError,
            failures: snapshot.context.failures,
          },
          'Kafka binding degraded; its goal states wait in JetStream',
        );
      else if (state === 'ready' && previous !== '' && previous !== 'connecting') {
        this.logger.info({ kafkaCluster: clusterId }, 'Kafka binding ready');
      }
      if (state === 'ready') {
        if (previous === 'connecting' && this.metrics.produced > 0) this.metrics.reconnects += 1;
        const waiters = this.readyWaiters;
        this.readyWaiters = [];
        for (const w of waiters) w();
      }
      previous = state;
    });
    this.actor.start();
  }

  /**
   * The most bytes of goal state one record may carry on this cluster: the
   * brokers' message.max.bytes (read at each connect), less room for the framing.
   * A larger goal state goes as parts (services/southbound/records.ts).
   */
  get maxRecordBytes(): number {
    return Math.max(1024, this.messageMaxBytes - RECORD_HEADROOM_BYTES);
  }

  /** The smallest message.max.bytes of the cluster's brokers. */
  private async readMessageMaxBytes(): Promise<number> {
    const admin = this.client.kafka.admin();
    await admin.connect();
    try {
      const { brokers } = await admin.describeCluster();
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: brokers.map((b) => ({
          type: ConfigResourceTypes.BROKER,
          name: String(b.nodeId),
          configNames: ['message.max.bytes'],
        })),
      });
      const values = resources.flatMap((r) =>
        r.configEntries
          .map((e) => Number(e.configValue))
          .filter((n) => Number.isFinite(n) && n > 0),
      );
      return values.length > 0 ? Math.min(...values) : DEFAULT_MESSAGE_MAX_BYTES;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** connecting | ready | degraded | draining | stopped */
  get state(): string {
    return String(this.actor.getSnapshot().value);
  }

  /**
   * Resolves once every record is acknowledged by the cluster, with the offset
   * Kafka gave each (in the records' order; undefined if the send ended first:
   * the binding stopped, or `stillWanted` said no); retries through outages.
   * Sends from several relays that meet while a produce is in flight go out
   * together in the next one (one request per round trip, not per relay); a
   * relay's own sends stay in order because it awaits each.
   */
  send(
    records: readonly KafkaRecord[],
    stillWanted: () => boolean = () => true,
  ): Promise<string[] | undefined> {
    if (records.length === 0) return Promise.resolve([]);
    return new Promise<string[] | undefined>((done) => {
      this.queue.push({ records, stillWanted, done });
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const taken: QueuedSend[] = [];
        let count = 0;
        while (
          this.queue.length > 0 &&
          (taken.length === 0 || count + this.queue[0]!.records.length <= MAX_RECORDS_PER_PRODUCE)
        ) {
          const next = this.queue.shift()!;
          count += next.records.length;
          // A relay stopped meanwhile: its messages go to the partition's next owner.
          if (next.stillWanted()) taken.push(next);
          else next.done(undefined);
        }
        if (taken.length === 0) continue;
        const offsets = await this.produce(
          taken.flatMap((t) => t.records),
          () => taken.some((t) => t.stillWanted()),
        );
        let at = 0;
        for (const t of taken) {
          t.done(offsets?.slice(at, at + t.records.length));
          at += t.records.length;
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** The records' offsets in order, once all are acknowledged; undefined if not. */
  private async produce(
    records: readonly KafkaRecord[],
    stillWanted: () => boolean,
  ): Promise<string[] | undefined> {
    // A request carries one record batch per partition, and a batch may not pass
    // message.max.bytes: requests go one after another, each partition's records
    // in order, none taking more than the limit for a partition.
    const offsets: string[] = [];
    for (const request of this.requestsOf(records)) {
      const placed = await this.produceRequest(request, stillWanted);
      if (!placed) return undefined;
      offsets.push(...placed);
    }
    return offsets;
  }

  private requestsOf(records: readonly KafkaRecord[]): KafkaRecord[][] {
    const limit = this.messageMaxBytes - RECORD_HEADROOM_BYTES;
    const requests: KafkaRecord[][] = [];
    let current: KafkaRecord[] = [];
    let bytes = new Map<string, number>();
    for (const r of records) {
      const tp = `${r.topic}/${r.partition}`;
      const size = recordBytes(r);
      if (current.length > 0 && (bytes.get(tp) ?? 0) + size > limit) {
        requests.push(current);
        current = [];
        bytes = new Map();
      }
      current.push(r);
      bytes.set(tp, (bytes.get(tp) ?? 0) + size);
    }
    if (current.length > 0) requests.push(current);
    return requests;
  }

  private async produceRequest(
    records: readonly KafkaRecord[],
    stillWanted: () => boolean,
  ): Promise<string[] | undefined> {
    const byTopic = new Map<string, Message[]>();
    for (const r of records) {
      const list = byTopic.get(r.topic) ?? [];
      list.push({ ...r.message, partition: r.partition });
      byTopic.set(r.topic, list);
    }
    const topicMessages = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    while (stillWanted()) {
      const state = this.state;
      if (state === 'draining' || state === 'stopped') return undefined;
      const producer = this.producer;
      if (state !== 'ready' || !producer) {
        await new Promise<void>((resolve) => {
          this.readyWaiters.push(resolve);
          setTimeout(resolve, 1000);
        });
        continue;
      }
      try {
        const acked = await producer.sendBatch({ topicMessages, acks: -1 });
        this.metrics.produced += records.length;
        this.metrics.produces += 1;
        return offsetsOf(records, acked);
      } catch (err) {
        this.metrics.produceErrors += 1;
        if (this.producer === producer)
          this.actor.send({ type: 'FAILED', error: (err as Error).message });
      }
    }
    return undefined;
  }

  async stop(): Promise<void> {
    this.actor.send({ type: 'DRAIN' });
    await new Promise<void>((resolve) => {
      if (this.actor.getSnapshot().status === 'done') return resolve();
      this.actor.subscribe({ complete: resolve });
      setTimeout(resolve, 5000);
    });
    for (const w of this.readyWaiters) w();
    for (const q of this.queue.splice(0)) q.done(undefined);
  }
}

/**
 * Each record's offset from a produce's answer: per partition Kafka gives the
 * base offset of the batch it appended, and the batch holds that partition's
 * records of the request in the order given.
 */
export function offsetsOf(
  records: readonly KafkaRecord[],
  acked: ReadonlyArray<{ topicName: string; partition: number; baseOffset?: string }>,
): string[] {
  const next = new Map<string, bigint>();
  for (const a of acked)
    if (a.baseOffset !== undefined) next.set(`${a.topicName}/${a.partition}`, BigInt(a.baseOffset));
  return records.map((r) => {
    const tp = `${r.topic}/${r.partition}`;
    const offset = next.get(tp);
    // No answer for the partition (acks=0 never happens here): -1, as Kafka says "unknown".
    if (offset === undefined) return '-1';
    next.set(tp, offset + 1n);
    return offset.toString();
  });
}

/** A record's bytes as a batch carries them, near enough: value, key, headers. */
function recordBytes(r: KafkaRecord): number {
  const m = r.message;
  let n = 64 + (m.value ? Buffer.byteLength(m.value) : 0);
  if (m.key) n += Buffer.byteLength(m.key);
  for (const [k, v] of Object.entries(m.headers ?? {}))
    n += k.length + (v ? Buffer.byteLength(v as Buffer | string) : 0) + 8;
  return n;
}
