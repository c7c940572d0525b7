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
 *   subject's last stored message (once subscribed, and a second later) and asks
 *   a resync of that VPC if it is newer.
 * - Kafka binding: one consumer per Kafka cluster for the whole fleet, over the
 *   topics of its hosts; a partition is a host (infra/kafka/partitions.ts), so
 *   each record goes to exactly the host of its partition.
 *
 * One host's agent: hostAgent.ts; the Kafka consumer: kafkaIntake.ts.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { join } from 'node:path';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import {
  answerJson,
  connectNats,
  natsConnectedFlag,
  readHostRecord,
  type Logger,
} from '../../infra/index.js';
import {
  ConfigError,
  subjects,
  type GoalStateMessage,
  type HostRecord,
  type NcaStateReply,
} from '../../shared/index.js';
import { encodeHostDigest, hostDigest } from './oracle.js';

import {
  HostAgent,
  addStats,
  emptyStats,
  type AgentOptions,
  type HostStats,
  type SimulatedHost,
} from './hostAgent.js';
import { startKafkaIntake } from './kafkaIntake.js';

export type { HostStats, SimulatedHost } from './hostAgent.js';

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
  /** With per-host users: reconnects spread at random over this long (default 4 ms a host, ≥ 1 s). */
  reconnectSpreadMs?: number;
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
  /** Each agent keeps its last messages, to describe a delta out of order (tests). */
  trail?: boolean;
  /** Broken agents, for testing the checks (AgentOptions.applyLate). */
  applyLate?: boolean;
  /** Where each host's goal states are programmed, when not in the agent's model (AgentOptions.dataplane). */
  dataplane?: AgentOptions['dataplane'];
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
  } satisfies NcaStateReply);
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

/** Reconnect spread per host of a fleet with a connection per host. */
const RECONNECT_SPREAD_PER_HOST_MS = 4;

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const connections: NatsConnection[] = [];
  const agents = new Map<string, HostAgent>();
  if (options.hostCredentials) {
    const dir = options.hostCredentials;
    // One process, a connection per host: after NATS comes back their reconnects are
    // spread (about 4 ms of a handshake each), as separate machines' would be.
    const reconnectSpreadMs =
      options.reconnectSpreadMs ??
      Math.max(1000, options.hosts.length * RECONNECT_SPREAD_PER_HOST_MS);
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
            reconnectSpreadMs,
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
