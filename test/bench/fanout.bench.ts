/**
 * The MQ evaluation (issues 8 and 27) — the same seeded workload through each
 * delivery mode, on fresh real servers (one node, or a 3-node cluster), at
 * growing sizes; writes docs/evaluation.md (the measured section),
 * docs/bench/fanout.json and the charts.
 *
 *   npm run bench:fanout -- [--sizes 1000,10000,50000] [--modes all|id,id]
 *                           [--topologies single,cluster] [--real-agents 0]
 *                           [--hosts-per-partition 8] [--restart]
 *                           [--intents 3000] [--zipf 1.1] [--seed 42]
 *                           [--setup-budget 240] [--run-budget 120] [--window 32] [--no-write] [--merge] [--render]
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  KAFKA_VERSION,
  NATS_SERVER_VERSION,
  createLogger,
  repoRoot,
  runDir,
  startLocalKafka,
  startLocalNats,
  startLocalNatsCluster,
  type LocalKafka,
  type LocalNats,
} from '../../infra/index.js';
import { DEFAULT_BUCKET_COUNT } from '../../shared/index.js';
import {
  MODES,
  SetupBudgetExceeded,
  processUsage,
  type Counts,
  type Mode,
  type Prepared,
  type ServerHandle,
} from './fanout/modes.js';
import type { Recovery } from './fanout/realAgents.js';
import { renderEvaluation } from './fanout/report.js';
import { Tally } from './fanout/tally.js';
import { WireCounter, wireSince, type WireBytes } from './fanout/wire.js';
import { buildWorkload, neededBy, type FanoutWorkload } from './fanout/workload.js';
import { pct } from './report.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,50000' },
    modes: { type: 'string', default: 'all' },
    /** `single`: one node; `cluster`: 3 nodes (R3 streams; Kafka topics with 3 replicas). */
    topologies: { type: 'string', default: 'single' },
    /** Hosts run as real agents, a connection each, in worker processes (JetStream modes). */
    'real-agents': { type: 'string', default: '0' },
    /** kafka-hostgroup: hosts sharing a partition. */
    'hosts-per-partition': { type: 'string', default: '8' },
    /** After the run: a broker restarted (one node of a cluster), then a probe to every host. */
    restart: { type: 'boolean', default: false },
    intents: { type: 'string', default: '3000' },
    zipf: { type: 'string', default: '1.1' },
    seed: { type: 'string', default: '42' },
    'setup-budget': { type: 'string', default: '240' },
    window: { type: 'string', default: '32' },
    /** Stops publishing a mode's intents after this many seconds (a design too slow for the size). */
    'run-budget': { type: 'string', default: '120' },
    'no-write': { type: 'boolean', default: false },
    /** Keep the rows of other sizes and modes in docs/bench/fanout.json (a partial rerun). */
    merge: { type: 'boolean', default: false },
    /** Only render docs/evaluation.md and the charts again from docs/bench/fanout.json. */
    render: { type: 'boolean', default: false },
  },
});

const sizes = values.render ? [] : values.sizes.split(',').map(Number);
const modes =
  values.modes === 'all' ? MODES : MODES.filter((m) => values.modes.split(',').includes(m.id));
type Topology = 'single' | 'cluster';
const topologies = values.topologies.split(',') as Topology[];
const REAL_AGENTS = Number(values['real-agents']);
const HOSTS_PER_PARTITION = Number(values['hosts-per-partition']);
if (
  modes.length === 0 ||
  sizes.some((s) => !Number.isInteger(s) || s < 10) ||
  topologies.some((t) => t !== 'single' && t !== 'cluster') ||
  !Number.isInteger(REAL_AGENTS) ||
  REAL_AGENTS < 0 ||
  !Number.isInteger(HOSTS_PER_PARTITION) ||
  HOSTS_PER_PARTITION < 1
) {
  process.stderr.write(
    `bad --modes, --sizes, --topologies, --real-agents or --hosts-per-partition; modes: ${MODES.map((m) => m.id).join(', ')}\n`,
  );
  process.exit(2);
}
/**
 * What a broker host would have: Kafka maps two index files per partition
 * segment, and Linux's default of 65,530 maps is met at ~30,000 partitions. Raised
 * here when this process may (root); the open-files limit (20,000 per process
 * here) cannot be raised without CAP_SYS_RESOURCE, and the report says so.
 */
const MAX_MAP_COUNT = 262_144;
try {
  const path = '/proc/sys/vm/max_map_count';
  if (Number(readFileSync(path, 'utf8')) < MAX_MAP_COUNT)
    writeFileSync(path, String(MAX_MAP_COUNT));
} catch {
  // Not root: the default stays.
}

/** Nodes of a cluster topology. */
const CLUSTER_NODES = 3;
/** After a restart: how long every host is waited for, and how long one probe round. */
const RESTART_BOUND_MS = 300_000;
const PROBE_ROUND_MS = 2000;
const WINDOW = Number(values.window);
const FANOUT_JSON = join(repoRoot, 'docs', 'bench', 'fanout.json');
const logger = createLogger({ name: 'bench', level: 'silent', pretty: false });
const say = (text: string): void => void process.stdout.write(`${text}\n`);

/** After a broker restart: how long until every host took a probe sent once it was back. */
export interface RestartRow {
  /** What was restarted. */
  what: string;
  /** Stop → serving again (the node's own readiness). */
  downSeconds: number;
  /** Stop → the last host's probe taken. */
  allProbedSeconds: number;
  hostsProbed: number;
  /** The real agents' reconnect and resync (JetStream modes with real agents). */
  real?: Recovery;
}

export interface FanoutRow {
  hosts: number;
  mode: string;
  /** One node, or a 3-node cluster (absent in rows of earlier runs: single). */
  topology?: Topology;
  brokers?: number;
  /** kafka-hostgroup's hosts per partition. */
  hostsPerPartition?: number;
  label: string;
  status: 'ok' | 'setup over budget' | 'setup failed' | 'run over budget' | 'incomplete';
  /** Intents published (fewer than `intents` when the run went over its budget). */
  published?: number;
  note?: string;
  setupSeconds: number;
  intents: number;
  complete: number;
  seconds: number;
  intentsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  counts?: Counts;
  messagesPerIntent: number;
  delivered: number;
  needed: number;
  ratio: number;
  worstHostRatio: number;
  /** Hosts delivered something they did not need at all. */
  hostsWithUnneeded: number;
  duplicates: number;
  natsConnections?: number;
  /** Summed over the nodes. */
  broker: {
    cpuSeconds: number;
    rssMb: number;
    setupCpuSeconds: number;
    /** File descriptors open at the end of setup, the most of any node. */
    openFilesMax?: number;
  };
  /** The bench process (publisher, simulated agents, Kafka reader): CPU and event-loop delay. */
  ours: { cpuSeconds: number; rssMb: number; eventLoopP99Ms?: number };
  /** The real agents' worker processes over the run. */
  agents?: { cpuSeconds: number; rssMb: number; eventLoopP99Ms: number };
  /** Bytes on the wire over the run (nftables, wire.ts): the clients', and between brokers. */
  wire?: WireBytes;
  restart?: RestartRow;
}

/** One node or a cluster of either kind, with what the bench needs of it. */
interface Servers {
  handle: ServerHandle;
  pids: () => number[];
  monitorUrls: string[];
  /** Restarts one node (the only one, or the first of a cluster); resolves once it serves again. */
  restartOne: () => Promise<string>;
  stop: () => Promise<void>;
}

async function startServers(mode: Mode, topology: Topology, dir: string): Promise<Servers> {
  const nodes = topology === 'cluster' ? CLUSTER_NODES : 1;
  if (mode.broker === 'nats') {
    const list: LocalNats[] =
      nodes === 1
        ? [await startLocalNats({ dir, bucketCount: DEFAULT_BUCKET_COUNT })]
        : (await startLocalNatsCluster({ dir, nodes, bucketCount: DEFAULT_BUCKET_COUNT })).nodes;
    return {
      handle: { broker: 'nats', urls: list.map((n) => n.url), replicas: nodes },
      pids: () => list.map((n) => n.process.pid!),
      monitorUrls: list.map((n) => n.monitorUrl),
      restartOne: async () => {
        await list[0]!.stop();
        await list[0]!.revive();
        return nodes === 1 ? 'the server' : 'node 1 of 3';
      },
      stop: async () => void (await Promise.allSettled(list.map((n) => n.stop()))),
    };
  }
  const kafka: LocalKafka = await startLocalKafka({
    clusterId: 'bench',
    dir,
    heapMb: 1024,
    brokers: nodes,
  });
  return {
    handle: { broker: 'kafka', brokers: kafka.brokers, replicas: nodes },
    pids: () => kafka.nodes.map((n) => n.process.pid!),
    monitorUrls: [],
    restartOne: async () => {
      await kafka.nodes[0]!.stop();
      await kafka.nodes[0]!.revive();
      return nodes === 1 ? 'the broker' : 'broker 1 of 3';
    },
    stop: () => kafka.stop(),
  };
}

/** CPU and RSS summed over the nodes; the most file descriptors any has open. */
function usageOf(pids: readonly number[]): {
  cpuSeconds: number;
  rssMb: number;
  openFilesMax: number;
} {
  let cpuSeconds = 0;
  let rssMb = 0;
  let openFilesMax = 0;
  for (const pid of pids) {
    const u = processUsage(pid);
    cpuSeconds += u.cpuSeconds;
    rssMb += u.rssMb;
    try {
      openFilesMax = Math.max(openFilesMax, readdirSync(`/proc/${pid}/fd`).length);
    } catch {
      // Gone (a broker that died).
    }
  }
  return { cpuSeconds, rssMb, openFilesMax };
}

/**
 * A broker restarted (one node of a cluster), then probes sent to every host
 * once it serves again, a round at a time (each retried while the clients
 * reconnect), until every host has taken one: stop → the last host's first
 * probe. A host whose subscription was not back yet takes a later round's. Also
 * the real agents' own reconnect and resync.
 */
async function restartAndProbe(
  servers: Servers,
  prepared: Prepared,
  tally: Tally,
  hosts: number,
): Promise<RestartRow> {
  const got = new Set<string>();
  let lastAt = 0;
  let onAll: (() => void) | undefined;
  tally.probe = (hostId) => {
    if (got.has(hostId)) return;
    got.add(hostId);
    lastAt = performance.now();
    if (got.size === hosts) onAll?.();
  };
  const sinceEpoch = Date.now();
  const down = performance.now();
  const what = await servers.restartOne();
  const downSeconds = (performance.now() - down) / 1000;
  const deadline = performance.now() + RESTART_BOUND_MS;
  for (let round = 1; got.size < hosts && performance.now() < deadline; round++) {
    await prepared.probe(round);
    await new Promise<void>((resolve) => {
      onAll = resolve;
      setTimeout(resolve, PROBE_ROUND_MS);
    });
  }
  const real = await prepared.real?.awaitRecovered(sinceEpoch, 120_000);
  return {
    what,
    downSeconds,
    allProbedSeconds: got.size === hosts ? (lastAt - down) / 1000 : NaN,
    hostsProbed: got.size,
    ...(real ? { real } : {}),
  };
}

async function runMode(
  mode: Mode,
  topology: Topology,
  workload: FanoutWorkload,
  workloadArgs: { hosts: number; intents: number; zipf: number; seed: number },
): Promise<FanoutRow> {
  const dir = runDir('alcor-fanout-');
  const servers = await startServers(mode, topology, dir);
  const pids = servers.pids();
  const tally = new Tally(workload);
  const base: FanoutRow = {
    hosts: workload.hosts.length,
    mode: mode.id,
    topology,
    brokers: pids.length,
    ...(mode.id === 'kafka-hostgroup' ? { hostsPerPartition: HOSTS_PER_PARTITION } : {}),
    label: mode.label,
    status: 'ok',
    setupSeconds: 0,
    intents: workload.intents.length,
    complete: 0,
    seconds: 0,
    intentsPerSecond: 0,
    p50Ms: NaN,
    p99Ms: NaN,
    messagesPerIntent: 0,
    delivered: 0,
    needed: 0,
    ratio: NaN,
    worstHostRatio: NaN,
    hostsWithUnneeded: 0,
    duplicates: 0,
    broker: { cpuSeconds: 0, rssMb: 0, setupCpuSeconds: 0 },
    ours: { cpuSeconds: 0, rssMb: 0 },
  };
  const before = usageOf(pids);
  // From here the bench's sockets are the clients' (wire.ts).
  const wire = WireCounter.open();
  const setupStarted = performance.now();
  let prepared: Prepared;
  try {
    prepared = await mode.prepare(servers.handle, {
      workload,
      tally,
      logger,
      setupBudgetMs: Number(values['setup-budget']) * 1000,
      progress: (text) => say(`    … ${text}`),
      realAgents: REAL_AGENTS,
      workloadArgs,
      hostsPerPartition: HOSTS_PER_PARTITION,
    });
  } catch (err) {
    wire?.close();
    const usage = usageOf(pids);
    await servers.stop();
    rmSync(dir, { recursive: true, force: true });
    const setupSeconds = (performance.now() - setupStarted) / 1000;
    // A layout the broker cannot set up at this size is a result, not a crash of the bench.
    return {
      ...base,
      status: err instanceof SetupBudgetExceeded ? 'setup over budget' : 'setup failed',
      note:
        err instanceof SetupBudgetExceeded
          ? `${err.done} of ${err.of} ${err.what} in ${setupSeconds.toFixed(0)} s`
          : `after ${setupSeconds.toFixed(0)} s: ${(err as Error).message.split('\n')[0]}`,
      setupSeconds,
      broker: { ...usage, setupCpuSeconds: NaN },
    };
  }
  const setupSeconds = (performance.now() - setupStarted) / 1000;
  const afterSetup = usageOf(pids);
  const agentsBefore = await prepared.real?.usage();
  const wireBefore = wire?.read();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const ourBefore = process.cpuUsage();
  const started = performance.now();
  const inFlight = new Set<Promise<void>>();
  // Intents of one VPC go out one after another, as its owner decides them.
  const lastOfVpc = new Map<string, Promise<void>>();
  const runBudgetMs = Number(values['run-budget']) * 1000;
  let published = workload.intents.length;
  let failed: unknown;
  for (let i = 0; i < workload.intents.length && failed === undefined; i++) {
    if (performance.now() - started > runBudgetMs) {
      published = i;
      break;
    }
    const vpcId = workload.intents[i]![0]?.vpcId ?? '';
    const p = (lastOfVpc.get(vpcId) ?? Promise.resolve()).then(() => {
      tally.started(i);
      return prepared.publish(i);
    });
    lastOfVpc.set(vpcId, p);
    inFlight.add(p);
    p.then(
      () => inFlight.delete(p),
      (err: unknown) => {
        inFlight.delete(p);
        failed ??= err;
      },
    );
    if (inFlight.size >= WINDOW) await Promise.race(inFlight).catch(() => undefined);
  }
  await Promise.allSettled(inFlight);
  if (failed !== undefined) say(`    … a publish failed: ${(failed as Error).message}`);
  tally.limit(published);
  const all = await tally.all(120_000);
  // Late and unneeded deliveries settle.
  await new Promise((r) => setTimeout(r, 1000));
  const lastDone = Math.max(...tally.doneAt);
  const seconds = ((all ? lastDone : performance.now()) - started) / 1000;
  const after = usageOf(pids);
  const ourCpu = process.cpuUsage(ourBefore);
  loop.disable();
  const wireAfter = wire?.read();
  const agentsAfter = await prepared.real?.usage();
  const counts = await prepared.counts();
  let natsConnections: number | undefined;
  if (servers.monitorUrls.length > 0) {
    natsConnections = 0;
    for (const url of servers.monitorUrls) {
      const varz = (await (await fetch(`${url}/varz`)).json()) as { connections: number };
      natsConnections += varz.connections;
    }
  }
  // Out of the clients' cgroup before a broker is started again.
  wire?.close();
  const restart = values.restart
    ? await restartAndProbe(servers, prepared, tally, workload.hosts.length)
    : undefined;
  await prepared.stop().catch((err: unknown) => say(`    … stop: ${(err as Error).message}`));
  await servers.stop();
  rmSync(dir, { recursive: true, force: true });

  const latencies: number[] = [];
  for (let i = 0; i < workload.intents.length; i++)
    if (tally.doneAt[i]! > 0) latencies.push(tally.doneAt[i]! - tally.startedAt[i]!);
  let delivered = 0;
  let needed = 0;
  let worst = 0;
  let unneeded = 0;
  for (const [hostId, n] of neededBy(workload, published)) {
    const d = tally.delivered.get(hostId) ?? 0;
    delivered += d;
    needed += n;
    if (n > 0) worst = Math.max(worst, d / n);
    else if (d > 0) unneeded += 1;
  }
  return {
    ...base,
    status: !all ? 'incomplete' : published < workload.intents.length ? 'run over budget' : 'ok',
    ...(!all
      ? {
          note: `${tally.complete - (workload.intents.length - published)} of ${published} intents reached all their hosts`,
        }
      : published < workload.intents.length
        ? {
            note: `${published} of ${workload.intents.length} intents published in ${values['run-budget']} s`,
          }
        : {}),
    published,
    setupSeconds,
    complete: tally.complete,
    seconds,
    intentsPerSecond: published / seconds,
    p50Ms: pct(latencies, 50),
    p99Ms: pct(latencies, 99),
    counts,
    messagesPerIntent: counts.published.messages / published,
    delivered,
    needed,
    ratio: delivered / needed,
    worstHostRatio: worst,
    hostsWithUnneeded: unneeded,
    duplicates: tally.duplicates,
    ...(natsConnections === undefined ? {} : { natsConnections }),
    broker: {
      cpuSeconds: after.cpuSeconds - afterSetup.cpuSeconds,
      rssMb: after.rssMb,
      setupCpuSeconds: afterSetup.cpuSeconds - before.cpuSeconds,
      openFilesMax: afterSetup.openFilesMax,
    },
    ours: {
      cpuSeconds: (ourCpu.user + ourCpu.system) / 1e6,
      rssMb: process.memoryUsage().rss / 2 ** 20,
      eventLoopP99Ms: loop.percentile(99) / 1e6,
    },
    ...(agentsBefore && agentsAfter
      ? {
          agents: {
            cpuSeconds: agentsAfter.cpuSeconds - agentsBefore.cpuSeconds,
            rssMb: agentsAfter.rssMb,
            eventLoopP99Ms: agentsAfter.eventLoopP99Ms,
          },
        }
      : {}),
    ...(wireBefore && wireAfter ? { wire: wireSince(wireAfter, wireBefore) } : {}),
    ...(restart ? { restart } : {}),
  };
}

let args: Record<string, unknown> = values;
const rows: FanoutRow[] = [];
const workloads: Array<
  FanoutWorkload['stats'] & { hosts: number; clusters: number; intents: number }
> = [];
for (const hosts of sizes) {
  const workload = buildWorkload({
    hosts,
    intents: Number(values.intents),
    zipf: Number(values.zipf),
    seed: Number(values.seed),
  });
  workloads.push({
    hosts,
    clusters: workload.clusters.size,
    intents: workload.intents.length,
    ...workload.stats,
  });
  say(
    `${hosts} hosts (${workload.clusters.size} clusters): ${workload.stats.vpcs} VPCs, ${workload.stats.ports} ports, ${workload.intents.length} intents → ${workload.stats.messages} goal states`,
  );
  for (const topology of topologies)
    for (const mode of modes) {
      say(`  ${mode.id} (${topology}) …`);
      const row = await runMode(mode, topology, workload, {
        hosts,
        intents: Number(values.intents),
        zipf: Number(values.zipf),
        seed: Number(values.seed),
      });
      rows.push(row);
      say(
        `  ${mode.id} (${topology}): ${row.status}${row.note ? ` (${row.note})` : ''}; setup ${row.setupSeconds.toFixed(1)} s; ${row.intentsPerSecond.toFixed(0)} intents/s; p50 ${row.p50Ms.toFixed(0)} ms p99 ${row.p99Ms.toFixed(0)} ms; published ${row.counts?.published.messages ?? 0}; delivered/needed ${row.ratio.toFixed(3)} (worst host ${row.worstHostRatio.toFixed(2)}); broker ${row.broker.cpuSeconds.toFixed(1)} cpu-s, ${row.broker.rssMb.toFixed(0)} MiB, ${row.broker.openFilesMax ?? '?'} fds; ours ${row.ours.cpuSeconds.toFixed(1)} cpu-s, loop p99 ${row.ours.eventLoopP99Ms?.toFixed(0)} ms${row.agents ? `; agents ${row.counts?.realAgents} real in ${row.counts?.agentProcesses} processes, ${row.agents.cpuSeconds.toFixed(1)} cpu-s, loop p99 ${row.agents.eventLoopP99Ms.toFixed(0)} ms` : ''}${row.wire ? `; wire ${(row.wire.client / 1e6).toFixed(1)} MB client, ${(row.wire.peers / 1e6).toFixed(1)} MB between brokers` : ''}${row.restart ? `; restart of ${row.restart.what}: down ${row.restart.downSeconds.toFixed(1)} s, all ${row.restart.hostsProbed} probed at ${row.restart.allProbedSeconds.toFixed(1)} s${row.restart.real ? `, real agents reconnected p99 ${row.restart.real.reconnectP99Ms.toFixed(0)} ms, resynced p99 ${row.restart.real.resyncP99Ms.toFixed(0)} ms (${row.restart.real.resynced}/${row.restart.real.agents})` : ''}` : ''}`,
      );
    }
}

if ((values.merge || values.render) && existsSync(FANOUT_JSON)) {
  const kept = JSON.parse(readFileSync(FANOUT_JSON, 'utf8')) as {
    args: typeof args;
    rows: FanoutRow[];
    workloads: typeof workloads;
  };
  if (values.render) args = kept.args;
  const rerun = (r: FanoutRow): boolean =>
    sizes.includes(r.hosts) &&
    modes.some((m) => m.id === r.mode) &&
    topologies.includes(r.topology ?? 'single') &&
    (r.hostsPerPartition ?? HOSTS_PER_PARTITION) === HOSTS_PER_PARTITION;
  rows.unshift(...kept.rows.filter((r) => !rerun(r)));
  workloads.unshift(...kept.workloads.filter((w) => !sizes.includes(w.hosts)));
  const order = MODES.map((m) => m.id);
  const topo = (r: FanoutRow): number => (r.topology === 'cluster' ? 1 : 0);
  rows.sort(
    (a, b) =>
      a.hosts - b.hosts ||
      topo(a) - topo(b) ||
      order.indexOf(a.mode) - order.indexOf(b.mode) ||
      (a.hostsPerPartition ?? 0) - (b.hostsPerPartition ?? 0),
  );
  workloads.sort((a, b) => a.hosts - b.hosts);
}

if (!values['no-write']) {
  await renderEvaluation({
    rows,
    workloads,
    args,
    versions: { nats: NATS_SERVER_VERSION, kafka: KAFKA_VERSION },
  });
  say('wrote docs/evaluation.md, docs/bench/fanout.json and the charts');
}
process.exit(0);
