/**
 * The delivery modes of the MQ evaluation (issue 8), each on a fresh server of
 * its own. A mode sets up what its design needs (topics, partitions, subjects,
 * consumers), starts simulated agents, and publishes an intent's goal states the
 * way its design says; the agents' receipts go to a {@link Tally}.
 *
 * Agents: in `js-unicast` and `js-hierarchical`, the first `realAgents` hosts are
 * real connections, one per host, in worker processes (realAgents.ts); the rest
 * subscribe per host on a few shared connections (a real agent has one of its
 * own). The Kafka modes read with one consumer per mode (a real agent is its own
 * consumer). Where a design has every agent of a group (or of a partition) read
 * all of it, one reader stands for them: each record it reads counts as delivered
 * to every host that would fetch it.
 */
import { existsSync, readFileSync } from 'node:fs';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { headers, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Consumer, Message, Producer } from 'kafkajs';
import {
  DEFAULT_LAYOUT,
  connectNats,
  createKafkaClient,
  ensureLayout,
  type KafkaClient,
  type Logger,
} from '../../../infra/index.js';
import { kafkaTopics, streams, subjects, type HostRecord } from '../../../shared/index.js';
import { FLEET_CONSUMER } from '../../../services/nca/kafkaIntake.js';
import { startRealAgents, type RealAgents } from './realAgents.js';
import { KEY_HEADER, PROBE_PREFIX, keyOf, type Tally } from './tally.js';
import type { Delivery, FanoutWorkload } from './workload.js';

export interface Counts {
  /** Topics (Kafka) or distinct subjects stored (JetStream). */
  topics: number;
  partitions: number;
  /** Server-side consumers this run made (JetStream) / consumer-group members (Kafka). */
  consumers: number;
  /** What a deployment of one agent per host needs: consumers or subscriptions. */
  deploymentConsumers: number;
  /** Broker connections of the publishing side. */
  publisherConnections: number;
  published: { messages: number; bytes: number };
  /** Joins caught up from the stream (a multicast published before the subscription). */
  catchUps: number;
  /** Hosts run as real agents (a connection of their own, in worker processes); the rest are counted. */
  realAgents: number;
  agentProcesses: number;
  /** Broker connections the agents' side opened (real and shared). */
  agentConnections: number;
}

export interface Prepared {
  publish: (intent: number) => Promise<void>;
  counts: () => Promise<Counts>;
  /** Sends probe `n` to every host (its own subject or partition; a group topic once). */
  probe: (n: number) => Promise<void>;
  /** The real agents, when the mode runs some. */
  real?: RealAgents;
  stop: () => Promise<void>;
}

/** The servers of a run: one node, or a cluster (streams and topics then replicated). */
export type ServerHandle =
  | { broker: 'nats'; urls: string[]; replicas: number }
  | { broker: 'kafka'; brokers: string[]; replicas: number };

export interface ModeContext {
  workload: FanoutWorkload;
  tally: Tally;
  logger: Logger;
  /** Gives up setting up past this (a design that does not scale this far). */
  setupBudgetMs: number;
  /** Reports setup progress (e.g. topics created). */
  progress: (text: string) => void;
  /** Hosts to run as real agents where the mode can (the first ones of the workload). */
  realAgents: number;
  /** What the workload was built from (real agents' workers build it again). */
  workloadArgs: { hosts: number; intents: number; zipf: number; seed: number };
  /** `kafka-hostgroup`: hosts sharing a partition. */
  hostsPerPartition: number;
}

export interface Mode {
  id: string;
  label: string;
  broker: 'nats' | 'kafka';
  prepare: (server: ServerHandle, ctx: ModeContext) => Promise<Prepared>;
}

export class SetupBudgetExceeded extends Error {
  constructor(
    readonly done: number,
    readonly of: number,
    readonly what: string,
  ) {
    super(`setup past its budget: ${done} of ${of} ${what}`);
  }
}

const AGENT_CONNECTIONS = 8;

// ── JetStream ────────────────────────────────────────────────────────────────

interface NatsSide {
  /** Per subject, the keys published on it, in order (what a resync would hold). */
  log: Map<string, string[]>;
  pub: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  agents: NatsConnection[];
}

async function natsSide(server: ServerHandle): Promise<NatsSide> {
  const { urls, replicas } = server as Extract<ServerHandle, { broker: 'nats' }>;
  const pub = await connectNats(urls.join(','), { name: 'bench-publisher' });
  const jsm = await jetstreamManager(pub);
  await ensureLayout(pub, jsm, { ...DEFAULT_LAYOUT, replicas });
  // The shared connections are spread over the nodes, as agents would be.
  const agents = await Promise.all(
    Array.from({ length: AGENT_CONNECTIONS }, (_, i) =>
      connectNats(urls[i % urls.length]!, { name: `bench-agents-${i}` }),
    ),
  );
  return { log: new Map(), pub, js: jetstream(pub), jsm, agents };
}

/** Hosts [0, n) run as real agents; the rest stay on the shared connections. */
async function realAgentsOf(
  server: ServerHandle,
  ctx: ModeContext,
  mode: 'unicast' | 'hierarchical',
): Promise<{ real: RealAgents | undefined; simulated: HostRecord[] }> {
  const { workload } = ctx;
  const n = Math.min(ctx.realAgents, workload.hosts.length);
  if (n === 0) return { real: undefined, simulated: workload.hosts };
  const real = await startRealAgents({
    workload,
    args: ctx.workloadArgs,
    mode,
    hostIds: workload.hosts.slice(0, n).map((h) => h.hostId),
    urls: (server as Extract<ServerHandle, { broker: 'nats' }>).urls,
    tally: ctx.tally,
    progress: ctx.progress,
    // A node holds < 20,000 connections here: while one restarts, its agents wait
    // for it rather than crowd the others past that.
    pinToNode: true,
  });
  return { real, simulated: workload.hosts.slice(n) };
}

/**
 * Probe `n` on every host's own subject (through the stream), 1,000 in flight; a
 * batch is sent again while the publisher reconnects after a restart.
 */
async function natsProbe(side: NatsSide, hosts: readonly HostRecord[], n: number): Promise<void> {
  const data = new TextEncoder().encode('{}');
  for (let i = 0; i < hosts.length; i += 1000) {
    const batch = hosts.slice(i, i + 1000);
    await untilSent(() =>
      Promise.all(
        batch.map((h) =>
          side.js.publish(hostSubject(h), data, { headers: keyHeaders(`${PROBE_PREFIX}${n}`) }),
        ),
      ),
    );
  }
}

/** `send`, again every 500 ms while it fails (a broker coming back), for up to a minute. */
async function untilSent(send: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await send();
      return;
    } catch (err) {
      if (attempt >= 120) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function keyHeaders(key: string) {
  const h = headers();
  h.set(KEY_HEADER, key);
  return h;
}

/** Publishes (subject, data, key) triples of one intent; all acked. */
async function jsPublish(
  side: NatsSide,
  messages: Array<[string, Uint8Array, string]>,
  published: Counts['published'],
): Promise<void> {
  await Promise.all(
    messages.map(([subject, data, key]) => {
      published.messages += 1;
      published.bytes += data.length;
      const log = side.log.get(subject) ?? [];
      log.push(key);
      side.log.set(subject, log);
      return side.js.publish(subject, data, { headers: keyHeaders(key) });
    }),
  );
}

const hostSubject = (h: HostRecord): string => subjects.goalStateHost(h, h.hostId);

async function natsCounts(
  side: NatsSide,
  real: RealAgents | undefined,
  base: Omit<
    Counts,
    'topics' | 'partitions' | 'consumers' | 'realAgents' | 'agentProcesses' | 'agentConnections'
  >,
): Promise<Counts> {
  const info = await side.jsm.streams.info(streams.goalStates);
  return {
    ...base,
    catchUps: base.catchUps + (real?.catchUps ?? 0),
    topics: info.state.num_subjects ?? 0,
    partitions: 0,
    consumers: info.state.consumer_count,
    realAgents: real?.real ?? 0,
    agentProcesses: real?.processes ?? 0,
    agentConnections: side.agents.length + (real?.connections ?? 0),
  };
}

async function closeNats(
  side: NatsSide,
  subs: Iterable<Subscription>,
  real?: RealAgents,
): Promise<void> {
  for (const s of subs) s.unsubscribe();
  await real?.stop();
  await Promise.all([side.pub, ...side.agents].map((c) => c.close()));
}

/** Mode 4: one message per host that needs it, on the host's own subject. */
const jsUnicast: Mode = {
  id: 'js-unicast',
  label: 'JetStream, per-host subjects, one message per host (no multicast)',
  broker: 'nats',
  async prepare(server, ctx) {
    const { workload, tally } = ctx;
    const side = await natsSide(server);
    const { real, simulated } = await realAgentsOf(server, ctx, 'unicast');
    const byId = new Map(workload.hosts.map((h) => [h.hostId, h]));
    const subs = simulated.map((h, i) =>
      side.agents[i % AGENT_CONNECTIONS]!.subscribe(hostSubject(h), {
        callback: (err, msg) => {
          if (!err) tally.received(h.hostId, msg.headers?.get(KEY_HEADER));
        },
      }),
    );
    await Promise.all(side.agents.map((c) => c.flush()));
    const published = { messages: 0, bytes: 0 };
    return {
      publish: (intent) =>
        jsPublish(
          side,
          workload.intents[intent]!.flatMap((d, k) =>
            d.recipients.map(
              (h) =>
                [hostSubject(byId.get(h)!), d.data, keyOf(intent, k)] as [
                  string,
                  Uint8Array,
                  string,
                ],
            ),
          ),
          published,
        ),
      counts: () =>
        natsCounts(side, real, {
          deploymentConsumers: workload.hosts.length,
          publisherConnections: 1,
          published,
          catchUps: 0,
        }),
      probe: (n) => natsProbe(side, workload.hosts, n),
      ...(real ? { real } : {}),
      stop: () => closeNats(side, subs, real),
    };
  },
};

/**
 * Agents following a VPC's multicast from its join (a full state) to its leave.
 * A multicast published before the subscription was in place is made up for as
 * the product's agent does: it sees a newer revision stored on the subject and
 * asks a resync — one full state, counted as one delivery, which holds every
 * change it missed (the publisher's log names them here, to credit them).
 */
class Followers {
  readonly subs = new Map<string, Subscription>();
  catchUps = 0;
  failures = 0;

  constructor(
    private readonly side: NatsSide,
    private readonly workload: FanoutWorkload,
    private readonly tally: Tally,
    private readonly follow: (h: HostRecord, vpcId: string) => Promise<void>,
    private readonly unfollow: (h: HostRecord, vpcId: string) => Promise<void>,
  ) {}

  /** A host received a message: joins and leaves change what it follows. */
  received(h: HostRecord, key: string | undefined): void {
    this.tally.received(h.hostId, key);
    const [i, k] = (key ?? '').split('.').map(Number);
    const d = this.workload.intents[i!]?.[k!];
    if (!d || d.target !== h.hostId) return;
    // A join or leave that fails (a refilter or flush timing out on a busy broker)
    // leaves the host short: it shows as an incomplete run, with the reason logged.
    const failed = (err: unknown): void => {
      this.failures += 1;
      if (this.failures === 1) console.error(`a join or leave failed: ${(err as Error).message}`);
    };
    if (d.joins) this.join(h, d).catch(failed);
    else if (d.leaves) this.unfollow(h, d.vpcId).catch(failed);
  }

  private async join(h: HostRecord, d: Delivery): Promise<void> {
    const subject = subjects.goalStateMulticast(h, d.vpcId);
    await this.follow(h, d.vpcId);
    // The agent's check: a newer revision stored on the subject than its full
    // state's means a multicast got past the subscription. (A multicast routed
    // just before the subscription may still be on its way into the stream, or
    // in live: give those a moment.)
    await new Promise((r) => setTimeout(r, 250));
    const last = await this.side.jsm.direct
      .getMessage(streams.goalStates, { last_by_subj: subject })
      .catch(() => null);
    if (!last || revisionOf(last.data) <= d.revision) return;
    const missed = (this.side.log.get(subject) ?? []).filter((key) => {
      const [i, k] = key.split('.').map(Number);
      const m = this.workload.intents[i!]![k!]!;
      return m.revision > d.revision && !this.tally.has(h.hostId, key);
    });
    if (missed.length === 0) return;
    this.catchUps += 1;
    this.tally.received(h.hostId, undefined); // the resync's full state
    for (const key of missed) this.tally.received(h.hostId, key, 0);
  }
}

const revisionOf = (data: Uint8Array): number =>
  (JSON.parse(new TextDecoder().decode(data)) as { revision: number }).revision;

/**
 * An intent's messages on their design subjects: a leaving host's first (it stops
 * following the multicast), then the multicasts, then the other unicasts (a host
 * joining in this commit follows the multicast once its full state is in, and that
 * full state holds this commit's change already).
 */
function designOrder(
  workload: FanoutWorkload,
  intent: number,
): Array<[string, Uint8Array, string]> {
  const rank = (d: Delivery): number => (d.leaves ? 0 : d.unicast ? 2 : 1);
  return workload.intents[intent]!.map((d, k) => ({ d, k }))
    .sort((a, b) => rank(a.d) - rank(b.d))
    .map(({ d, k }) => [d.subject, d.data, keyOf(intent, k)]);
}

/** Mode 5: per-host unicast and per-cluster multicast subjects, agents on exactly theirs. */
const jsHierarchical: Mode = {
  id: 'js-hierarchical',
  label: 'JetStream, hierarchical subjects, per-cluster multicast (the design)',
  broker: 'nats',
  async prepare(server, ctx) {
    const { workload, tally } = ctx;
    const side = await natsSide(server);
    const { real, simulated } = await realAgentsOf(server, ctx, 'hierarchical');
    const conn = new Map(simulated.map((h, i) => [h.hostId, side.agents[i % AGENT_CONNECTIONS]!]));
    const followers: Followers = new Followers(
      side,
      workload,
      tally,
      async (h, vpcId) => {
        const key = `${h.hostId}/${vpcId}`;
        if (followers.subs.has(key)) return;
        const c = conn.get(h.hostId)!;
        followers.subs.set(
          key,
          c.subscribe(subjects.goalStateMulticast(h, vpcId), {
            callback: (err, msg) => {
              if (!err) followers.received(h, msg.headers?.get(KEY_HEADER));
            },
          }),
        );
        await c.flush();
      },
      (h, vpcId) => {
        const key = `${h.hostId}/${vpcId}`;
        followers.subs.get(key)?.unsubscribe();
        followers.subs.delete(key);
        return Promise.resolve();
      },
    );
    const own = simulated.map((h) =>
      conn.get(h.hostId)!.subscribe(hostSubject(h), {
        callback: (err, msg) => {
          if (!err) followers.received(h, msg.headers?.get(KEY_HEADER));
        },
      }),
    );
    for (const h of simulated)
      for (const vpcId of workload.holds.get(h.hostId)!)
        followers.subs.set(
          `${h.hostId}/${vpcId}`,
          conn.get(h.hostId)!.subscribe(subjects.goalStateMulticast(h, vpcId), {
            callback: (err, msg) => {
              if (!err) followers.received(h, msg.headers?.get(KEY_HEADER));
            },
          }),
        );
    await Promise.all(side.agents.map((c) => c.flush()));
    const published = { messages: 0, bytes: 0 };
    return {
      publish: (intent) => jsPublish(side, designOrder(workload, intent), published),
      counts: () =>
        natsCounts(side, real, {
          // Real agents' subscriptions as they were when ready (joins and leaves move them).
          deploymentConsumers: own.length + followers.subs.size + (real?.subscriptions ?? 0),
          publisherConnections: 1,
          published,
          catchUps: followers.catchUps,
        }),
      probe: (n) => natsProbe(side, workload.hosts, n),
      ...(real ? { real } : {}),
      stop: () => closeNats(side, [...own, ...followers.subs.values()], real),
    };
  },
};

/** Mode 6: a durable consumer per host, filtered on its own subject and its VPCs' multicasts. */
const jsDurable: Mode = {
  id: 'js-durable',
  label: 'JetStream, a durable consumer per host (filtered on its subjects)',
  broker: 'nats',
  async prepare(server, { workload, tally, setupBudgetMs, progress }) {
    const side = await natsSide(server);
    const conn = new Map(
      workload.hosts.map((h, i) => [h.hostId, side.agents[i % AGENT_CONNECTIONS]!]),
    );
    const following = new Map<string, Set<string>>(
      workload.hosts.map((h) => [h.hostId, new Set(workload.holds.get(h.hostId))]),
    );
    const durable = (h: HostRecord) => `agent-${h.hostId}`;
    const filters = (h: HostRecord) => [
      hostSubject(h),
      ...[...following.get(h.hostId)!].map((v) => subjects.goalStateMulticast(h, v)),
    ];
    const refilter = async (h: HostRecord): Promise<void> => {
      await side.jsm.consumers.update(streams.goalStates, durable(h), {
        filter_subjects: filters(h),
      });
    };
    const followers: Followers = new Followers(
      side,
      workload,
      tally,
      async (h, vpcId) => {
        following.get(h.hostId)!.add(vpcId);
        await refilter(h);
      },
      async (h, vpcId) => {
        following.get(h.hostId)!.delete(vpcId);
        await refilter(h);
      },
    );
    const subs: Subscription[] = [];
    const started = performance.now();
    let made = 0;
    for (const h of workload.hosts) {
      const inbox = `_bench.agent.${h.hostId}`;
      subs.push(
        conn.get(h.hostId)!.subscribe(inbox, {
          callback: (err, msg) => {
            if (!err) followers.received(h, msg.headers?.get(KEY_HEADER));
          },
        }),
      );
      await side.jsm.consumers.add(streams.goalStates, {
        durable_name: durable(h),
        deliver_subject: inbox,
        filter_subjects: filters(h),
        ack_policy: AckPolicy.None,
        deliver_policy: DeliverPolicy.New,
      });
      made += 1;
      if (made % 1000 === 0) progress(`${made} consumers`);
      if (performance.now() - started > setupBudgetMs) {
        await closeNats(side, subs);
        throw new SetupBudgetExceeded(made, workload.hosts.length, 'durable consumers created');
      }
    }
    await Promise.all(side.agents.map((c) => c.flush()));
    const published = { messages: 0, bytes: 0 };
    return {
      publish: (intent) => jsPublish(side, designOrder(workload, intent), published),
      counts: () =>
        natsCounts(side, undefined, {
          deploymentConsumers: workload.hosts.length,
          publisherConnections: 1,
          published,
          catchUps: followers.catchUps,
        }),
      probe: (n) => natsProbe(side, workload.hosts, n),
      stop: () => closeNats(side, subs),
    };
  },
};

// ── Kafka ────────────────────────────────────────────────────────────────────

interface KafkaSide {
  client: KafkaClient;
  producer: Producer;
  reader: KafkaClient;
  consumer: Consumer | undefined;
}

/** Kafka topics `specs` (name, partitions), in batches; within the budget. */
async function createTopics(
  client: KafkaClient,
  specs: Array<{ topic: string; numPartitions: number }>,
  replicationFactor: number,
  budgetMs: number,
  progress: (text: string) => void,
): Promise<void> {
  const admin = client.kafka.admin();
  await admin.connect();
  const started = performance.now();
  try {
    for (let i = 0; i < specs.length; i += 200) {
      const batch = specs.slice(i, i + 200);
      await admin.createTopics({
        topics: batch.map((s) => ({ ...s, replicationFactor })),
        waitForLeaders: false,
        timeout: 120_000,
      });
      // Every partition led before going on (kafkajs's own wait gives up too soon
      // here; a cluster electing tens of thousands of replicas answers "does not
      // host this topic-partition" a while), within the budget.
      for (;;) {
        try {
          const { topics } = await admin.fetchTopicMetadata({ topics: batch.map((s) => s.topic) });
          if (topics.every((t) => t.partitions.every((p) => p.leader >= 0))) break;
        } catch (err) {
          if ((err as { retriable?: boolean }).retriable !== true) throw err;
        }
        if (performance.now() - started > budgetMs)
          throw new SetupBudgetExceeded(i, specs.length, 'topics created and led');
        await new Promise((r) => setTimeout(r, 250));
      }
      const done = Math.min(specs.length, i + 200);
      if (done % 1000 === 0) progress(`${done} topics`);
      if (performance.now() - started > budgetMs && done < specs.length)
        throw new SetupBudgetExceeded(done, specs.length, 'topics created');
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * One producer, as the southbound's binding has it (idempotent, acks from all
 * replicas), sending the records of the intents waiting while a send is in flight
 * together (the binding's coalescing).
 */
class Coalescer {
  private queue: Array<{
    records: Array<{ topic: string; message: Message }>;
    done: () => void;
    fail: (e: unknown) => void;
  }> = [];
  private sending = false;
  readonly published = { messages: 0, bytes: 0 };

  constructor(private readonly producer: Producer) {}

  send(records: Array<{ topic: string; message: Message }>): Promise<void> {
    for (const r of records) {
      this.published.messages += 1;
      this.published.bytes += (r.message.value as Buffer).length;
    }
    return new Promise((done, fail) => {
      this.queue.push({ records, done, fail });
      if (!this.sending) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.sending = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.queue.length);
      const byTopic = new Map<string, Message[]>();
      for (const { records } of batch)
        for (const { topic, message } of records) {
          const list = byTopic.get(topic) ?? [];
          list.push(message);
          byTopic.set(topic, list);
        }
      try {
        await this.producer.sendBatch({
          acks: -1,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        });
        for (const b of batch) b.done();
      } catch (err) {
        for (const b of batch) b.fail(err);
      }
    }
    this.sending = false;
  }
}

async function kafkaSide(brokers: string[], logger: Logger): Promise<KafkaSide> {
  const client = createKafkaClient('bench', brokers, { clientId: 'bench-producer', logger });
  const producer = client.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const reader = createKafkaClient('bench', brokers, { clientId: 'bench-agents', logger });
  return { client, producer, reader, consumer: undefined };
}

/** Starts the reader on `topics`; resolves once it has joined its group. */
async function startReader(
  side: KafkaSide,
  topics: string[],
  onMessage: (
    topic: string,
    partition: number,
    key: string | undefined,
    recordKey: string | undefined,
  ) => void,
  budgetMs: number,
): Promise<void> {
  // A fresh cluster creates its group coordinator (__consumer_offsets) on the first
  // lookup, which kafkajs's consumer gives up on: ask until it answers.
  const admin = side.reader.kafka.admin();
  await admin.connect();
  const groupId = `bench-${Date.now().toString(36)}`;
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.describeGroups([groupId]);
      break;
    } catch (err) {
      if (attempt >= 60) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  await admin.disconnect();
  const consumer = side.reader.kafka.consumer({
    groupId,
    maxBytesPerPartition: 1 << 20,
    // The product's fleet consumer settings (a broker restart is noticed as it
    // would be), with room for a rebalance over tens of thousands of partitions.
    ...FLEET_CONSUMER,
    rebalanceTimeout: 120_000,
  });
  side.consumer = consumer;
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  const joined = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('the reader did not join its group in 120 s')),
      120_000,
    );
    consumer.on(consumer.events.GROUP_JOIN, () => {
      clearTimeout(timer);
      resolve();
    });
  });
  await runUntilStarted(consumer, budgetMs, {
    partitionsConsumedConcurrently: 64,
    eachMessage: ({ topic, partition, message }) => {
      onMessage(
        topic,
        partition,
        message.headers?.[KEY_HEADER]?.toString(),
        message.key?.toString(),
      );
      return Promise.resolve();
    },
  });
  await joined;
}

/**
 * Starts the consumer, again while it fails with a retriable error (a topic not
 * in every broker's metadata yet), as the product's intake does; within the budget.
 */
async function runUntilStarted(
  consumer: Consumer,
  budgetMs: number,
  config: Parameters<Consumer['run']>[0],
): Promise<void> {
  const started = performance.now();
  for (;;) {
    try {
      return await consumer.run(config);
    } catch (err) {
      if ((err as { retriable?: boolean }).retriable !== true) throw err;
      if (performance.now() - started > budgetMs)
        throw new SetupBudgetExceeded(0, 1, 'readers started');
      await consumer.stop().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function kafkaCounts(
  side: KafkaSide,
  coalescer: Coalescer,
  topics: number,
  partitions: number,
  deploymentConsumers: number,
): Promise<Counts> {
  return Promise.resolve({
    topics,
    partitions,
    consumers: 1,
    deploymentConsumers,
    publisherConnections: side.client.openConnections(),
    published: { ...coalescer.published },
    catchUps: 0,
    realAgents: 0,
    agentProcesses: 0,
    agentConnections: side.reader.openConnections(),
  });
}

async function stopKafka(side: KafkaSide): Promise<void> {
  await side.consumer?.disconnect();
  await side.producer.disconnect();
}

/** A record of `data` for `target` (its Kafka key), in `partition` if given. */
const record = (
  data: Uint8Array,
  key: string,
  target: string,
  partition?: number,
  extra: Record<string, string> = {},
): Message => ({
  value: Buffer.from(data),
  headers: { [KEY_HEADER]: key, ...extra },
  key: target,
  ...(partition === undefined ? {} : { partition }),
});
const deliveryRecord = (d: Delivery, key: string, target: string, partition?: number) =>
  record(d.data, key, target, partition, { vpcId: d.vpcId, revision: String(d.revision) });
const PROBE_DATA = new TextEncoder().encode('{}');

/** What a Kafka mode is: its topics, how a record reaches its hosts, an intent's records. */
interface KafkaLayout {
  topics: Array<{ topic: string; numPartitions: number }>;
  onRecord: (
    topic: string,
    partition: number,
    key: string | undefined,
    recordKey: string | undefined,
  ) => void;
  records: (intent: number) => Array<{ topic: string; message: Message }>;
  /** Probe `n` to every host (a group topic once). */
  probes: (n: number) => Array<{ topic: string; message: Message }>;
}

/** Creates the layout's topics, starts its reader, and publishes through one producer. */
async function prepareKafka(
  server: ServerHandle,
  { workload, logger, setupBudgetMs, progress }: ModeContext,
  layout: KafkaLayout,
): Promise<Prepared> {
  const { brokers, replicas } = server as Extract<ServerHandle, { broker: 'kafka' }>;
  const side = await kafkaSide(brokers, logger);
  try {
    await createTopics(side.client, layout.topics, replicas, setupBudgetMs, progress);
    progress('topics created');
    await startReader(
      side,
      layout.topics.map((t) => t.topic),
      layout.onRecord,
      setupBudgetMs,
    );
    progress('reader joined');
  } catch (err) {
    await stopKafka(side);
    throw err;
  }
  const coalescer = new Coalescer(side.producer);
  const partitions = layout.topics.reduce((n, t) => n + t.numPartitions, 0);
  return {
    publish: (intent) => coalescer.send(layout.records(intent)),
    counts: () =>
      kafkaCounts(side, coalescer, layout.topics.length, partitions, workload.hosts.length),
    // After a broker restart the producer may need a few tries to find the leaders.
    probe: (n) => untilSent(() => coalescer.send(layout.probes(n))),
    stop: () => stopKafka(side),
  };
}

/** Probe `n` for each host, in its topic and partition. */
function hostProbes(
  hosts: readonly HostRecord[],
  where: (h: HostRecord) => { topic: string; partition?: number },
  n: number,
): Array<{ topic: string; message: Message }> {
  return hosts.map((h) => {
    const { topic, partition } = where(h);
    return { topic, message: record(PROBE_DATA, `${PROBE_PREFIX}${n}`, h.hostId, partition) };
  });
}

/** Each cluster's topic and its hosts, in order (a host's index is its partition). */
function clusterTopics(workload: FanoutWorkload): Map<string, string[]> {
  return new Map(
    [...workload.clusters.values()].map((hs) => [
      kafkaTopics.cluster(hs[0]!),
      hs.map((h) => h.hostId),
    ]),
  );
}

/** Mode 1: a topic per cluster; every agent of the cluster reads all of it. */
const kafkaGroupTopic: Mode = {
  id: 'kafka-group',
  label: "Kafka, a topic per cluster, every agent reads the whole topic (Alcor's baseline)",
  broker: 'kafka',
  prepare(server, ctx) {
    const { workload, tally } = ctx;
    const hostsOf = clusterTopics(workload);
    return prepareKafka(server, ctx, {
      topics: [...hostsOf.keys()].map((topic) => ({ topic, numPartitions: 1 })),
      onRecord: (topic, _p, key) => tally.receivedByGroup(hostsOf.get(topic)!, key),
      records: (intent) =>
        workload.intents[intent]!.map((d, k) => ({
          topic: kafkaTopics.cluster(d.place),
          message: deliveryRecord(d, keyOf(intent, k), d.target),
        })),
      probes: (n) =>
        [...hostsOf.keys()].map((topic) => ({
          topic,
          message: record(PROBE_DATA, `${PROBE_PREFIX}${n}`, topic),
        })),
    });
  },
};

/**
 * A topic per cluster, `per` hosts to a partition (host i of the cluster on
 * partition ⌊i / per⌋, infra/kafka/partitions.ts); each agent reads its partition
 * and takes the records keyed for it — with `per` > 1 it fetches its neighbours'
 * too, and each record counts as delivered to every host of its partition.
 */
function prepareHostPartitions(server: ServerHandle, ctx: ModeContext, per: number) {
  const { workload, tally } = ctx;
  const hostAt = clusterTopics(workload);
  const partitionOf = new Map<string, number>();
  for (const hs of hostAt.values()) hs.forEach((h, i) => partitionOf.set(h, Math.floor(i / per)));
  const sharing = (topic: string, partition: number): string[] =>
    hostAt.get(topic)!.slice(partition * per, (partition + 1) * per);
  const byId = new Map(workload.hosts.map((h) => [h.hostId, h]));
  return prepareKafka(server, ctx, {
    topics: [...hostAt].map(([topic, hs]) => ({
      topic,
      numPartitions: Math.ceil(hs.length / per),
    })),
    onRecord: (topic, partition, key, target) =>
      tally.receivedInShared(sharing(topic, partition), target ?? '', key),
    records: (intent) =>
      workload.intents[intent]!.flatMap((d, k) =>
        d.recipients.map((h) => ({
          topic: kafkaTopics.cluster(byId.get(h)!),
          message: deliveryRecord(d, keyOf(intent, k), h, partitionOf.get(h)),
        })),
      ),
    probes: (n) =>
      hostProbes(
        workload.hosts,
        (h) => ({ topic: kafkaTopics.cluster(h), partition: partitionOf.get(h.hostId)! }),
        n,
      ),
  });
}

/** Mode 2: a topic per cluster, a partition per host (`ALCOR_KAFKA_HOSTS_PER_PARTITION=1`). */
const kafkaPartitionPerHost: Mode = {
  id: 'kafka-partition',
  label: 'Kafka, a topic per cluster, a partition per host',
  broker: 'kafka',
  prepare: (server, ctx) => prepareHostPartitions(server, ctx, 1),
};

/** Mode 2b: hosts sharing a partition, `--hosts-per-partition` of them (the binding's default layout). */
const kafkaHostGroups: Mode = {
  id: 'kafka-hostgroup',
  label: 'Kafka, a topic per cluster, hosts sharing a partition (agents filter by key)',
  broker: 'kafka',
  prepare: (server, ctx) => prepareHostPartitions(server, ctx, ctx.hostsPerPartition),
};

/** Mode 3: a topic per host. */
const kafkaTopicPerHost: Mode = {
  id: 'kafka-host-topic',
  label: 'Kafka, a topic per host',
  broker: 'kafka',
  prepare(server, ctx) {
    const { workload, tally } = ctx;
    const topic = (hostId: string) => `alcor.gsh.${hostId}`;
    const hostOf = new Map(workload.hosts.map((h) => [topic(h.hostId), h.hostId]));
    return prepareKafka(server, ctx, {
      topics: [...hostOf.keys()].map((t) => ({ topic: t, numPartitions: 1 })),
      onRecord: (t, _p, key) => tally.received(hostOf.get(t)!, key),
      records: (intent) =>
        workload.intents[intent]!.flatMap((d, k) =>
          d.recipients.map((h) => ({
            topic: topic(h),
            message: deliveryRecord(d, keyOf(intent, k), h),
          })),
        ),
      probes: (n) => hostProbes(workload.hosts, (h) => ({ topic: topic(h.hostId) }), n),
    });
  },
};

export const MODES: readonly Mode[] = [
  kafkaGroupTopic,
  kafkaPartitionPerHost,
  kafkaHostGroups,
  kafkaTopicPerHost,
  jsUnicast,
  jsHierarchical,
  jsDurable,
];

/** CPU seconds (user + system) and resident memory of a process, from /proc. */
export function processUsage(pid: number): { cpuSeconds: number; rssMb: number } {
  // A broker that died (e.g. out of file descriptors at tens of thousands of topics) has none.
  if (!existsSync(`/proc/${pid}/stat`)) return { cpuSeconds: NaN, rssMb: NaN };
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuSeconds: ticks / 100, rssMb: rss / 1024 };
}
