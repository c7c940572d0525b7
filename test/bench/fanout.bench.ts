/**
 * Issue 8: the MQ evaluation — the same seeded workload through each delivery
 * mode, on fresh real servers, at growing sizes; writes docs/evaluation.md (the
 * measured section), docs/bench/fanout.json and the charts.
 *
 *   npm run bench:fanout -- [--sizes 1000,10000,50000] [--modes all|id,id]
 *                           [--intents 3000] [--zipf 1.1] [--seed 42]
 *                           [--setup-budget 240] [--run-budget 120] [--window 32] [--no-write] [--merge] [--render]
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  KAFKA_VERSION,
  NATS_SERVER_VERSION,
  createLogger,
  repoRoot,
  runDir,
  startLocalKafka,
  startLocalNats,
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
} from './fanout/modes.js';
import { renderEvaluation } from './fanout/report.js';
import { Tally } from './fanout/tally.js';
import { buildWorkload, neededBy, type FanoutWorkload } from './fanout/workload.js';
import { pct } from './report.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,50000' },
    modes: { type: 'string', default: 'all' },
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
if (modes.length === 0 || sizes.some((s) => !Number.isInteger(s) || s < 10)) {
  process.stderr.write(`bad --modes or --sizes; modes: ${MODES.map((m) => m.id).join(', ')}\n`);
  process.exit(2);
}
const WINDOW = Number(values.window);
const FANOUT_JSON = join(repoRoot, 'docs', 'bench', 'fanout.json');
const logger = createLogger({ name: 'bench', level: 'silent', pretty: false });
const say = (text: string): void => void process.stdout.write(`${text}\n`);

export interface FanoutRow {
  hosts: number;
  mode: string;
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
  broker: { cpuSeconds: number; rssMb: number; setupCpuSeconds: number };
  ours: { cpuSeconds: number; rssMb: number };
}

async function startServer(mode: Mode, dir: string): Promise<LocalNats | LocalKafka> {
  return mode.broker === 'nats'
    ? startLocalNats({ dir, bucketCount: DEFAULT_BUCKET_COUNT })
    : startLocalKafka({ clusterId: 'bench', dir, heapMb: 1024 });
}

async function runMode(mode: Mode, workload: FanoutWorkload): Promise<FanoutRow> {
  const dir = runDir('alcor-fanout-');
  const server = await startServer(mode, dir);
  const pid = server.process.pid!;
  const tally = new Tally(workload);
  const base: FanoutRow = {
    hosts: workload.hosts.length,
    mode: mode.id,
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
  const before = processUsage(pid);
  const setupStarted = performance.now();
  let prepared;
  try {
    prepared = await mode.prepare(
      'url' in server ? { url: server.url } : { brokers: server.brokers },
      {
        workload,
        tally,
        logger,
        setupBudgetMs: Number(values['setup-budget']) * 1000,
        progress: (text) => say(`    … ${text}`),
      },
    );
  } catch (err) {
    const usage = processUsage(pid);
    await server.stop();
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
  const afterSetup = processUsage(pid);
  const ourBefore = process.cpuUsage();
  const started = performance.now();
  const inFlight = new Set<Promise<void>>();
  // Intents of one VPC go out one after another, as its owner decides them.
  const lastOfVpc = new Map<string, Promise<void>>();
  const runBudgetMs = Number(values['run-budget']) * 1000;
  let published = workload.intents.length;
  for (let i = 0; i < workload.intents.length; i++) {
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
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= WINDOW) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  tally.limit(published);
  const all = await tally.all(120_000);
  // Late and unneeded deliveries settle.
  await new Promise((r) => setTimeout(r, 1000));
  const lastDone = Math.max(...tally.doneAt);
  const seconds = ((all ? lastDone : performance.now()) - started) / 1000;
  const after = processUsage(pid);
  const ourCpu = process.cpuUsage(ourBefore);
  const counts = await prepared.counts();
  let natsConnections: number | undefined;
  if ('monitorUrl' in server) {
    const varz = (await (await fetch(`${server.monitorUrl}/varz`)).json()) as {
      connections: number;
    };
    natsConnections = varz.connections;
  }
  await prepared.stop();
  await server.stop();
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
    },
    ours: {
      cpuSeconds: (ourCpu.user + ourCpu.system) / 1e6,
      rssMb: process.memoryUsage().rss / 2 ** 20,
    },
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
  for (const mode of modes) {
    say(`  ${mode.id} …`);
    const row = await runMode(mode, workload);
    rows.push(row);
    say(
      `  ${mode.id}: ${row.status}${row.note ? ` (${row.note})` : ''}; setup ${row.setupSeconds.toFixed(1)} s; ${row.intentsPerSecond.toFixed(0)} intents/s; p50 ${row.p50Ms.toFixed(0)} ms p99 ${row.p99Ms.toFixed(0)} ms; published ${row.counts?.published.messages ?? 0}; delivered/needed ${row.ratio.toFixed(3)} (worst host ${row.worstHostRatio.toFixed(2)}); broker ${row.broker.cpuSeconds.toFixed(1)} cpu-s, ${row.broker.rssMb.toFixed(0)} MiB`,
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
    sizes.includes(r.hosts) && modes.some((m) => m.id === r.mode);
  rows.unshift(...kept.rows.filter((r) => !rerun(r)));
  workloads.unshift(...kept.workloads.filter((w) => !sizes.includes(w.hosts)));
  const order = MODES.map((m) => m.id);
  rows.sort((a, b) => a.hosts - b.hosts || order.indexOf(a.mode) - order.indexOf(b.mode));
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
