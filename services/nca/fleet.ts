/**
 * NCA agents, one or thousands in one process (DESIGN §7): each simulated host has
 * its own model of the dataplane and its own binding. Given per-host credentials
 * (DESIGN §9), each host connects as its own NATS user, which may read only its own
 * subjects; without them the hosts share a few connections.
 *
 * - JetStream binding: the host subscribes to its own `gs…<host>` subject and to
 *   `gsm…<vpc>` of each VPC it holds (learned from its full states), so the
 *   server's subject routing filters. A new multicast subscription may miss a
 *   multicast published just before it reached the server: the host looks at the
 *   subject's last stored message and asks a resync of that VPC if it is newer.
 * - Kafka binding: one consumer per Kafka cluster for the whole fleet, over the
 *   topics of its hosts; a partition is a host (infra/kafka/partitions.ts), so
 *   each record goes to exactly the host of its partition.
 *
 * Every message is acked on `gsack.<bucket>.<vpc>.<host>`. A host requests
 * `alcor.resync.<host>` on start, after a NATS reconnect, when restarted, and
 * for a VPC whose message failed to apply (backing off while it keeps failing).
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { join } from 'node:path';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import {
  answerJson,
  awaitKafkaPartitions,
  connectNats,
  createKafkaClient,
  hostPartitionsAssigner,
  natsConnectedFlag,
  readHostRecord,
  readKafkaPartitions,
  type KafkaClient,
  type Logger,
} from '../../infra/index.js';
import {
  ConfigError,
  addressedTo,
  bindingLabel,
  bucketOf,
  clusterKey,
  decodeGoalState,
  formatBucketSet,
  kafkaTopics,
  parseBucketSet,
  streams,
  subjects,
  type GoalStateMessage,
  type HostRecord,
  type ResyncReply,
} from '../../shared/index.js';
import { nca } from '../../actors/index.js';
import { encodeHostDigest, hostDigest } from './oracle.js';

export interface HostStats {
  /** Goal-state messages that reached the host. */
  delivered: number;
  /** …of which concerned it (a VPC it held, or a full state for it). */
  needed: number;
  bytes: number;
  applied: number;
  failed: number;
  invalid: number;
  resyncs: number;
  /** Resync rounds asked again for the VPCs or buckets no owner answered. */
  resyncsRepeated: number;
  /** Deltas that arrived after a newer message of the same VPC, never seen before (order broken on the way). */
  outOfOrder: number;
  /** Deltas delivered again (at-least-once: a produce retried after an outage). */
  duplicates: number;
  /** Kafka records in this host's partition keyed for another host (dropped). */
  misrouted: number;
}

export interface SimulatedHost {
  record: HostRecord;
  model: nca.HostModel;
  stats: HostStats;
  /** Asks the owners for full states of these VPCs (every VPC if none); the VPCs answered. */
  resync: (vpcIds?: string[]) => Promise<number>;
}

export interface FleetOptions {
  natsUrl: string;
  /** Brokers per Kafka cluster id (hosts bound to a cluster not listed are an error). */
  kafka?: Record<string, string[]>;
  /**
   * The hosts: their records, or — with per-host credentials — their ids, each host
   * reading its own record from KV `hosts` as its own user.
   */
  hosts: readonly (HostRecord | string)[];
  logger: Logger;
  /** Names the fleet's Kafka consumer groups (offsets survive a restart of the fleet). */
  fleetId: string;
  /** NATS connections shared by the hosts (a host's subscriptions stay on one). */
  connections?: number;
  /**
   * A directory of per-host nkey seeds (`<hostId>.nk`, infra/nats/auth.ts): each
   * host gets its own connection as its own user, and reads with it what it needs
   * (its record, its topic's Kafka partitions). No connection is shared.
   */
  hostCredentials?: string;
  /** How long Kafka-bound hosts wait for their partitions (assigned by a southbound module). */
  partitionWaitMs?: number;
  /** Injected apply failures: `(hostId, op, message) → fail?`. */
  failOp?: (
    hostId: string,
    op: GoalStateMessage['ops'][number],
    message: GoalStateMessage,
  ) => boolean;
  /** Resync every host at start (default true). */
  resyncOnStart?: boolean;
  /** A slow agent: each ack goes out this long after the message was applied. */
  ackDelayMs?: number;
  /**
   * Observes `apply` (the agent applying one message) and, for Kafka, `deliver`
   * (the record's produce time → received), in seconds, by binding (`jetstream`, `kafka:<id>`).
   */
  stage?: (stage: 'apply' | 'deliver', binding: string, seconds: number) => void;
}

export interface Fleet {
  hosts: ReadonlyMap<string, SimulatedHost>;
  /** A host's agent restarts: its model is empty again and it resyncs. */
  restart: (hostId: string) => Promise<void>;
  /** Sum of every host's stats. */
  totals: () => HostStats;
  /** Sum of the stats of the hosts of each binding (`jetstream`, `kafka:<id>`), and their count. */
  byBinding: () => Map<string, HostStats & { hosts: number }>;
  /** NATS connections of the fleet all connected (for /readyz). */
  connected: () => boolean;
  /** Kafka broker connections open per cluster. */
  kafkaConnections: () => Record<string, number>;
  stop: () => Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Delta revisions remembered per VPC to tell a redelivery from disorder (stats only). */
const SEEN_DELTAS = 4096;
/** How often the fleet commits the offsets its agents have taken (off the fetch path). */
const COMMIT_INTERVAL_MS = 1000;
/** VPCs or buckets answered by no owner are asked again this many times (~70 s in all). */
const MISSING_RETRIES = 12;

/** The buckets a resync round's answers claimed (`ResyncReply.buckets`). */
class BucketClaims {
  private readonly claimed = new Set<number>();
  /** The bucket count the answers gave (0: no answer said). */
  count = 0;

  add(reply: Partial<ResyncReply>): void {
    const { buckets, bucketCount } = reply;
    if (typeof buckets !== 'string' || !Number.isInteger(bucketCount) || bucketCount! < 1) return;
    this.count = bucketCount!;
    if (buckets === '') return;
    try {
      for (const b of parseBucketSet(buckets, bucketCount)) this.claimed.add(b);
    } catch {
      // A malformed claim covers nothing: those buckets are asked again.
    }
  }

  /** An owner answered for the VPC's bucket (it sent its full, or has none for the host). */
  answered(vpcId: string): boolean {
    return this.count > 0 && this.claimed.has(bucketOf(vpcId, this.count));
  }

  /** Of the asked buckets (every one if undefined), those no answer claimed. */
  unclaimed(asked?: readonly number[]): number[] {
    const all = asked ?? Array.from({ length: this.count }, (_, i) => i);
    return all.filter((b) => !this.claimed.has(b));
  }
}

const emptyStats = (): HostStats => ({
  delivered: 0,
  needed: 0,
  bytes: 0,
  applied: 0,
  failed: 0,
  invalid: 0,
  resyncs: 0,
  resyncsRepeated: 0,
  outOfOrder: 0,
  duplicates: 0,
  misrouted: 0,
});

function addStats(sum: HostStats, stats: HostStats): void {
  for (const k of Object.keys(stats) as Array<keyof HostStats>) sum[k] += stats[k];
}

class HostAgent implements SimulatedHost {
  model: nca.HostModel;
  stats = emptyStats();
  private unicast: Subscription | undefined;
  private readonly multicast = new Map<string, Subscription>();
  private stopped = false;
  /** Delta revisions delivered, per VPC: a redelivery is a duplicate, not disorder. */
  private deltasSeen = new Map<string, Set<number>>();
  /** VPCs whose last message failed to apply: the delay before asking their full state again. */
  private readonly retrying = new Map<string, { delayMs: number; timer?: NodeJS.Timeout }>();

  constructor(
    readonly record: HostRecord,
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
    private readonly options: FleetOptions,
  ) {
    this.model = nca.emptyHostModel(record.hostId);
  }

  get label(): string {
    return bindingLabel(this.record);
  }

  get jetstream(): boolean {
    return this.record.binding.type === 'jetstream';
  }

  start(): void {
    if (!this.jetstream) return;
    this.unicast = this.nc.subscribe(subjects.goalStateHost(this.record, this.record.hostId), {
      callback: (err, msg) => {
        if (!err) this.receive(msg.data);
      },
    });
  }

  /** One goal-state message as it arrived (bytes): validate, apply, ack. */
  receive(data: Uint8Array): void {
    if (this.stopped) return;
    this.stats.delivered += 1;
    this.stats.bytes += data.length;
    const parsed = decodeGoalState(data);
    if (!parsed.ok) {
      this.stats.invalid += 1;
      this.options.logger.warn(
        { hostId: this.record.hostId, ...parsed.error },
        'goal state refused',
      );
      return;
    }
    const message = parsed.value;
    if (!addressedTo(message.target, this.record)) {
      // Another host's or cluster's goal state: not ours to apply (a reply another
      // host of the HOSTS account aimed at our subject, docs/security.md).
      this.stats.invalid += 1;
      this.options.logger.warn(
        { hostId: this.record.hostId, vpcId: message.vpcId, target: message.target.slice(0, 200) },
        'goal state for another target refused',
      );
      return;
    }
    if (message.mode === 'delta') this.noteDelta(message);
    const failOp = this.options.failOp;
    const began = performance.now();
    const handled = nca.handleGoalState(
      this.model,
      message,
      failOp ? { failOp: (op, m) => failOp(this.record.hostId, op, m) } : {},
    );
    this.options.stage?.('apply', this.label, (performance.now() - began) / 1000);
    if (handled.needed) this.stats.needed += 1;
    if (handled.ack.status === 'applied') {
      this.stats.applied += 1;
      if (message.mode === 'full') {
        clearTimeout(this.retrying.get(message.vpcId)?.timer);
        this.retrying.delete(message.vpcId);
        this.deltasSeen.delete(message.vpcId);
      }
    } else {
      this.stats.failed += 1;
      this.retryLater(message.vpcId);
    }
    const subject = subjects.ack(message.bucket, message.vpcId, this.record.hostId);
    const ack = encoder.encode(JSON.stringify(handled.ack));
    const delay = this.options.ackDelayMs ?? 0;
    if (delay > 0) setTimeout(() => this.stopped || this.nc.publish(subject, ack), delay);
    else this.nc.publish(subject, ack);
    if (!this.jetstream) return;
    if (handled.joined) void this.follow(message);
    else if (handled.left) {
      this.multicast.get(message.vpcId)?.unsubscribe();
      this.multicast.delete(message.vpcId);
    }
  }

  /**
   * A message that failed left the VPC behind on this host, and no later delta
   * brings the refused op back: ask the VPC's full state again, backing off
   * (1 s doubling to 30 s) while it keeps failing.
   */
  private retryLater(vpcId: string): void {
    const entry = this.retrying.get(vpcId) ?? { delayMs: 500 };
    if (entry.timer) return;
    entry.delayMs = Math.min(30_000, entry.delayMs * 2);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (!this.stopped) void this.resync([vpcId]);
    }, entry.delayMs);
    entry.timer.unref();
    this.retrying.set(vpcId, entry);
  }

  /**
   * Counts a delta delivered again, or out of order. Revisions are remembered from
   * the VPC's last full state on (one below its floor is a redelivery the full
   * covered), and the last SEEN_DELTAS of them at most.
   */
  private noteDelta(message: GoalStateMessage): void {
    const vpc = this.model.vpcs.get(message.vpcId);
    let seen = this.deltasSeen.get(message.vpcId);
    if (!seen) this.deltasSeen.set(message.vpcId, (seen = new Set()));
    if (seen.has(message.revision) || message.revision <= (vpc?.floor ?? 0))
      this.stats.duplicates += 1;
    else if (message.revision < (vpc?.revision ?? 0)) this.stats.outOfOrder += 1;
    seen.add(message.revision);
    if (seen.size > SEEN_DELTAS) seen.delete(seen.values().next().value!);
  }

  /** Subscribes to the VPC's multicast; asks a resync of it if one got past meanwhile. */
  private async follow(full: GoalStateMessage): Promise<void> {
    const subject = subjects.goalStateMulticast(this.record, full.vpcId);
    if (this.multicast.has(full.vpcId)) return;
    this.multicast.set(
      full.vpcId,
      this.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (!err) this.receive(msg.data);
        },
      }),
    );
    try {
      await this.nc.flush();
      const last = await this.jsm.direct.getMessage(streams.goalStates, { last_by_subj: subject });
      const revision = last
        ? (JSON.parse(decoder.decode(last.data)) as { revision?: number }).revision
        : 0;
      if (typeof revision === 'number' && revision > full.revision) {
        await this.resync([full.vpcId]);
      }
    } catch (err) {
      // Not known whether a multicast got past: take the VPC's full state again.
      this.options.logger.info(
        { hostId: this.record.hostId, vpcId: full.vpcId, err },
        'multicast catch-up check failed; resyncing the VPC',
      );
      if (!this.stopped) await this.resync([full.vpcId]);
    }
  }

  /**
   * Asks the owners for full states; retries while nobody answers. What no answer
   * covered is asked again, up to MISSING_RETRIES times: named VPCs, or for a
   * full resync the buckets no owner claimed (their bucket is failing over, or
   * between owners in a handover).
   */
  async resync(vpcIds?: string[]): Promise<number> {
    this.stats.resyncs += 1;
    let asked = vpcIds;
    // A full resync asks again for these buckets only (undefined: every bucket).
    let buckets: number[] | undefined;
    let answered = 0;
    let retries = 0;
    for (let attempt = 0; !this.stopped; attempt++) {
      const request = {
        hostId: this.record.hostId,
        ...(asked ? { vpcIds: asked } : {}),
        ...(buckets ? { buckets: formatBucketSet(buckets) } : {}),
      };
      let replies = 0;
      const covered = new Set<string>();
      const claims = new BucketClaims();
      try {
        const it = await this.nc.requestMany(
          subjects.resync(this.record.hostId),
          encoder.encode(JSON.stringify(request)),
          { strategy: 'timer', maxWait: 1500 },
        );
        for await (const msg of it) {
          replies += 1;
          const reply = msg.json<Partial<ResyncReply>>();
          for (const v of reply.vpcs ?? []) covered.add(v.vpcId);
          claims.add(reply);
        }
      } catch {
        // No responders yet: try again.
      }
      answered += covered.size;
      if (replies > 0) {
        let missing: number;
        if (asked)
          missing = (asked = asked.filter((v) => !covered.has(v) && !claims.answered(v))).length;
        // Owners that do not say which buckets they answered: one round, as before.
        else missing = (buckets = claims.count === 0 ? [] : claims.unclaimed(buckets)).length;
        if (missing === 0) return answered;
        if (++retries > MISSING_RETRIES) {
          const what = asked
            ? { vpcIds: asked.slice(0, 10) }
            : { buckets: formatBucketSet(buckets ?? []).slice(0, 200) };
          this.options.logger.warn(
            { hostId: this.record.hostId, ...what, missing },
            `resync: no owner answered for these ${asked ? 'VPCs' : 'buckets'}`,
          );
          return answered;
        }
        this.stats.resyncsRepeated += 1;
      }
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
    }
    return answered;
  }

  reset(): void {
    for (const sub of this.multicast.values()) sub.unsubscribe();
    this.multicast.clear();
    this.model = nca.emptyHostModel(this.record.hostId);
    this.deltasSeen = new Map();
  }

  stop(): void {
    this.stopped = true;
    for (const r of this.retrying.values()) clearTimeout(r.timer);
    this.unicast?.unsubscribe();
    for (const sub of this.multicast.values()) sub.unsubscribe();
  }
}

/** One consumer per Kafka cluster for the fleet's hosts on it. */
async function startKafkaIntake(
  clusterId: string,
  brokers: string[],
  agents: HostAgent[],
  options: FleetOptions,
): Promise<{ client: KafkaClient; stop: () => Promise<void> }> {
  const client = createKafkaClient(clusterId, brokers, {
    clientId: `alcor-fleet-${options.fleetId}`,
    logger: options.logger,
  });
  // topic → partition → agent
  const routes = new Map<string, Array<HostAgent | undefined>>();
  const byPlace = new Map<string, HostAgent[]>();
  for (const agent of agents) {
    const key = clusterKey(agent.record);
    const list = byPlace.get(key) ?? [];
    list.push(agent);
    byPlace.set(key, list);
  }
  for (const list of byPlace.values()) {
    const first = list[0]!;
    const place = first.record;
    // Read by one of the topic's own hosts: its user may read that one key.
    const order = await awaitKafkaPartitions(
      () => readKafkaPartitions(first.jsm, clusterId, place),
      list.map((a) => a.record.hostId),
      options.partitionWaitMs ?? 120_000,
    );
    const byId = new Map(list.map((a) => [a.record.hostId, a]));
    // Indexed by partition; hosts of the topic this fleet does not run are holes.
    routes.set(
      kafkaTopics.cluster(place),
      order.map((h) => byId.get(h)),
    );
  }
  // Only the partitions of this fleet's hosts are fetched.
  const wanted: Record<string, number[]> = {};
  for (const [topic, order] of routes) {
    wanted[topic] = order.flatMap((agent, partition) => (agent ? [partition] : []));
  }
  const deliver = (topic: string, partition: number, message: KafkaMessage): void => {
    const agent = routes.get(topic)?.[partition];
    if (!agent || !message.value) return;
    if (message.key?.toString() !== agent.record.hostId) agent.stats.misrouted += 1;
    else {
      options.stage?.('deliver', agent.label, (Date.now() - Number(message.timestamp)) / 1000);
      agent.receive(message.value);
    }
  };
  // Offsets to commit (the next to read, per topic and partition), committed once
  // per interval off the fetch path: kafkajs's own auto-commit makes every message
  // wait for the commit check, and a commit can take longer than a fetch.
  const toCommit = new Map<string, { topic: string; partition: number; offset: string }>();
  let committing: Promise<void> | undefined;
  const commit = (): Promise<void> => {
    if (committing || toCommit.size === 0) return committing ?? Promise.resolve();
    const offsets = [...toCommit.values()];
    toCommit.clear();
    const mine = consumer;
    committing = mine
      .commitOffsets(offsets)
      .catch((err: unknown) => {
        // Kept for the next round unless newer offsets came meanwhile; a consumer
        // restarted without them reads those messages again (agents ignore them).
        for (const o of offsets) {
          const key = `${o.topic}/${o.partition}`;
          if (!toCommit.has(key)) toCommit.set(key, o);
        }
        options.logger.debug({ kafkaCluster: clusterId, err }, 'offset commit failed');
      })
      .finally(() => (committing = undefined));
    return committing;
  };
  const commitTimer = setInterval(() => void commit(), COMMIT_INTERVAL_MS);
  commitTimer.unref();
  const eachBatch = ({ batch }: EachBatchPayload): Promise<void> => {
    for (const message of batch.messages) deliver(batch.topic, batch.partition, message);
    if (batch.messages.length > 0)
      toCommit.set(`${batch.topic}/${batch.partition}`, {
        topic: batch.topic,
        partition: batch.partition,
        offset: (BigInt(batch.lastOffset()) + 1n).toString(),
      });
    return Promise.resolve();
  };
  let stopped = false;
  let consumer: Consumer;
  let restartTimer: NodeJS.Timeout | undefined;
  let crashes = 0;
  const begin = async (): Promise<void> => {
    consumer = client.kafka.consumer({
      groupId: `alcor-fleet-${options.fleetId}-${clusterId}`,
      partitionAssigners: [hostPartitionsAssigner(wanted)],
      // A fetch returns as soon as any record is there (minBytes 1); the wait only
      // bounds how often an idle consumer asks again (it was 50 ms: 20 empty fetches
      // a second of hundreds of partitions each).
      maxWaitTimeInMs: 1000,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 2000 },
    });
    // kafkajs restarts a consumer only after a retriable error. One it gives up on
    // (no group coordinator while the cluster restarts) would leave these hosts
    // deaf for good: start a new consumer, backing off, until one runs.
    const mine = consumer;
    mine.on(mine.events.CRASH, ({ payload }) => {
      if (payload.restart || stopped || mine !== consumer) return;
      const delay = Math.min(10_000, 500 * 2 ** Math.min(crashes++, 5));
      options.logger.warn(
        { kafkaCluster: clusterId, err: payload.error, delayMs: delay },
        'Kafka consumer stopped by an error; starting a new one',
      );
      restartTimer = setTimeout(() => void again(), delay);
    });
    await mine.connect();
    await mine.subscribe({ topics: [...routes.keys()], fromBeginning: true });
    await mine.run({
      // Many partitions (a host each) per fetch: 8 at a time left the demo's Kafka hosts
      // 15 s behind (p50), 64 about 9 s; the rest is the consumer's CPU on 2 cores.
      partitionsConsumedConcurrently: 64,
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch,
    });
    crashes = 0;
  };
  const again = async (): Promise<void> => {
    if (stopped) return;
    await consumer.disconnect().catch(() => undefined);
    try {
      await begin();
    } catch (err) {
      const delay = Math.min(10_000, 500 * 2 ** Math.min(crashes++, 5));
      options.logger.warn(
        { kafkaCluster: clusterId, err, delayMs: delay },
        'Kafka consumer not started; retrying',
      );
      if (!stopped) restartTimer = setTimeout(() => void again(), delay);
    }
  };
  await begin();
  return {
    client,
    stop: async () => {
      stopped = true;
      clearTimeout(restartTimer);
      clearInterval(commitTimer);
      await commit();
      await consumer.disconnect().catch(() => undefined);
    },
  };
}

/** Answers the oracle's question to one host: what it holds, as digests. */
function answerState(agent: HostAgent, msg: Msg): void {
  let vpcIds: string[] | undefined;
  try {
    const body = msg.data.length > 0 ? (msg.json<{ vpcIds?: unknown }>() ?? {}) : {};
    if (Array.isArray(body.vpcIds)) vpcIds = body.vpcIds.filter((v) => typeof v === 'string');
  } catch {
    // An unreadable body asks for everything.
  }
  answerJson(msg, {
    hostId: agent.record.hostId,
    binding: agent.label,
    vpcs: encodeHostDigest(hostDigest(agent.model, vpcIds)),
  });
}

/** A host's own record, read as that host (its account may read that one key). */
async function ownRecord(jsm: JetStreamManager, hostId: string): Promise<HostRecord> {
  const found = await readHostRecord(jsm, hostId);
  if (!found)
    throw new ConfigError(
      'ALCOR_NCA_HOSTS',
      `host ${hostId} is not registered (alcor topology load)`,
    );
  if (!found.ok)
    throw new ConfigError(
      'ALCOR_NCA_HOSTS',
      `host ${hostId}'s record is invalid: ${found.error.message}`,
    );
  return found.value;
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const connections: NatsConnection[] = [];
  const agents = new Map<string, HostAgent>();
  if (options.hostCredentials) {
    const dir = options.hostCredentials;
    // Each host as its own user; connected a batch at a time.
    for (let i = 0; i < options.hosts.length; i += 16) {
      const batch = options.hosts.slice(i, i + 16);
      const made = await Promise.allSettled(
        batch.map(async (host) => {
          const hostId = typeof host === 'string' ? host : host.hostId;
          const nc = await connectNats(options.natsUrl, {
            name: `alcor-nca-${hostId}`,
            nkeySeedFile: join(dir, `${hostId}.nk`),
            inboxPrefix: subjects.hostInbox(hostId),
          });
          connections.push(nc);
          const jsm = await jetstreamManager(nc, { checkAPI: false });
          const record = typeof host === 'string' ? await ownRecord(jsm, hostId) : host;
          return new HostAgent(record, nc, jsm, options);
        }),
      );
      for (const result of made)
        if (result.status === 'fulfilled') agents.set(result.value.record.hostId, result.value);
      const failed = made.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        // No half-started fleet: close what was opened, then say why.
        await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
        throw failed.reason;
      }
    }
  } else {
    const records = options.hosts.map((h) => {
      if (typeof h === 'string')
        throw new ConfigError(
          'hosts',
          `host ${h} given by id only: that needs per-host credentials`,
        );
      return h;
    });
    const count = Math.max(1, options.connections ?? Math.min(8, Math.ceil(records.length / 500)));
    for (let i = 0; i < count; i++) {
      connections.push(
        await connectNats(options.natsUrl, { name: `alcor-fleet-${options.fleetId}-${i}` }),
      );
    }
    const jsm = await jetstreamManager(connections[0]!);
    records.forEach((record, i) => {
      agents.set(record.hostId, new HostAgent(record, connections[i % count]!, jsm, options));
    });
  }
  for (const agent of agents.values()) agent.start();

  const byKafka = new Map<string, HostAgent[]>();
  for (const agent of agents.values()) {
    const binding = agent.record.binding;
    if (binding.type !== 'kafka') continue;
    const list = byKafka.get(binding.cluster) ?? [];
    list.push(agent);
    byKafka.set(binding.cluster, list);
  }
  const intakes: Array<Awaited<ReturnType<typeof startKafkaIntake>>> = [];
  for (const [clusterId, list] of byKafka) {
    const brokers = options.kafka?.[clusterId];
    if (!brokers)
      throw new Error(`hosts are bound to Kafka cluster ${clusterId}, which is not configured`);
    intakes.push(await startKafkaIntake(clusterId, brokers, list, options));
  }

  // After a reconnect the core subscriptions may have missed messages: resync all.
  for (const nc of connections) {
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'reconnect') {
          for (const agent of agents.values()) {
            if (agent.jetstream && agent.nc === nc) void agent.resync();
          }
        }
      }
    })();
  }
  // What each host holds, for the convergence oracle (`alcor check`): each host
  // answers on its own connection, or one subscription answers for the fleet.
  const stateResponders = options.hostCredentials
    ? [...agents.values()].map((agent) =>
        agent.nc.subscribe(subjects.ncaState(agent.record.hostId), {
          callback: (err, msg) => {
            if (!err) answerState(agent, msg);
          },
        }),
      )
    : [
        connections[0]!.subscribe(subjects.ncaStateAll, {
          callback: (err, msg) => {
            // Another fleet's host: its fleet answers.
            const agent = agents.get(msg.subject.slice(subjects.ncaStateAll.length - 1));
            if (!err && agent) answerState(agent, msg);
          },
        }),
      ];
  const connectedFlags = connections.map((nc) => natsConnectedFlag(nc));
  if (options.resyncOnStart !== false) {
    await Promise.all([...agents.values()].map((a) => a.resync()));
  }
  options.logger.info(
    { hosts: agents.size, connections: connections.length, kafkaClusters: [...byKafka.keys()] },
    'fleet started',
  );

  return {
    hosts: agents,
    restart: async (hostId) => {
      const agent = agents.get(hostId);
      if (!agent) throw new Error(`no host ${hostId} in the fleet`);
      agent.reset();
      await agent.resync();
    },
    totals: () => {
      const sum = emptyStats();
      for (const a of agents.values()) addStats(sum, a.stats);
      return sum;
    },
    byBinding: () => {
      const out = new Map<string, HostStats & { hosts: number }>();
      for (const a of agents.values()) {
        let sum = out.get(a.label);
        if (!sum) out.set(a.label, (sum = { ...emptyStats(), hosts: 0 }));
        sum.hosts += 1;
        addStats(sum, a.stats);
      }
      return out;
    },
    connected: () => connectedFlags.every((c) => c()),
    kafkaConnections: () =>
      Object.fromEntries(intakes.map((i) => [i.client.clusterId, i.client.openConnections()])),
    stop: async () => {
      for (const sub of stateResponders) sub.unsubscribe();
      for (const a of agents.values()) a.stop();
      await Promise.all(intakes.map((i) => i.stop()));
      await Promise.all(connections.map((nc) => nc.drain().catch(() => undefined)));
    },
  };
}
