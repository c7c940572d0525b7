/**
 * docs/evaluation.md's measured section and its charts, from the fan-out runs.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { FanoutRow } from '../fanout.bench.js';
import { writeChart } from '../chart.js';
import { fmt, machine, writeReport } from '../report.js';

export interface EvaluationInput {
  rows: FanoutRow[];
  workloads: Array<Record<string, number>>;
  args: Record<string, unknown>;
  versions: { nats: string; kafka: string };
}

const num = (x: number, digits = 0): string => (Number.isFinite(x) ? fmt(x, digits) : '–');
const topologyOf = (r: FanoutRow): 'single' | 'cluster' => r.topology ?? 'single';
const modeName = (r: FanoutRow): string =>
  r.hostsPerPartition ? `${r.mode} (${r.hostsPerPartition} per partition)` : r.mode;

function markdownTable(head: string[], lines: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...lines.map((l) => `| ${l.join(' | ')} |`),
  ].join('\n');
}

/** Agents: real connections (own processes) / counted on shared connections or one reader. */
function agentsCell(r: FanoutRow): string {
  const real = r.counts?.realAgents ?? 0;
  return real > 0
    ? `${num(real)} real (${num(r.counts!.agentProcesses)} processes) / ${num(r.hosts - real)} counted`
    : `0 real / ${num(r.hosts)} counted`;
}

/** What a run cost: broker per 1,000 hosts, bytes per intent on the wire, the harness, a restart. */
function costTable(rows: FanoutRow[]): string {
  const head = [
    'mode',
    'broker nodes',
    'broker RSS per 1,000 hosts (MiB)',
    'broker CPU per 1,000 intents (s)',
    'open files (most on a node)',
    'wire per intent (KB): clients / between brokers',
    'bench process: CPU (s), share of a core, event-loop p99 (ms)',
    'real agents: CPU (s), event-loop p99 (ms)',
    'restart: what, down (s)',
    'every host reading again (s)',
    'real agents: reconnect / resync p99 (ms)',
  ];
  const lines = rows.map((r) => {
    const published = r.published ?? r.intents;
    const restart = r.restart;
    return [
      `**${modeName(r)}**`,
      num(r.brokers ?? 1),
      num(r.broker.rssMb / (r.hosts / 1000), 1),
      r.counts ? num((r.broker.cpuSeconds / published) * 1000, 2) : '–',
      num(r.broker.openFilesMax ?? NaN),
      r.wire
        ? `${num(r.wire.client / published / 1000, 1)} / ${num(Math.max(0, r.wire.peers) / published / 1000, 1)}`
        : '–',
      r.counts ? benchCell(r) : '–',
      r.agents ? `${num(r.agents.cpuSeconds, 1)}, ${num(r.agents.eventLoopP99Ms)}` : '–',
      restart ? `${restart.what}, ${num(restart.downSeconds, 1)}` : '–',
      restart
        ? Number.isFinite(restart.allProbedSeconds)
          ? num(restart.allProbedSeconds, 1)
          : `${num(restart.hostsProbed)} of ${num(r.hosts)} in 300 s`
        : '–',
      restart?.real
        ? `${num(restart.real.reconnectP99Ms)} / ${num(restart.real.resyncP99Ms)} (${num(restart.real.resynced)} of ${num(restart.real.agents)})`
        : '–',
    ];
  });
  return markdownTable(head, lines);
}

/** The bench process over the run; past 80 % of a core it may be what limited the rate. */
function benchCell(r: FanoutRow): string {
  const share = r.ours.cpuSeconds / r.seconds;
  const text = `${num(r.ours.cpuSeconds, 1)}, ${num(share * 100)} %, ${num(r.ours.eventLoopP99Ms ?? NaN)}`;
  return share > 0.8 ? `**${text} (saturated)**` : text;
}

/** `intents`: the size's workload; a row of an earlier run with another count says its own. */
function table(rows: FanoutRow[], intents: number): string {
  const head = [
    'mode',
    'agents: real / counted',
    'result',
    'setup (s)',
    'topics / subjects',
    'partitions',
    'consumers or subscriptions: run / deployment',
    'publisher connections',
    'messages published (per intent)',
    'MB published',
    'delivered / needed (worst host)',
    'hosts sent what they never need',
    'intents/s',
    'p50 / p99 (ms)',
    'broker CPU (s): setup / run',
    'broker RSS (MiB)',
    'our CPU (s)',
  ];
  const lines = rows.map((r) => {
    const c = r.counts;
    return [
      `**${modeName(r)}**`,
      agentsCell(r),
      (r.status === 'ok' ? 'ok' : `${r.status}: ${r.note ?? ''}`) +
        (r.intents === intents ? '' : ` (an earlier run: ${num(r.intents)} intents)`),
      num(r.setupSeconds, 1),
      c ? num(c.topics) : '–',
      c ? num(c.partitions) : '–',
      c ? `${num(c.consumers)} / ${num(c.deploymentConsumers)}` : '–',
      c ? num(c.publisherConnections) : '–',
      c ? `${num(c.published.messages)} (${num(r.messagesPerIntent, 1)})` : '–',
      c ? num(c.published.bytes / 1e6, 1) : '–',
      c ? `${num(r.ratio, 3)} (${num(r.worstHostRatio, 2)})` : '–',
      c ? num(r.hostsWithUnneeded) : '–',
      c ? num(r.intentsPerSecond) : '–',
      c ? `${num(r.p50Ms)} / ${num(r.p99Ms)}` : '–',
      `${num(r.broker.setupCpuSeconds, 1)} / ${num(r.broker.cpuSeconds, 1)}`,
      num(r.broker.rssMb),
      c ? num(r.ours.cpuSeconds, 1) : '–',
    ];
  });
  return markdownTable(head, lines);
}

function chartSpec(
  rows: FanoutRow[],
  field: (r: FanoutRow) => number,
  title: string,
  log: boolean,
): TopLevelSpec {
  const values = rows
    .filter((r) => r.counts && Number.isFinite(field(r)) && field(r) > 0)
    .map((r) => ({
      hosts: r.hosts,
      mode: topologyOf(r) === 'cluster' ? `${r.mode}, 3 nodes` : r.mode,
      value: field(r),
    }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 420,
    height: 240,
    title,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: {
        field: 'hosts',
        type: 'quantitative',
        scale: { type: 'log' },
        title: 'simulated hosts (log)',
      },
      y: {
        field: 'value',
        type: 'quantitative',
        ...(log ? { scale: { type: 'log' } } : {}),
        title: log ? `${title} (log)` : title,
      },
      color: { field: 'mode', type: 'nominal', title: 'mode' },
    },
  };
}

export async function renderEvaluation(input: EvaluationInput): Promise<void> {
  const { rows, workloads } = input;
  const charts = [
    await writeChart(
      'evaluation-ratio.svg',
      chartSpec(rows, (r) => r.ratio, 'delivered / needed', true),
    ),
    await writeChart(
      'evaluation-published.svg',
      chartSpec(rows, (r) => r.messagesPerIntent, 'messages published per intent', true),
    ),
    await writeChart(
      'evaluation-p99.svg',
      chartSpec(rows, (r) => r.p99Ms, 'intent → last host p99 (ms)', true),
    ),
    await writeChart(
      'evaluation-broker-memory.svg',
      chartSpec(rows, (r) => r.broker.rssMb, 'broker RSS at the end (MiB)', false),
    ),
  ];
  const sizes = [...new Set(rows.map((r) => r.hosts))];
  const sections = sizes.map((hosts) => {
    const w = workloads.find((x) => x.hosts === hosts)!;
    const parts = (['single', 'cluster'] as const).flatMap((topology) => {
      const here = rows.filter((r) => r.hosts === hosts && topologyOf(r) === topology);
      if (here.length === 0) return [];
      const title =
        topology === 'single'
          ? 'One node per broker kind'
          : 'A 3-node cluster (JetStream R3 streams; Kafka topics with 3 replicas, min.insync.replicas 2)';
      const withCost = here.filter((r) => r.wire || r.restart || r.broker.openFilesMax);
      return [
        `#### ${title}`,
        '',
        table(here, w.intents!),
        '',
        ...(withCost.length > 0
          ? ['What it cost, and a broker restart:', '', costTable(withCost), '']
          : []),
      ];
    });
    return [
      `### ${fmt(hosts)} hosts`,
      '',
      `${fmt(w.clusters!)} clusters; ${fmt(w.vpcs!)} VPCs, ${fmt(w.ports!)} ports at the start (largest VPC ${fmt(w.largestVpc!)}); ${fmt(w.intents!)} intents → ${fmt(w.messages!)} goal-state messages (${fmt(w.unicasts!)} unicast, ${fmt(w.multicasts!)} multicast), ${(w.bytes! / 1e6).toFixed(1)} MB; the most multicasts one commit sent per cluster hosting its VPC: ${fmt(w.maxMulticastsPerCluster ?? NaN, 2)}.`,
      '',
      ...parts,
    ].join('\n');
  });
  const markdown = [
    `## Measured`,
    '',
    `\`npm run bench:fanout -- --sizes ${sizes.join(',')} --intents ${String(input.args.intents)} --zipf ${String(input.args.zipf)} --seed ${String(input.args.seed)}\` (the commands per size, and their budget: at the top) — ${machine()}; nats-server ${input.versions.nats}, Kafka ${input.versions.kafka} (KRaft, 1 GiB heap per node); fresh servers per mode, size and topology; rendered ${new Date().toISOString().slice(0, 10)}.`,
    '',
    ...sections.flatMap((s) => [s, '']),
    ...charts.map((c) => `![${c}](${c})`),
  ].join('\n');
  await writeReport('fanout', { args: input.args, workloads, rows }, markdown, {
    doc: 'evaluation.md',
  });
}
