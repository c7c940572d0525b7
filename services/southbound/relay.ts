/**
 * One relay: a topology partition's goal states to one Kafka cluster (DESIGN §7).
 * A durable consumer per (partition, Kafka cluster) on GOALSTATES, filtered to
 * `gs.<partition>.*` and `gsm.<partition>.*`, so each Kafka cluster of a partition
 * pauses and resumes on its own. Messages are taken in stream order, in batches;
 * each becomes Kafka records (records.ts; which hosts: actors/southbound/fanout.ts) —
 *   `gs…<host>`  → one record for that host, if it is bound to this cluster;
 *   `gsm…<vpc>`  → one per host of the partition on this cluster that has the VPC
 *                  (the Redis mapping; asked of the VPC's owner when missing) —
 * and the batch is acked in JetStream only after Kafka acknowledged its records.
 * Then, per goal state, a receipt says where Kafka put its records (`relay.<vpc>`,
 * stream RELAYS: topic, partition, offset per host), for `alcor trace`.
 */
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { setTimeout as delay } from 'node:timers/promises';
import { CONSUMER_TROUBLE, PULL_EXPIRES_MS } from '../../infra/index.js';
import {
  KAFKA_HEADERS,
  RELAY_RECEIPT_MAX_RECORDS,
  fnv1a32,
  clusterKey,
  streams,
  subjects,
  type RelayReceipt,
  type TopologyPlace,
} from '../../shared/index.js';
import type { KafkaBinding, KafkaRecord } from './kafkaBinding.js';
import { recordsOf, type RecordsDeps, type RelayScopeDeps } from './records.js';

export type { RelayMetrics } from './records.js';

export interface RelayDeps extends RelayScopeDeps {
  jsm: JetStreamManager;
  /** The southbound module's id (named in its relay receipts). */
  member: string;
  binding: KafkaBinding;
  batch: number;
  /** Observes one goal state's relay stage: stored in GOALSTATES → acked by Kafka (seconds). */
  relayed?: (seconds: number) => void;
}

/** The durable of a (partition, Kafka cluster): readable, and unique by the hash. */
export function relayDurable(kafkaCluster: string, place: TopologyPlace): string {
  const key = clusterKey(place);
  return `sb_${kafkaCluster}_${key.replaceAll('.', '_')}_${fnv1a32(new TextEncoder().encode(key)).toString(36)}`;
}

const ACK_WAIT_MS = 60_000;
/** Batches of one relay being made or sent at once. */
const IN_FLIGHT = 4;
/** Backoff while a batch's records cannot be made. */
const RECORDS_RETRY_MS = 100;
const RECORDS_RETRY_MAX_MS = 2_000;

/**
 * How often an idle relay looks for deliveries that never reached it: every 5 s for
 * two minutes after a sign of trouble, every 30 s otherwise (one consumer info each).
 */
const WATCH_MS = 5_000;
const CALM_WATCH_MS = 30_000;
const TROUBLE_MS = 120_000;
/** Consumer notifications that may mean deliveries were lost on the way (and `debug`). */
const TROUBLE = new Set([...CONSUMER_TROUBLE, 'debug']);

export class Relay {
  private running = true;
  private loop: Promise<void> | undefined;
  private messages: ConsumerMessages | undefined;
  private pending: JsMsg[] = [];
  /** Goal states taken and not yet acked (their records being made or sent). */
  private taken = 0;
  private wake: (() => void) | undefined;
  /** Set by the watchdog: go back to the ack floor before the next batch. */
  private stuck = false;
  private watchdog: NodeJS.Timeout | undefined;
  private lastLook: { ackPending: number; floor: number } | undefined;
  /** The last sign of trouble: a NATS disconnect or reconnect, or a consumer notification. */
  private troubleAt = 0;
  private lookedAt = 0;
  private serverPending = 0;

  private readonly records: RecordsDeps;

  constructor(private readonly deps: RelayDeps) {
    this.records = {
      ...deps,
      kafkaCluster: deps.binding.clusterId,
      maxRecordBytes: () => deps.binding.maxRecordBytes,
      running: () => this.running,
    };
  }

  get key(): string {
    return `${clusterKey(this.deps.place)}/${this.deps.binding.clusterId}`;
  }

  private get durable(): string {
    return relayDurable(this.deps.binding.clusterId, this.deps.place);
  }

  /** Goal states of this relay not in Kafka yet: taken and waiting, plus the consumer's pending. */
  lag(): number {
    return this.pending.length + this.taken + this.serverPending;
  }

  async start(): Promise<void> {
    const { jsm } = this.deps;
    const existing = await jsm.consumers
      .info(streams.goalStates, this.durable)
      .catch((err: unknown) => {
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)
          return undefined;
        throw err;
      });
    if (!existing) {
      await jsm.consumers.add(streams.goalStates, {
        ...this.consumerConfig(),
        deliver_policy: DeliverPolicy.All,
      });
    } else if (existing.num_ack_pending > 0) {
      // Taken over from a module that held goal states it never acked (it crashed, hung
      // or stopped with them in hand): they would come back only after the ack wait.
      this.deps.logger.info(
        { relay: this.key, unacked: existing.num_ack_pending },
        'relay taken over: resuming at the ack floor',
      );
      await this.recreateAtFloor(existing.ack_floor.stream_seq);
    }
    await this.open();
    this.loop = this.run();
    void (async () => {
      for await (const s of this.deps.nc.status()) {
        if (!this.running) break;
        if (s.type === 'disconnect' || s.type === 'reconnect') this.troubleAt = Date.now();
      }
    })();
    this.watchdog = setInterval(() => void this.watch(), WATCH_MS);
    this.watchdog.unref();
  }

  private consumerConfig() {
    return {
      durable_name: this.durable,
      filter_subjects: subjects.goalStatesOfCluster(this.deps.place),
      ack_policy: AckPolicy.Explicit,
      ack_wait: ACK_WAIT_MS * 1_000_000,
      max_ack_pending: 8192,
    };
  }

  /**
   * Starts the consumer over again after the last goal state Kafka acknowledged:
   * what was acked above the floor comes again, and agents ignore what they hold.
   */
  private async recreateAtFloor(floor: number): Promise<void> {
    const { jsm } = this.deps;
    await jsm.consumers.delete(streams.goalStates, this.durable).catch(() => undefined);
    await jsm.consumers.add(streams.goalStates, {
      ...this.consumerConfig(),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: floor + 1,
    });
  }

  /** Starts taking the consumer's messages into `pending`. */
  private async open(): Promise<void> {
    const consumer = await jetstream(this.deps.nc).consumers.get(streams.goalStates, this.durable);
    const messages = await consumer.consume({ max_messages: 2048, expires: PULL_EXPIRES_MS });
    this.messages = messages;
    void (async () => {
      for await (const n of messages.status()) {
        if (TROUBLE.has(n.type)) this.troubleAt = Date.now();
      }
    })();
    void (async () => {
      // The consumer numbers its deliveries 1, 2, 3…: a number skipped is a delivery
      // lost on the way (with a server or a consumer leader). Relaying what follows
      // would put it in Kafka ahead of the lost one, which would come back only after
      // the ack wait: start again at the ack floor instead, taking nothing meanwhile.
      let delivered: number | undefined;
      for await (const m of messages) {
        if (this.messages !== messages) break;
        if (this.stuck) continue;
        const dseq = m.info.deliverySequence;
        if (delivered !== undefined && dseq !== delivered + 1) {
          this.deps.logger.warn(
            { relay: this.key, expected: delivered + 1, got: dseq, seq: m.seq },
            'a goal-state delivery skipped: starting again at the ack floor',
          );
          this.troubleAt = Date.now();
          this.stuck = true;
          this.wake?.();
          continue;
        }
        delivered = dseq;
        this.pending.push(m);
        this.serverPending = m.info.pending;
        this.wake?.();
      }
      // Closed by a reopen: the next iterator carries on. Otherwise the relay ends.
      if (this.messages === messages) {
        this.running = false;
        this.wake?.();
      }
    })();
  }

  /**
   * Goal states the server delivered that never reached this relay (lost with a
   * server or a consumer leader) come back only after the ack wait. An idle relay
   * that sees, twice in a row, goal states waiting for its ack and a floor that
   * does not move, starts again at the floor.
   */
  private async watch(): Promise<void> {
    if (!this.running || this.taken > 0 || this.pending.length > 0) {
      this.lastLook = undefined;
      return;
    }
    const now = Date.now();
    const every = now - this.troubleAt < TROUBLE_MS ? WATCH_MS : CALM_WATCH_MS;
    if (now - this.lookedAt < every - 100) return;
    this.lookedAt = now;
    try {
      const info = await this.deps.jsm.consumers.info(streams.goalStates, this.durable);
      const look = { ackPending: info.num_ack_pending, floor: info.ack_floor.stream_seq };
      const before = this.lastLook;
      this.lastLook = look;
      if (
        look.ackPending > 0 &&
        before &&
        before.ackPending > 0 &&
        before.floor === look.floor &&
        this.taken === 0 &&
        this.pending.length === 0
      ) {
        this.stuck = true;
        this.lastLook = undefined;
        this.wake?.();
      }
    } catch {
      this.lastLook = undefined; // the server is busy or away: look again later
    }
  }

  /**
   * Takes batches in stream order and pipelines them: the records of the next batch
   * are made (decode, host lookups, the mapping) while the produces of earlier ones
   * are in flight, up to IN_FLIGHT batches. The binding sends them in order (sends
   * that meet while a produce is out go together in the next one), and each batch
   * is acked in JetStream only after Kafka acknowledged it.
   */
  private async run(): Promise<void> {
    const flights: Array<{ done: boolean; ok: Promise<boolean> }> = [];
    // Batches are handed to the binding in the order they were taken, whichever
    // has its records first.
    let lastHanded: Promise<void> = Promise.resolve();
    while (this.running) {
      // Batches that landed in order leave the window (an ended send ends the relay).
      while (flights[0]?.done) if (!(await flights.shift()!.ok)) return this.finish(flights);
      if (this.stuck) {
        await Promise.all(flights.splice(0).map((f) => f.ok));
        await this.reopenAtFloor();
        continue;
      }
      if (this.pending.length === 0 || flights.length >= IN_FLIGHT) {
        // Wait for the oldest batch to land, or (with room) for more goal states.
        const more =
          flights.length < IN_FLIGHT ? new Promise<void>((r) => (this.wake = r)) : undefined;
        await Promise.race([...(flights[0] ? [flights[0].ok] : []), ...(more ? [more] : [])]);
        this.wake = undefined;
        continue;
      }
      const batch = this.pending.splice(0, this.deps.batch);
      const takenAt = new Date();
      this.taken += batch.length;
      const flight = { done: false, ok: Promise.resolve(true) };
      const before = lastHanded;
      let handed!: () => void;
      lastHanded = new Promise<void>((r) => (handed = r));
      flight.ok = this.relay(batch, takenAt, before, handed).finally(() => {
        flight.done = true;
        this.taken -= batch.length;
        this.wake?.();
      });
      flights.push(flight);
    }
    await this.finish(flights);
  }

  private async finish(flights: ReadonlyArray<{ ok: Promise<boolean> }>): Promise<void> {
    await Promise.all(flights.map((f) => f.ok));
  }

  /**
   * One batch: its records made, handed to the binding once the batch before was
   * (`before`; then `handed`), the batch acked once Kafka has them, and a receipt
   * of each goal state published.
   */
  private async relay(
    batch: JsMsg[],
    takenAt: Date,
    before: Promise<void>,
    handed: () => void,
  ): Promise<boolean> {
    const { binding } = this.deps;
    // Keep what waits (and what is being sent) from being redelivered meanwhile.
    const keepAlive = setInterval(() => {
      for (const m of batch) m.working();
      for (const m of this.pending) m.working();
    }, ACK_WAIT_MS / 3);
    try {
      const perMessage = await this.madeRecords(batch);
      // Stopped while they could not be made: left unacked for the partition's next owner.
      if (!perMessage) return true;
      const records = perMessage.flat();
      await before;
      const sent = binding.send(records, () => this.running);
      handed();
      const offsets = await sent;
      if (!offsets) return false;
      const now = Date.now();
      for (const m of batch) {
        m.ack();
        this.deps.relayed?.((now - m.info.timestampNanos / 1e6) / 1000);
      }
      this.deps.metrics.relayed += batch.length;
      this.deps.metrics.records += records.length;
      this.publishReceipts(batch, perMessage, offsets, takenAt, new Date(now));
      return true;
    } catch (err) {
      // Left unacked: redelivered after the ack wait.
      this.deps.logger.warn({ relay: this.key, err }, 'relay batch failed');
      return true;
    } finally {
      // A batch that failed must not hold up the next, nor let it pass the one before.
      void before.then(handed);
      clearInterval(keepAlive);
    }
  }

  /**
   * The batch's records, made again (backing off) while a lookup fails — a Kafka
   * admin call during an outage, Redis, the KV: the batches behind wait for it, so
   * none passes it (a host's deltas stay in order) and it is not left to the ack
   * wait's redelivery. Undefined once the relay stops.
   */
  private async madeRecords(batch: readonly JsMsg[]): Promise<KafkaRecord[][] | undefined> {
    for (let attempt = 0; this.running; attempt++) {
      try {
        return await Promise.all(batch.map((m) => recordsOf(this.records, m)));
      } catch (err) {
        const delayMs = Math.min(RECORDS_RETRY_MAX_MS, RECORDS_RETRY_MS * 2 ** attempt);
        this.deps.logger.warn(
          { relay: this.key, err, attempt, delayMs },
          'records of a batch not made: trying again',
        );
        await delay(delayMs);
      }
    }
    return undefined;
  }

  /**
   * Per goal state that made records: where Kafka put each (`relay.<vpc>`, kept by
   * stream RELAYS). Plain publishes, after the acks: a receipt that does not reach
   * the stream loses the trace's view of the hop, never a goal state.
   */
  private publishReceipts(
    batch: readonly JsMsg[],
    perMessage: readonly KafkaRecord[][],
    offsets: readonly string[],
    takenAt: Date,
    producedAt: Date,
  ): void {
    let at = 0;
    batch.forEach((m, i) => {
      const records = perMessage[i]!;
      const placed = offsets.slice(at, at + records.length);
      at += records.length;
      const headers = records[0]?.message.headers as Record<string, string> | undefined;
      const vpcId = headers?.[KAFKA_HEADERS.vpcId];
      if (!vpcId) return;
      const list = records
        .map((r, k) => ({
          hostId: String(r.message.key),
          topic: r.topic,
          partition: r.partition,
          offset: placed[k]!,
        }))
        .filter((r) => r.offset !== '-1');
      for (let from = 0; from < list.length; from += RELAY_RECEIPT_MAX_RECORDS) {
        const receipt: RelayReceipt = {
          seq: m.seq,
          subject: m.subject,
          vpcId,
          revision: Number(headers[KAFKA_HEADERS.revision]),
          member: this.deps.member,
          kafkaCluster: this.deps.binding.clusterId,
          takenAt: takenAt.toISOString(),
          producedAt: producedAt.toISOString(),
          records: list.slice(from, from + RELAY_RECEIPT_MAX_RECORDS),
        };
        try {
          this.deps.nc.publish(subjects.relayReceipt(vpcId), JSON.stringify(receipt));
          this.deps.metrics.receipts += 1;
        } catch (err) {
          this.deps.logger.debug({ relay: this.key, vpcId, err }, 'relay receipt not published');
        }
      }
    });
  }

  /**
   * Closes the consumer's messages and starts again after the ack floor, trying
   * again (backing off to 5 s) while the server cannot do it — a node or a stream
   * leader away — so that the relay never carries on from a consumer with holes.
   */
  private async reopenAtFloor(): Promise<void> {
    const old = this.messages;
    this.messages = undefined;
    await Promise.race([old?.close().catch(() => undefined), delay(2000)]);
    this.pending = [];
    for (let attempt = 0; this.running; attempt++) {
      try {
        const info = await this.deps.jsm.consumers.info(streams.goalStates, this.durable);
        this.deps.logger.warn(
          { relay: this.key, unacked: info.num_ack_pending, floor: info.ack_floor.stream_seq },
          'goal states delivered but never received: starting again at the ack floor',
        );
        this.deps.metrics.restarts += 1;
        await this.recreateAtFloor(info.ack_floor.stream_seq);
        this.stuck = false;
        await this.open();
        return;
      } catch (err) {
        const delayMs = Math.min(5000, 500 * 2 ** attempt);
        this.deps.logger.warn(
          { relay: this.key, err, attempt, delayMs },
          'could not start again at the ack floor; trying again',
        );
        await delay(delayMs);
      }
    }
  }

  /** Stops taking messages; what is not acked yet goes to the partition's next owner. */
  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.watchdog);
    const messages = this.messages;
    this.messages = undefined;
    await messages?.close().catch(() => undefined);
    this.wake?.();
    await this.loop;
  }
}
