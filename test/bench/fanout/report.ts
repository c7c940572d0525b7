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

function table(rows: FanoutRow[]): string {
  const head = [
    'mode',
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
      `**${r.mode}**`,
      r.status === 'ok' ? 'ok' : `${r.status}: ${r.note ?? ''}`,
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
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...lines.map((l) => `| ${l.join(' | ')} |`),
  ].join('\n');
}

function chartSpec(
  rows: FanoutRow[],
  field: (r: FanoutRow) => number,
  title: string,
  log: boolean,
): TopLevelSpec {
  const values = rows
    .filter((r) => r.counts && Number.isFinite(field(r)) && field(r) > 0)
    .map((r) => ({ hosts: r.hosts, mode: r.mode, value: field(r) }));
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
    return [
      `### ${fmt(hosts)} hosts`,
      '',
      `${fmt(w.clusters!)} clusters; ${fmt(w.vpcs!)} VPCs, ${fmt(w.ports!)} ports at the start (largest VPC ${fmt(w.largestVpc!)}); ${fmt(w.intents!)} intents → ${fmt(w.messages!)} goal-state messages (${fmt(w.unicasts!)} unicast, ${fmt(w.multicasts!)} multicast), ${(w.bytes! / 1e6).toFixed(1)} MB; the most multicasts one commit sent per cluster hosting its VPC: ${fmt(w.maxMulticastsPerCluster ?? NaN, 2)}.`,
      '',
      table(rows.filter((r) => r.hosts === hosts)),
    ].join('\n');
  });
  const markdown = [
    `## Measured`,
    '',
    `\`npm run bench:fanout -- --sizes ${sizes.join(',')} --intents ${String(input.args.intents)} --zipf ${String(input.args.zipf)} --seed ${String(input.args.seed)}\` — ${machine()}; nats-server ${input.versions.nats}, Kafka ${input.versions.kafka} (one KRaft node, 1 GiB heap); a fresh server per mode and size; ${new Date().toISOString().slice(0, 10)}.`,
    '',
    ...sections.flatMap((s) => [s, '']),
    ...charts.map((c) => `![${c}](${c})`),
  ].join('\n');
  await writeReport('fanout', { args: input.args, workloads, rows }, markdown, {
    doc: 'evaluation.md',
  });
}
