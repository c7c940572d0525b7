/**
 * The faults: each breaks one thing in a running system and returns what heals
 * it. Crashes are SIGKILL, and a supervisor (the harness) starts the process again
 * a moment later, as systemd or Kubernetes would.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import { readFileSync, statSync } from 'node:fs';
import type { Admin } from 'kafkajs';
import {
  createKafkaClient,
  createLogger,
  readStreamRange,
  type LocalKafka,
  type Logger,
} from '../../infra/index.js';
import { streams } from '../../shared/index.js';
import { eventually } from '../support/eventually.js';
import { fillJetStream, freeJetStream, INSUFFICIENT_RESOURCES } from '../support/storeFill.js';
import type { SteadyLoad } from './load.js';
import type { FaultSystem, ServiceKind, ServiceProcess } from './system.js';

export interface FaultContext {
  system: FaultSystem;
  load: SteadyLoad;
  rnd: () => number;
  log: Logger;
  /** What exactly was broken (for the report). */
  note: (what: string) => void;
  /** The fault's own check failed (it did not bite, or what it expects did not happen): the run fails. */
  fail: (why: string) => void;
}

export interface Fault {
  name: string;
  /** One line for the report. */
  what: string;
  /**
   * A fault that needs the single-server system (one nats-server, a link to cut;
   * single-broker Kafka clusters) or the scaled-out one (a NATS node to lose, a
   * Kafka broker among three).
   */
  needs?: 'single' | 'cluster';
  /** How long the fault lasts before it is healed. */
  holdMs: (system: FaultSystem) => number;
  /** Breaks it; the returned function heals it. */
  inject: (ctx: FaultContext) => Promise<Heal> | Heal;
}

export type Heal = () => Promise<void> | void;

const pick = <T>(rnd: () => number, xs: readonly T[]): T => {
  if (xs.length === 0) throw new Error('nothing to pick from');
  return xs[Math.floor(rnd() * xs.length)]!;
};

const running = (ctx: FaultContext, kind: ServiceKind): ServiceProcess[] =>
  ctx.system.of(kind).filter((p) => p.running());

/** SIGKILL the chosen process; the heal starts it again. */
const crash =
  (choose: (ctx: FaultContext) => Promise<ServiceProcess> | ServiceProcess) =>
  async (ctx: FaultContext): Promise<Heal> => {
    const p = await choose(ctx);
    ctx.note(p.name);
    await p.kill();
    return () => p.start();
  };

interface LocalServer {
  kill: () => Promise<void>;
  stop: () => Promise<void>;
  revive: () => Promise<void>;
}

/** Takes a server down (a crash, or a clean stop); the heal starts it again on the same ports and data. */
const serverDown =
  (how: 'kill' | 'stop', choose: (ctx: FaultContext) => [string, LocalServer]) =>
  async (ctx: FaultContext): Promise<Heal> => {
    const [name, server] = choose(ctx);
    ctx.note(name);
    await (how === 'kill' ? server.kill() : server.stop());
    return () => server.revive();
  };

/** Runs `use` with an admin client of a local Kafka cluster, as its admin user. */
async function withKafkaAdmin<T>(
  clusterId: string,
  cluster: LocalKafka,
  use: (admin: Admin, topics: string[]) => Promise<T>,
): Promise<T> {
  const client = createKafkaClient(clusterId, cluster.brokers, {
    clientId: 'alcor-fault',
    logger: createLogger({ name: 'fault-kafka', level: 'error' }),
    sasl: cluster.users?.admin ?? null,
    ssl: cluster.caFile ? { ca: [readFileSync(cluster.caFile, 'utf8')] } : null,
  });
  const admin = client.kafka.admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith('alcor.gs.'));
    return await use(admin, topics);
  } finally {
    await admin.disconnect();
  }
}

/** Deletes every goal-state record of every local Kafka cluster (retention, all at once); how many. */
async function deleteEveryRecord(ctx: FaultContext): Promise<number> {
  let deleted = 0;
  for (const [id, cluster] of Object.entries(ctx.system.servers.local.kafka))
    await withKafkaAdmin(id, cluster, async (admin, topics) => {
      for (const topic of topics) {
        const offsets = await admin.fetchTopicOffsets(topic);
        for (const o of offsets) deleted += Number(BigInt(o.high) - BigInt(o.low));
        await admin.deleteTopicRecords({
          topic,
          partitions: offsets.map((o) => ({ partition: o.partition, offset: o.high })),
        });
      }
    });
  return deleted;
}

/** The broker leading most partitions of the cluster's goal-state topics (a tie: the lowest id). */
function busiestLeader(
  clusterId: string,
  cluster: LocalKafka,
): Promise<{ nodeId: number; leads: number; of: number }> {
  return withKafkaAdmin(clusterId, cluster, async (admin, topics) => {
    // The set-up this fault is about: every partition on all three brokers, and all
    // three in sync (after an earlier run's kill, once the broker has caught up).
    const metadata = await eventually(
      async () => {
        const m = await admin.fetchTopicMetadata({ topics });
        const short = m.topics.some((t) =>
          t.partitions.some((p) => p.replicas.length < 3 || p.isr.length < 3),
        );
        return short ? undefined : m;
      },
      { timeoutMs: 60_000, what: 'every goal-state partition on 3 brokers, all in sync' },
    );
    const leads = new Map<number, number>(cluster.nodes.map((n) => [n.id, 0]));
    let of = 0;
    for (const t of metadata.topics)
      for (const p of t.partitions) {
        leads.set(p.leader, (leads.get(p.leader) ?? 0) + 1);
        of += 1;
      }
    const [nodeId, n] = [...leads].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]!;
    return { nodeId, leads: n, of };
  });
}

/** What a network fault cuts: a process's (or node's) cgroup, and the far side's ports. */
interface CutTarget {
  name: string;
  group: string | undefined;
  to?: number[];
  from?: number[];
}

/**
 * A real network fault (test/support/netFault.ts): the target's packets to (and
 * from) the ports dropped or reset by the kernel until healed.
 */
const netCut =
  (mode: 'drop' | 'reset', choose: (ctx: FaultContext) => CutTarget) =>
  async (ctx: FaultContext): Promise<Heal> => {
    const t = choose(ctx);
    const { net } = ctx.system;
    if (!t.group || net.available !== true)
      throw new Error(`no real network faults here: ${String(net.available)}`);
    ctx.note(t.name);
    const cut = await net.cut({
      group: t.group,
      mode,
      ...(t.to ? { to: t.to } : {}),
      ...(t.from ? { from: t.from } : {}),
    });
    return () => cut.heal();
  };

/** Every Kafka broker's client port. */
const kafkaPorts = (ctx: FaultContext): number[] =>
  Object.values(ctx.system.servers.local.kafka).flatMap((k) =>
    k.nodes.map((n) => Number(n.broker.split(':').pop())),
  );

/** A running process of the kind, as a cut's target. */
const processCut = (
  ctx: FaultContext,
  kind: ServiceKind,
  to: (p: ServiceProcess) => number[],
): CutTarget => {
  const p = pick(ctx.rnd, running(ctx, kind));
  return { name: p.name, group: p.group, to: to(p) };
};

/** Re-publishes the last `n` messages of a stream without their msg id: stored and delivered again. */
async function republishLast(ctx: FaultContext, stream: string, n: number): Promise<number> {
  const { nc } = ctx.system;
  const info = await (await jetstreamManager(nc)).streams.info(stream);
  let sent = 0;
  for await (const m of readStreamRange(nc, stream, {
    fromSeq: Math.max(1, info.state.last_seq - n + 1),
  })) {
    const h = headers();
    for (const [k, v] of m.headers ?? [])
      if (k !== 'Nats-Msg-Id') for (const x of v) h.append(k, x);
    nc.publish(m.subject, m.data, { headers: h });
    sent += 1;
  }
  return sent;
}

/** Refusals the load met whose reason matches, since `before` (a snapshot of the counts). */
function refusedSince(load: SteadyLoad, before: ReadonlyMap<string, number>, why: RegExp): number {
  let n = 0;
  for (const [reason, count] of load.refusals)
    if (why.test(reason)) n += count - (before.get(reason) ?? 0);
  return n;
}

export const FAULTS: Fault[] = [
  {
    name: 'kill-controller',
    what: 'SIGKILL of a controller (not the placement leader), restarted 1 s later',
    holdMs: () => 1000,
    inject: crash(async (ctx) => {
      const leader = await ctx.system.leader();
      const others = running(ctx, 'controller').filter((p) => p.name !== leader);
      return pick(ctx.rnd, others.length > 0 ? others : running(ctx, 'controller'));
    }),
  },
  {
    name: 'kill-leader',
    what: 'SIGKILL of the placement leader, restarted 1 s later',
    holdMs: () => 1000,
    inject: crash(async (ctx) => {
      const leader = await ctx.system.leader();
      const p = running(ctx, 'controller').find((c) => c.name === leader);
      if (!p) throw new Error(`no running controller is the placement leader (${leader})`);
      return p;
    }),
  },
  {
    name: 'kill-southbound',
    what: 'SIGKILL of a southbound module, restarted 1 s later',
    holdMs: () => 1000,
    inject: crash((ctx) => pick(ctx.rnd, running(ctx, 'southbound'))),
  },
  {
    name: 'kill-nca',
    what: 'SIGKILL of an NCA process (half the agents), restarted 1 s later',
    holdMs: () => 1000,
    inject: crash((ctx) => pick(ctx.rnd, running(ctx, 'nca'))),
  },
  {
    name: 'restart-nats',
    what: 'nats-server SIGKILLed and restarted 3 s later on the same file store',
    needs: 'single',
    holdMs: () => 3000,
    inject: serverDown('kill', (ctx) => ['nats-server', ctx.system.servers.local.nats!]),
  },
  {
    name: 'fill-jetstream-store',
    what: "the nats-server's JetStream file store filled to its limit (max_file_store) by another stream for 10 s: every write refused ('insufficient resources'), then the space freed",
    needs: 'single',
    holdMs: () => 10_000,
    inject: async (ctx) => {
      const before = new Map(ctx.load.refusals);
      const written = await fillJetStream(ctx.system.nc, ctx.system.storeLimit);
      return async () => {
        await freeJetStream(ctx.system.nc);
        const refused = refusedSince(ctx.load, before, INSUFFICIENT_RESOURCES);
        ctx.note(
          `${Math.round(written / 2 ** 20)} MiB written by another stream; ${refused} intent publishes refused with 'insufficient resources'`,
        );
        // The fault must have bitten: clients were told, clearly, why.
        if (refused === 0) ctx.fail("no intent publish was refused with 'insufficient resources'");
      };
    },
  },
  {
    name: 'lose-nats-node',
    what: 'one node of a three-node NATS cluster (R3 streams) SIGKILLed, back after 10 s',
    needs: 'cluster',
    holdMs: () => 10_000,
    inject: serverDown('kill', (ctx) => {
      const nodes = ctx.system.servers.local.natsNodes;
      const i = Math.floor(ctx.rnd() * nodes.length);
      return [`node ${i + 1} of ${nodes.length}`, nodes[i]!];
    }),
  },
  {
    name: 'bounce-nats-nodes',
    what: "the three-node NATS cluster's nodes SIGKILLed one after another for 60 s: each down 3 s, back, the next 2 s later",
    needs: 'cluster',
    holdMs: () => 60_000,
    inject: (ctx) => {
      const nodes = ctx.system.servers.local.natsNodes;
      const healed = new AbortController();
      let bounces = 0;
      const loop = (async () => {
        for (let i = 0; !healed.signal.aborted; i = (i + 1) % nodes.length) {
          const node = nodes[i]!;
          await node.kill();
          await sleep(3000);
          await node.revive();
          bounces += 1;
          await sleep(2000, undefined, { signal: healed.signal }).catch(() => undefined);
        }
      })();
      return async () => {
        healed.abort();
        await loop;
        ctx.note(`${bounces} bounces`);
      };
    },
  },
  {
    name: 'fill-nats-disk',
    what: "the filesystem under a NATS node's store (a small one of its own) filled to the last byte for 10 s: nats-server's answer to ENOSPC is to shut JetStream down on that node (a cluster's; the other two go on) or to fail every write of the streams that hit it (a single server's: an outage of the intake) — then the space freed and the node restarted, as an operator would",
    holdMs: () => 10_000,
    inject: async (ctx) => {
      const small = ctx.system.smallDisk;
      if (!small) throw new Error('no small filesystem under a NATS node here (needs root: tmpfs)');
      const node = ctx.system.servers.local.natsNodes[small.node - 1]!;
      const logFrom = statSync(node.logFile).size;
      const filled = await small.disk.fill();
      return async () => {
        small.disk.empty();
        const log = readFileSync(node.logFile).subarray(logFrom).toString();
        // A cluster's node shuts JetStream down; a single server keeps it and fails
        // every write of the streams that hit the full disk (sticky until a restart).
        const shutDown = /JetStream out of .*resources, will be DISABLED/.test(log);
        const writesFailed = /Critical write error: .*no space left on device/.test(log);
        // The operator's fix: space freed, the server restarted (JetStream stays
        // off on a running server that ran out).
        await node.kill();
        await node.revive();
        ctx.note(
          `node ${small.node}: ${Math.round(filled / 2 ** 20)} MiB filled; ${shutDown ? 'its JetStream shut down' : writesFailed ? "its streams' writes failed" : 'JetStream never hit the full disk'}, restarted`,
        );
        if (!shutDown && !writesFailed)
          ctx.fail('the node never hit the full disk (no JetStream shutdown, no failed write)');
      };
    },
  },
  {
    name: 'restart-kafka',
    what: 'a Kafka cluster stopped, started again 8 s later',
    holdMs: () => 8000,
    inject: serverDown('stop', (ctx) => {
      const id = pick(ctx.rnd, Object.keys(ctx.system.servers.local.kafka));
      return [`kafka ${id}`, ctx.system.servers.local.kafka[id]!];
    }),
  },
  {
    name: 'kill-kafka',
    what: 'a single-broker Kafka cluster SIGKILLed, started again 8 s later on its data',
    needs: 'single',
    holdMs: () => 8000,
    inject: serverDown('kill', (ctx) => {
      const id = pick(ctx.rnd, Object.keys(ctx.system.servers.local.kafka));
      return [`kafka ${id}`, ctx.system.servers.local.kafka[id]!];
    }),
  },
  {
    name: 'kill-kafka-broker',
    what: 'SIGKILL of the broker that leads most goal-state partitions of a 3-broker Kafka cluster (RF 3, min.insync 2), back after 8 s',
    needs: 'cluster',
    holdMs: () => 8000,
    inject: async (ctx) => {
      const id = pick(ctx.rnd, Object.keys(ctx.system.servers.local.kafka));
      const cluster = ctx.system.servers.local.kafka[id]!;
      const { nodeId, leads, of } = await busiestLeader(id, cluster);
      const node = cluster.nodes.find((n) => n.id === nodeId)!;
      ctx.note(`kafka ${id} node ${nodeId} (leader of ${leads} of ${of} goal-state partitions)`);
      await node.kill();
      return () => node.revive();
    },
  },
  {
    name: 'restart-redis',
    what: 'Redis SIGKILLed and restarted empty (the VPC↔host mapping must be rebuilt)',
    holdMs: () => 500,
    inject: serverDown('kill', (ctx) => ['redis-server', ctx.system.servers.local.redis!]),
  },
  {
    name: 'failover-redis',
    what: 'a master of the Redis Cluster (3 masters, 3 replicas) SIGKILLed: its replica takes over; back 8 s later, as a replica',
    needs: 'cluster',
    holdMs: () => 8000,
    inject: async (ctx) => {
      const redis = ctx.system.servers.local.redis;
      if (!redis || !('nodes' in redis)) throw new Error('Redis is not a cluster here');
      const roles = await Promise.all(redis.nodes.map((n) => n.role()));
      const node = pick(
        ctx.rnd,
        redis.nodes.filter((_, i) => roles[i] === 'master'),
      );
      ctx.note(`master on port ${node.port}`);
      await node.kill();
      return () => node.revive();
    },
  },
  {
    name: 'pause-controller',
    what: 'a controller paused (SIGSTOP) for 2.5 heartbeat TTLs, then resumed: a zombie',
    holdMs: (s) => 2.5 * s.heartbeatTtlMs,
    inject: (ctx) => {
      const p = pick(ctx.rnd, running(ctx, 'controller'));
      ctx.note(p.name);
      p.pause();
      return () => p.resume();
    },
  },
  {
    name: 'cut-controller',
    what: "a controller's network to NATS cut for 2.5 heartbeat TTLs (held, not reset), then healed",
    needs: 'single',
    holdMs: (s) => 2.5 * s.heartbeatTtlMs,
    inject: (ctx) => {
      const p = pick(ctx.rnd, running(ctx, 'controller'));
      ctx.note(p.name);
      p.link!.cut();
      return () => p.link!.heal();
    },
  },
  {
    name: 'partition-controller',
    what: "a controller's packets to and from NATS dropped by the kernel (nftables) for 2.5 heartbeat TTLs: retransmits, ping timeouts, no new connection",
    holdMs: (s) => 2.5 * s.heartbeatTtlMs,
    inject: netCut('drop', (ctx) => processCut(ctx, 'controller', (p) => p.natsPorts)),
  },
  {
    name: 'partition-nats-node',
    what: 'one node of the three-node NATS cluster cut from the other two (route packets dropped) for 10 s; its clients still reach it',
    needs: 'cluster',
    holdMs: () => 10_000,
    inject: netCut('drop', (ctx) => {
      const nodes = ctx.system.servers.local.natsNodes;
      const i = Math.floor(ctx.rnd() * nodes.length);
      return {
        name: `node ${i + 1} of ${nodes.length}`,
        group: ctx.system.natsGroup(i + 1),
        to: nodes.filter((_, j) => j !== i).map((n) => n.routePort!),
        from: [nodes[i]!.routePort!],
      };
    }),
  },
  {
    name: 'partition-nca-kafka',
    what: "an NCA process's packets to and from every Kafka broker dropped for 10 s (its Kafka-bound agents fall behind)",
    holdMs: () => 10_000,
    inject: netCut('drop', (ctx) => processCut(ctx, 'nca', () => kafkaPorts(ctx))),
  },
  {
    name: 'nca-kafka-records-deleted',
    what: 'an NCA process cut from Kafka for 10 s, and before the heal every goal-state record deleted (retention): its agents are then past records they never read',
    holdMs: () => 10_000,
    inject: async (ctx) => {
      const heal = await netCut('drop', (c) => processCut(c, 'nca', () => kafkaPorts(c)))(ctx);
      return async () => {
        ctx.note(`${await deleteEveryRecord(ctx)} records deleted`);
        await heal();
      };
    },
  },
  {
    name: 'reset-southbound-kafka',
    what: "a southbound module's connections to every Kafka broker reset (each packet answered by a TCP reset) for 8 s",
    holdMs: () => 8000,
    inject: netCut('reset', (ctx) => processCut(ctx, 'southbound', () => kafkaPorts(ctx))),
  },
  {
    name: 'slow-nca',
    what: "an NCA process's link delayed 800 ms each way for 10 s (slow agents, late acks)",
    needs: 'single',
    holdMs: () => 10_000,
    inject: (ctx) => {
      const p = pick(ctx.rnd, running(ctx, 'nca'));
      ctx.note(p.name);
      p.link!.delay(800);
      return () => p.link!.delay(0);
    },
  },
  {
    name: 'duplicate-deliveries',
    what: 'for 6 s every intent sent twice (second copy without msg id), and recent goal states and acks re-published every 500 ms',
    holdMs: () => 6000,
    inject: (ctx) => {
      ctx.load.duplicate = true;
      let copies = 0;
      // Republished every 500 ms until healed; healing cuts the wait short.
      const healed = new AbortController();
      const loop = (async () => {
        while (!healed.signal.aborted) {
          try {
            copies += await republishLast(ctx, streams.goalStates, 40);
            copies += await republishLast(ctx, streams.acks, 40);
          } catch (err) {
            ctx.log.warn({ err }, 'republish failed');
          }
          await sleep(500, undefined, { signal: healed.signal }).catch(() => undefined);
        }
      })();
      return async () => {
        healed.abort();
        ctx.load.duplicate = false;
        await loop;
        ctx.note(`${ctx.load.duplicatesSent} intents twice, ${copies} goal states and acks again`);
      };
    },
  },
  {
    name: 'rebalance',
    what: 'a controller joins (buckets move to it), then leaves cleanly 8 s later',
    holdMs: () => 8000,
    inject: async (ctx) => {
      const p = await ctx.system.addController();
      ctx.note(p.name);
      return () => ctx.system.remove(p);
    },
  },
];

export function faultsFor(natsNodes: number, names?: readonly string[]): Fault[] {
  const unknown = names?.filter((n) => !FAULTS.some((f) => f.name === n)) ?? [];
  if (unknown.length > 0)
    throw new Error(
      `unknown fault(s): ${unknown.join(', ')} (known: ${FAULTS.map((f) => f.name).join(', ')})`,
    );
  return FAULTS.filter(
    (f) =>
      (!names || names.includes(f.name)) &&
      (f.needs === undefined || f.needs === (natsNodes > 1 ? 'cluster' : 'single')),
  );
}
