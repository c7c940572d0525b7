/**
 * LBMRC against the usual placements, same inputs, one run (issue 5):
 * a hash ring with virtual nodes, rendezvous hashing, jump consistent hash and
 * consistent hashing with bounded loads, over
 *   - 1,024 buckets weighted by the VPCs that hash into them,
 *   - 1,024 buckets with rank-Zipf weights (s = 1: adversarial, a few huge buckets),
 *   - 100,000 VPCs placed directly, sizes Zipf-distributed;
 * with membership growing 3 → 10 → 50 one join at a time, then shrinking
 * 50 → 10 → 3 by random leaves (the same for every strategy).
 *
 * Per change: the weight that moved, relative to the fair share of the member
 * joining or leaving (what a perfectly balanced table must move: 1.00 is the
 * minimum); after each change: max load / average load. Lookup: ns per item →
 * member at 50 members. Writes docs/lbmrc.md (section `lbmrc`), a chart and
 * docs/bench/lbmrc.json.
 *
 *   npm run bench:lbmrc
 */
import { bucketOf, place } from '../../shared/index.js';
import { prng } from '../support/workload.js';
import {
  boundedLoads,
  hash32,
  hashRing,
  jump,
  rendezvous,
  type Item,
  type Strategy,
} from './placement/baselines.js';
import { writeChart } from './chart.js';
import { fmt, machine, writeReport } from './report.js';

const EPSILON = 0.05;
const SEED = 20261124;

// ── Inputs ──────────────────────────────────────────────────────────────────

/** VPC sizes (ports + hosts) with P(size = k) ∝ k^-s on [1, max]. */
function zipfSizes(count: number, s: number, max: number, seed: number): number[] {
  const cdf = new Float64Array(max);
  let acc = 0;
  for (let k = 1; k <= max; k++) cdf[k - 1] = acc += k ** -s;
  const random = prng(seed);
  return Array.from({ length: count }, () => {
    const u = random() * acc;
    let lo = 0;
    let hi = max - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  });
}

const item = (id: string, weight: number): Item => ({ id, weight, hash: hash32(id) });

const vpcSizes = zipfSizes(100_000, 1.5, 2000, SEED);
const vpcs = vpcSizes.map((w, i) => item(`vpc-${i}`, w));
const bucketWeights = new Array<number>(1024).fill(1);
for (const v of vpcs) bucketWeights[bucketOf(v.id)]! += v.weight;

const inputs: Array<{ name: string; items: Item[] }> = [
  {
    name: '1,024 buckets (weights from 100k Zipf VPCs)',
    items: bucketWeights.map((w, b) => item(`b${b}`, w)),
  },
  {
    name: '1,024 buckets, rank-Zipf s=1 (adversarial)',
    items: Array.from({ length: 1024 }, (_, k) => item(`b${k}`, Math.round(1e6 / (k + 1)))),
  },
  { name: '100,000 VPCs placed directly (Zipf sizes)', items: vpcs },
];

// ── Membership sequence: 3 → 50 by joins, 50 → 3 by random leaves ──────────

type Change = { kind: 'join' | 'leave'; member: string };
function membershipPlan(): { start: string[]; changes: Change[] } {
  const name = (n: number): string => `c${String(n).padStart(2, '0')}`;
  const start = [name(1), name(2), name(3)];
  const changes: Change[] = [];
  for (let n = 4; n <= 50; n++) changes.push({ kind: 'join', member: name(n) });
  const random = prng(SEED + 1);
  const alive = Array.from({ length: 50 }, (_, i) => name(i + 1));
  while (alive.length > 3) {
    const [gone] = alive.splice(Math.floor(random() * alive.length), 1);
    changes.push({ kind: 'leave', member: gone! });
  }
  return { start, changes };
}
const plan = membershipPlan();

// ── Strategies ──────────────────────────────────────────────────────────────

const lbmrc: Strategy = {
  name: `LBMRC (ε=${EPSILON})`,
  assign: (items, members, previous) =>
    place({
      items,
      members: members.map((id) => ({ id })),
      ...(previous ? { previous } : {}),
      epsilon: EPSILON,
    }).assignment,
  lookup: (_items, _members, table) => (it) => table.get(it.id)!,
};
const strategies: Strategy[] = [
  lbmrc,
  hashRing(100),
  rendezvous(),
  jump(),
  boundedLoads(EPSILON),
  boundedLoads(0.25),
];

interface Phase {
  label: string;
  from: number;
  to: number;
}
const phases: Phase[] = [
  { label: 'joins 3→10', from: 3, to: 10 },
  { label: 'joins 10→50', from: 10, to: 50 },
  { label: 'leaves 50→10', from: 50, to: 10 },
  { label: 'leaves 10→3', from: 10, to: 3 },
];

interface Row {
  input: string;
  strategy: string;
  /** max/avg at 3, 10 and 50 members (growing), and the worst over the run. */
  maxAvg: { at3: number; at10: number; at50: number; worst: number };
  /** Σ moved / Σ fair share of the changing member, per phase and overall. */
  moves: Record<string, number> & { all: number };
  lookupNs: number;
  /** Mean ms to recompute the table on a change. */
  computeMs: number;
  /** max/avg no placement can beat: max(1, w_max / average). */
  floor: { at3: number; at10: number; at50: number };
}

function maxAvg(
  items: readonly Item[],
  table: Map<string, string>,
  members: readonly string[],
): number {
  const load = new Map(members.map((m) => [m, 0]));
  let total = 0;
  for (const it of items) {
    const m = table.get(it.id)!;
    load.set(m, load.get(m)! + it.weight);
    total += it.weight;
  }
  return Math.max(...load.values()) / (total / members.length);
}

function moved(items: readonly Item[], a: Map<string, string>, b: Map<string, string>): number {
  let w = 0;
  for (const it of items) if (a.get(it.id) !== b.get(it.id)) w += it.weight;
  return w;
}

function run(input: { name: string; items: Item[] }, strategy: Strategy): Row {
  const { items } = input;
  const total = items.reduce((s, it) => s + it.weight, 0);
  const wMax = items.reduce((m, it) => Math.max(m, it.weight), 0);
  let members = [...plan.start];
  let table = strategy.assign(items, members, undefined);
  const at = new Map<number, number>([[3, maxAvg(items, table, members)]]);
  let worst = at.get(3)!;
  const sums = new Map<string, { moved: number; min: number }>();
  let computeMs = 0;
  for (const change of plan.changes) {
    const before = members.length;
    members =
      change.kind === 'join'
        ? [...members, change.member]
        : members.filter((m) => m !== change.member);
    const started = performance.now();
    const next = strategy.assign(items, members, table);
    computeMs += performance.now() - started;
    const fairShare = total / Math.max(before, members.length);
    const phase = phases.find((p) =>
      change.kind === 'join'
        ? p.from < p.to && before >= p.from && members.length <= p.to
        : p.from > p.to && before <= p.from && members.length >= p.to,
    )!;
    const sum = sums.get(phase.label) ?? { moved: 0, min: 0 };
    sum.moved += moved(items, table, next);
    sum.min += fairShare;
    sums.set(phase.label, sum);
    table = next;
    const ratio = maxAvg(items, table, members);
    worst = Math.max(worst, ratio);
    if (change.kind === 'join' && (members.length === 10 || members.length === 50))
      at.set(members.length, ratio);
  }
  // Lookup cost at 50 members.
  const fifty = [
    ...plan.start,
    ...plan.changes.filter((c) => c.kind === 'join').map((c) => c.member),
  ];
  const fiftyTable = strategy.assign(items, fifty, undefined);
  const find = strategy.lookup(items, fifty, fiftyTable);
  const sample = Array.from({ length: 200_000 }, (_, i) => items[(i * 7919) % items.length]!);
  let sink = 0;
  for (const it of sample.slice(0, 10_000)) sink += find(it).length; // warm-up
  const started = process.hrtime.bigint();
  for (const it of sample) sink += find(it).length;
  const lookupNs = Number(process.hrtime.bigint() - started) / sample.length;
  if (sink === 0) throw new Error('unreachable');

  const moves = { all: 0 } as Row['moves'];
  let allMoved = 0;
  let allMin = 0;
  for (const [label, s] of sums) {
    moves[label] = s.moved / s.min;
    allMoved += s.moved;
    allMin += s.min;
  }
  moves.all = allMoved / allMin;
  const floorAt = (n: number): number => Math.max(1, wMax / (total / n));
  return {
    input: input.name,
    strategy: strategy.name,
    maxAvg: { at3: at.get(3)!, at10: at.get(10)!, at50: at.get(50)!, worst },
    moves,
    lookupNs,
    computeMs: computeMs / plan.changes.length,
    floor: { at3: floorAt(3), at10: floorAt(10), at50: floorAt(50) },
  };
}

const rows: Row[] = [];
for (const input of inputs) {
  for (const strategy of strategies) {
    const row = run(input, strategy);
    rows.push(row);
    process.stdout.write(
      `${input.name} | ${strategy.name}: max/avg ${fmt(row.maxAvg.worst, 3)}, moved/min ${fmt(row.moves.all, 3)}, ` +
        `lookup ${fmt(row.lookupNs, 0)} ns, compute ${fmt(row.computeMs, 1)} ms\n`,
    );
  }
}

// ── Report ─────────────────────────────────────────────────────────────────

/** LBMRC beats a baseline on the pair if the baseline is not at least as good on both. */
function verdict(input: string): string {
  const mine = rows.find((r) => r.input === input && r.strategy === lbmrc.name)!;
  const beaten = rows
    .filter((r) => r.input === input && r !== mine)
    .filter((r) => !(r.maxAvg.worst <= mine.maxAvg.worst && r.moves.all <= mine.moves.all));
  const others = rows.filter((r) => r.input === input && r !== mine).length;
  return `LBMRC is better on (max/avg, moves) than ${beaten.length} of ${others} baselines`;
}

const chartData = rows.flatMap((r) => [
  { input: r.input, strategy: r.strategy, metric: 'worst max/avg', value: r.maxAvg.worst },
  { input: r.input, strategy: r.strategy, metric: 'moved / minimum', value: r.moves.all },
]);
const chart = await writeChart('lbmrc-chart.svg', {
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  data: { values: chartData },
  facet: {
    row: { field: 'input', type: 'nominal', title: null },
    column: { field: 'metric', type: 'nominal', title: null },
  },
  spec: {
    width: 320,
    height: 150,
    mark: 'bar',
    encoding: {
      y: { field: 'strategy', type: 'nominal', title: null, sort: strategies.map((s) => s.name) },
      x: {
        field: 'value',
        type: 'quantitative',
        scale: { type: 'log', domainMin: 0.5 },
        title: 'log scale; 1 = optimal',
      },
      color: { field: 'strategy', type: 'nominal', legend: null },
    },
  },
  resolve: { scale: { x: 'independent' } },
});

const table = (input: string): string => {
  const head =
    '| strategy | max/avg at 3 | at 10 | at 50 | worst | moved/min joins 3→10 | 10→50 | leaves 50→10 | 10→3 | all | lookup ns | recompute ms |\n' +
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows
    .filter((r) => r.input === input)
    .map(
      (r) =>
        `| ${r.strategy} | ${fmt(r.maxAvg.at3, 3)} | ${fmt(r.maxAvg.at10, 3)} | ${fmt(r.maxAvg.at50, 3)} | ${fmt(r.maxAvg.worst, 3)} | ` +
        phases.map((p) => fmt(r.moves[p.label] ?? 0, 3)).join(' | ') +
        ` | ${fmt(r.moves.all, 3)} | ${fmt(r.lookupNs, 0)} | ${fmt(r.computeMs, 2)} |`,
    );
  const floor = rows.find((r) => r.input === input)!.floor;
  return (
    `### ${input}\n\nBest possible max/avg (the heaviest item alone): ${fmt(floor.at3, 3)} at 3, ` +
    `${fmt(floor.at10, 3)} at 10, ${fmt(floor.at50, 3)} at 50 members. ${verdict(input)}.\n\n${head}\n${lines.join('\n')}`
  );
};

await writeReport(
  'lbmrc',
  { machine: machine(), epsilon: EPSILON, seed: SEED, changes: plan.changes.length, rows },
  `## Measured (${new Date().toISOString().slice(0, 10)}, ${machine()})

\`npm run bench:lbmrc\`; ${plan.changes.length} membership changes per run (47 joins, 47 leaves),
ε = ${EPSILON}. "moved/min": weight moved over the fair share of the member joining
or leaving, summed over the phase (1.000 = what a perfectly balanced table must move).
Lookup: one item → member at 50 members. Recompute: mean time to compute the next
table on a change.

![max/avg and moves per strategy](${chart})

${inputs.map((i) => table(i.name)).join('\n\n')}`,
  { doc: 'lbmrc.md' },
);
process.stdout.write('wrote docs/lbmrc.md, docs/lbmrc-chart.svg, docs/bench/lbmrc.json\n');
