/**
 * One Kafka cluster binding: the cluster's single producer (idempotent, acks from
 * all in-sync replicas) driven by the binding machine (actors/southbound). Relays
 * call `send`, which resolves only once Kafka acknowledged every record and waits
 * through outages: a failed produce degrades the binding, and the same records
 * are sent again, in the same order, once it is ready.
 */
import { createActor, fromPromise, type Actor } from 'xstate';
import type { Message, Producer } from 'kafkajs';
import { createKafkaClient, type KafkaClient, type Logger } from '../../infra/index.js';
import { southbound } from '../../actors/index.js';

export interface KafkaRecord {
  topic: string;
  partition: number;
  message: Message;
}

/** Records in one produce request at most (several relays' sends together). */
const MAX_RECORDS_PER_PRODUCE = 8192;

interface QueuedSend {
  records: readonly KafkaRecord[];
  stillWanted: () => boolean;
  done: (ok: boolean) => void;
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

  /** connecting | ready | degraded | draining | stopped */
  get state(): string {
    return String(this.actor.getSnapshot().value);
  }

  /**
   * Resolves once every record is acknowledged by the cluster; retries through
   * outages. Sends from several relays that meet while a produce is in flight go
   * out together in the next one (one request per round trip, not per relay); a
   * relay's own sends stay in order because it awaits each.
   */
  send(records: readonly KafkaRecord[], stillWanted: () => boolean = () => true): Promise<boolean> {
    if (records.length === 0) return Promise.resolve(true);
    return new Promise<boolean>((done) => {
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
          else next.done(false);
        }
        if (taken.length === 0) continue;
        const ok = await this.produce(
          taken.flatMap((t) => t.records),
          () => taken.some((t) => t.stillWanted()),
        );
        for (const t of taken) t.done(ok);
      }
    } finally {
      this.flushing = false;
    }
  }

  private async produce(
    records: readonly KafkaRecord[],
    stillWanted: () => boolean,
  ): Promise<boolean> {
    const byTopic = new Map<string, Message[]>();
    for (const r of records) {
      const list = byTopic.get(r.topic) ?? [];
      list.push({ ...r.message, partition: r.partition });
      byTopic.set(r.topic, list);
    }
    const topicMessages = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    while (stillWanted()) {
      const state = this.state;
      if (state === 'draining' || state === 'stopped') return false;
      const producer = this.producer;
      if (state !== 'ready' || !producer) {
        await new Promise<void>((resolve) => {
          this.readyWaiters.push(resolve);
          setTimeout(resolve, 1000);
        });
        continue;
      }
      try {
        await producer.sendBatch({ topicMessages, acks: -1 });
        this.metrics.produced += records.length;
        this.metrics.produces += 1;
        return true;
      } catch (err) {
        this.metrics.produceErrors += 1;
        if (this.producer === producer)
          this.actor.send({ type: 'FAILED', error: (err as Error).message });
      }
    }
    return false;
  }

  async stop(): Promise<void> {
    this.actor.send({ type: 'DRAIN' });
    await new Promise<void>((resolve) => {
      if (this.actor.getSnapshot().status === 'done') return resolve();
      this.actor.subscribe({ complete: resolve });
      setTimeout(resolve, 5000);
    });
    for (const w of this.readyWaiters) w();
    for (const q of this.queue.splice(0)) q.done(false);
  }
}
