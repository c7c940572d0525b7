/**
 * The raw chain of the southbound benchmarks: the same hops as an intent's goal
 * states with no decision — published to a stream, consumed, forwarded to hosts
 * (JetStream: stored and delivered on the host's subject; Kafka: the product's
 * layout and the fleet's consumer settings), acked by each host on core NATS.
 */
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { createKafkaClient } from '../../infra/index.js';
import { DEFAULT_HOSTS_PER_PARTITION, clusterKey, type HostRecord } from '../../shared/index.js';
import { COMMIT_INTERVAL_MS, FLEET_CONSUMER, FLEET_RUN } from '../../services/nca/kafkaIntake.js';
import { offerOpenLoop } from '../../services/demo/arrivals.js';
import { pct } from './report.js';
import { log, type Rig } from './southboundRig.js';

const encoder = new TextEncoder();

/** How the raw chain's messages arrive: all at once (`burst`) or open loop at a rate. */
export type Offer = 'burst' | number;

export interface RawResult {
  path: string;
  offered: Offer;
  messages: number;
  /** Copies forwarded per message (hosts per intent in the product). */
  fanout: number;
  rate: number;
  p50: number;
  p99: number;
  /** The sender's own lag behind the schedule, p99 (ms; open loop only). */
  sendLagP99: number;
}

/** One raw message forwarded to its hosts. */
export interface Forwarded {
  seq: number;
  data: Uint8Array;
  hosts: readonly HostRecord[];
}

/** The last hop of a raw chain: forward to hosts, and see them arrive there. */
export interface Hop {
  forward: (batch: Forwarded[]) => Promise<void>;
  /** Starts the hosts' side; calls `onArrive(seq)` per copy that reached a host. */
  arrive: (onArrive: (seq: number) => void) => Promise<() => Promise<void>>;
}

/**
 * The raw chain: a message published to a JetStream stream, consumed, forwarded in
 * batches (one send at a time taking all that waits, as the relay's sends do) to `fanout` hosts of the binding, and
 * acked by each on core NATS; a message's latency ends with its last host's ack.
 */
export async function rawChain(
  rig: Rig,
  path: string,
  o: {
    count: number;
    size: number;
    fanout: number;
    offer: Offer;
    hosts: HostRecord[];
    hop: Hop;
    /** Messages sent first and left out of the figures (a fresh consumer's first fetches). */
    warmup?: number;
    /** Sees each measured message's latency (ms) as it completes. */
    trace?: (seq: number, ms: number) => void;
  },
): Promise<RawResult> {
  const { nc, clients } = rig;
  const jsm = await jetstreamManager(nc);
  const stream = `RAW_${path.replace(/\W/g, '_').toUpperCase()}_${Date.now().toString(36)}`;
  const prefix = stream.toLowerCase();
  await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] });
  await jsm.consumers.add(stream, {
    durable_name: 'relay',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: 4096,
  });
  const fanout = Math.max(1, Math.min(o.hosts.length, Math.round(o.fanout)));
  const warm = o.warmup ?? 0;
  const total = warm + o.count;
  const sent = new Float64Array(total);
  const acked = new Uint16Array(total);
  const lat: number[] = [];
  const sendLag: number[] = [];
  let got = 0;
  let last = 0;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((r) => (finish = r));
  // The hosts' acks back to the sender, on core NATS.
  const acks = nc.subscribe(`${prefix}-ack.*`, {
    callback: (_e, m) => {
      const seq = Number(m.subject.slice(m.subject.lastIndexOf('.') + 1));
      if (++acked[seq]! !== fanout) return;
      if (seq >= warm) {
        lat.push(performance.now() - sent[seq]!);
        o.trace?.(seq, lat[lat.length - 1]!);
      }
      last = performance.now();
      if (++got === total) finish();
    },
  });
  const ackConn: NatsConnection = clients[1]!;
  const applied = encoder.encode('{"status":"applied"}');
  const stopArrive = await o.hop.arrive((seq) => ackConn.publish(`${prefix}-ack.${seq}`, applied));
  const messages = await (
    await jetstream(nc).consumers.get(stream, 'relay')
  ).consume({
    max_messages: 1024,
  });
  // Each message's hosts: `fanout` distinct hosts of the binding, drawn at random.
  let seed = 0x2545f491;
  const random = (): number => {
    seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return seed / 2 ** 32;
  };
  const hostsFor = (): HostRecord[] => {
    const picked = new Set<HostRecord>();
    while (picked.size < fanout) picked.add(o.hosts[Math.floor(random() * o.hosts.length)]!);
    return [...picked];
  };
  // The forwarder: one send at a time, each taking everything that arrived while the
  // one before was out (up to 1,024 messages), as the relay's Kafka sends coalesce.
  const waiting: JsMsg[] = [];
  let wake: (() => void) | undefined;
  let consumed = false;
  void (async () => {
    for await (const m of messages) {
      waiting.push(m);
      wake?.();
    }
    consumed = true;
    wake?.();
  })();
  const relay = (async () => {
    while (!consumed || waiting.length > 0) {
      if (waiting.length === 0) {
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        continue;
      }
      const taken = waiting.splice(0, 1024);
      await o.hop.forward(
        taken.map((x) => ({
          seq: Number(x.subject.slice(x.subject.lastIndexOf('.') + 1)),
          data: x.data,
          hosts: hostsFor(),
        })),
      );
      for (const x of taken) x.ack();
    }
  })();
  const payload = new Uint8Array(o.size).fill(120);
  const js = jetstream(clients[0]!);
  let started = performance.now();
  const inFlight = new Set<Promise<unknown>>();
  const publish = (seq: number): void => {
    const p = js.publish(`${prefix}.${seq}`, payload);
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  if (o.offer === 'burst') {
    for (let i = 0; i < total; i++) {
      if (i === warm) started = performance.now();
      sent[i] = performance.now();
      publish(i);
      if (inFlight.size >= 256) await Promise.race(inFlight);
    }
  } else {
    // One sequence: arrivals in seq order, the warm-up first.
    const seqs = [Array.from({ length: total }, (_, i) => i)];
    await offerOpenLoop(o.offer, seqs, (seq, arrival) => {
      const now = performance.now();
      if (seq === warm) started = arrival;
      if (seq >= warm) sendLag.push(now - arrival);
      sent[seq] = arrival;
      publish(seq);
    });
  }
  await Promise.all(inFlight);
  await done;
  await messages.close();
  await relay;
  acks.unsubscribe();
  await stopArrive();
  await jsm.streams.delete(stream).catch(() => undefined);
  return {
    path,
    offered: o.offer,
    messages: o.count,
    fanout,
    rate: o.count / ((last - started) / 1000),
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    sendLagP99: sendLag.length > 0 ? pct(sendLag, 99) : 0,
  };
}

/** JetStream: the forwarded copies are stored (as GOALSTATES does), then delivered to the host. */
export async function jetStreamHop(
  nc: NatsConnection,
  publisher: NatsConnection = nc,
): Promise<Hop> {
  const js = jetstream(publisher);
  const name = `RAWGS_${Date.now().toString(36).toUpperCase()}`;
  const prefix = name.toLowerCase();
  await (await jetstreamManager(nc)).streams.add({ name, subjects: [`${prefix}.>`] });
  return {
    forward: async (batch) => {
      await Promise.all(
        batch.flatMap(({ seq, data, hosts }) =>
          hosts.map((h) => js.publish(`${prefix}.${h.hostId}.${seq}`, data)),
        ),
      );
    },
    arrive: (onArrive) => {
      const sub = nc.subscribe(`${prefix}.>`, {
        callback: (_e, m) => onArrive(Number(m.subject.slice(m.subject.lastIndexOf('.') + 1))),
      });
      return Promise.resolve(async () => {
        sub.unsubscribe();
        await (await jetstreamManager(nc)).streams.delete(name).catch(() => undefined);
      });
    },
  };
}

/**
 * Kafka, in the product's layout: a topic per cluster of hosts, `hostsPerPartition`
 * hosts to a partition (the southbound's default); produced with acks from all replicas by an idempotent producer (one send
 * per batch, as the relay's binding does), consumed with the fleet's consumer
 * settings (services/nca/kafkaIntake.ts), offsets committed once a second.
 */
export async function kafkaHop(
  brokers: string[],
  clusterId: string,
  hosts: readonly HostRecord[],
  hostsPerPartition = DEFAULT_HOSTS_PER_PARTITION,
): Promise<Hop> {
  const client = createKafkaClient(clusterId, brokers, {
    clientId: 'bench-raw',
    logger: log,
  });
  const tag = Date.now().toString(36);
  const byPlace = new Map<string, HostRecord[]>();
  for (const h of hosts) {
    const list = byPlace.get(clusterKey(h)) ?? [];
    list.push(h);
    byPlace.set(clusterKey(h), list);
  }
  // host → where its records go
  const where = new Map<string, { topic: string; partition: number }>();
  const topics: Array<{ topic: string; numPartitions: number }> = [];
  [...byPlace.values()].forEach((list, i) => {
    const topic = `raw.${clusterId}.${i}.${tag}`;
    topics.push({ topic, numPartitions: Math.ceil(list.length / hostsPerPartition) });
    list.forEach((h, i) =>
      where.set(h.hostId, { topic, partition: Math.floor(i / hostsPerPartition) }),
    );
  });
  const admin = client.kafka.admin();
  await admin.connect();
  // Right after other topics were deleted the broker may answer a retriable
  // UNKNOWN_TOPIC_OR_PARTITION while it waits for the leaders: ask again.
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.createTopics({ topics, waitForLeaders: true });
      break;
    } catch (err) {
      if ((err as { retriable?: boolean }).retriable !== true || attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
  await admin.disconnect();
  const producer = client.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  return {
    forward: async (batch) => {
      const byTopic = new Map<string, Array<{ key: string; value: Buffer; partition: number }>>();
      for (const { seq, data, hosts: to } of batch) {
        for (const h of to) {
          const w = where.get(h.hostId)!;
          const list = byTopic.get(w.topic) ?? [];
          list.push({ key: String(seq), value: Buffer.from(data), partition: w.partition });
          byTopic.set(w.topic, list);
        }
      }
      await producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
    },
    arrive: async (onArrive) => {
      const consumer = client.kafka.consumer({ groupId: `raw-${tag}`, ...FLEET_CONSUMER });
      await consumer.connect();
      await consumer.subscribe({ topics: topics.map((t) => t.topic), fromBeginning: true });
      const toCommit = new Map<string, { topic: string; partition: number; offset: string }>();
      const timer = setInterval(() => {
        if (toCommit.size === 0) return;
        const offsets = [...toCommit.values()];
        toCommit.clear();
        void consumer.commitOffsets(offsets).catch(() => undefined);
      }, COMMIT_INTERVAL_MS);
      // Messages are offered only once the group is joined (a join takes seconds).
      const joined = new Promise<void>((r) => consumer.on(consumer.events.GROUP_JOIN, () => r()));
      await consumer.run({
        ...FLEET_RUN,
        eachBatch: ({ batch }) => {
          for (const m of batch.messages) onArrive(Number(m.key?.toString()));
          if (batch.messages.length > 0)
            toCommit.set(`${batch.topic}/${batch.partition}`, {
              topic: batch.topic,
              partition: batch.partition,
              offset: (BigInt(batch.lastOffset()) + 1n).toString(),
            });
          return Promise.resolve();
        },
      });
      await joined;
      return async () => {
        clearInterval(timer);
        await consumer.disconnect();
        await producer.disconnect();
        const a = client.kafka.admin();
        await a.connect();
        await a.deleteTopics({ topics: topics.map((t) => t.topic) }).catch(() => undefined);
        await a.disconnect();
      };
    },
  };
}

/** The hop of a binding (`jetstream`, `kafka a`, …) over its hosts. */
export async function hopOf(rig: Rig, binding: string, hosts: readonly HostRecord[]): Promise<Hop> {
  if (binding === 'jetstream') return jetStreamHop(rig.nc, rig.clients[2]);
  const clusterId = binding.split(' ')[1]!;
  return kafkaHop(rig.servers.kafka[clusterId]!, clusterId, hosts);
}
