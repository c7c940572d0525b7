/**
 * Issue 4 benchmark: the cost of the intake layout itself.
 *   node --import tsx test/bench/intake.bench.ts [--subjects N]
 *
 * A fresh nats-server; INTENTS filled with one intent on each of N VPC subjects
 * (100,000 by default, through the server's partition() mapping). Then:
 *   - create the 1,024 durable consumers filtered on `intent.<bucket>.*`;
 *   - consume everything through them (headers-only, acked), as the controller does;
 *   - the same through one unfiltered consumer (the raw broker's rate);
 *   - publish rate with and without the 1,024 consumers present;
 *   - server memory (/varz) at each step.
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  DEFAULT_LAYOUT,
  connectNats,
  consumeIntake,
  createIntakeConsumer,
  ensureLayout,
  type Intake,
  runDir,
  startLocalNats,
  NATS_SERVER_VERSION,
} from '../../infra/index.js';
import { streams, subjects } from '../../shared/index.js';
import { fmt, machine, writeReport } from './report.js';

const { values } = parseArgs({
  options: {
    subjects: { type: 'string', default: '100000' },
  },
});
const N = Number(values.subjects);

interface Layout {
  name: string;
  bucketCount: number;
  /** The bucket set of each intake consumer. */
  groups: number[][];
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const layouts: Layout[] = [
  {
    name: '1,024 buckets, a consumer per bucket',
    bucketCount: 1024,
    groups: range(0, 1024).map((b) => [b]),
  },
  {
    name: '64 buckets, a consumer per bucket',
    bucketCount: 64,
    groups: range(0, 64).map((b) => [b]),
  },
  {
    name: '1,024 buckets, one consumer per instance (1 instance)',
    bucketCount: 1024,
    groups: [range(0, 1024)],
  },
  {
    name: '1,024 buckets, one consumer per instance (4 instances)',
    bucketCount: 1024,
    groups: range(0, 4).map((i) => range(i * 256, 256)),
  },
];

async function run(layout: Layout): Promise<Record<string, number>> {
  const BUCKETS = layout.bucketCount;
  const groups = layout.groups;
  const benchDurable = (group: number[]): string => `bench-${groups.indexOf(group)}`;
  const dir = runDir('alcor-bench-intake-');
  const server = await startLocalNats({ dir, bucketCount: BUCKETS });
  const nc = await connectNats(server.url, { name: 'bench', reconnect: false });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  await ensureLayout(nc, jsm, DEFAULT_LAYOUT);

  const memMiB = async (): Promise<number> => {
    const varz = (await (await fetch(`${server.monitorUrl}/varz`)).json()) as { mem: number };
    return varz.mem / 2 ** 20;
  };
  const payload = new TextEncoder().encode(
    JSON.stringify({
      id: 'x'.repeat(24),
      kind: 'port.create',
      vpcId: 'vpc-000000',
      spec: { portId: 'p1', subnetId: 's1', hostId: 'h-c1-1' },
    }),
  );

  async function publishAll(prefix: string, count: number): Promise<number> {
    const started = performance.now();
    const inFlight = new Set<Promise<unknown>>();
    for (let i = 0; i < count; i++) {
      const p = js.publish(subjects.intent(`${prefix}${i}`), payload);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      if (inFlight.size >= 2048) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    return count / ((performance.now() - started) / 1000);
  }

  const results: Record<string, number> = { buckets: BUCKETS, consumers: groups.length };
  results.memEmptyMiB = await memMiB();
  results.fillRate = await publishAll('vpc-', N);
  results.memFilledMiB = await memMiB();
  results.subjects =
    (await jsm.streams.info(streams.intents, { subjects_filter: '>' })).state.num_subjects ?? N;

  // 1,024 filtered durables, created as a controller does (64 at a time).
  let t = performance.now();
  for (let g = 0; g < groups.length; g += 64) {
    await Promise.all(
      groups
        .slice(g, g + 64)
        .map((group) => createIntakeConsumer(jsm, benchDurable(group), group, { deliver: 'all' })),
    );
  }
  results.createMs = performance.now() - t;
  results.memConsumersMiB = await memMiB();

  /** Starts consuming through every group's consumer; `all` resolves after `count` deliveries. */
  const consumeAll = async (count: number) => {
    let received = 0;
    let done: () => void = () => undefined;
    const all = new Promise<void>((r) => (done = r));
    const intakes: Intake[] = [];
    for (let g = 0; g < groups.length; g += 64) {
      intakes.push(
        ...(await Promise.all(
          groups.slice(g, g + 64).map((group) =>
            consumeIntake(nc, benchDurable(group), (d) => {
              d.ack();
              if (++received === count) done();
            }),
          ),
        )),
      );
    }
    return { all, stop: () => Promise.all(intakes.map((i) => i.stop())) };
  };

  // Consume everything through them.
  t = performance.now();
  const backlog = await consumeAll(N);
  await backlog.all;
  results.filteredRate = N / ((performance.now() - t) / 1000);
  results.memConsumingMiB = await memMiB();
  await backlog.stop();

  // Live: the consumers are caught up and new intents arrive (the steady state).
  const live = 20_000;
  const liveRun = await consumeAll(live);
  t = performance.now();
  results.publishWithConsumers = await publishAll('new-', live);
  await liveRun.all;
  results.liveRate = live / ((performance.now() - t) / 1000);
  await liveRun.stop();

  for (const group of groups) await jsm.consumers.delete(streams.intents, benchDurable(group));
  results.publishWithoutConsumers = await publishAll('more-', live);

  // One unfiltered consumer over the same stream: the raw rate.
  const total = (await jsm.streams.info(streams.intents)).state.messages;
  await jsm.consumers.add(streams.intents, {
    durable_name: 'raw',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    headers_only: true,
    max_ack_pending: 1000 * 64,
  });
  t = performance.now();
  const raw = await (
    await js.consumers.get(streams.intents, 'raw')
  ).consume({ max_messages: 4096 });
  let rawCount = 0;
  for await (const m of raw) {
    m.ack();
    if (++rawCount === total) break;
  }
  results.unfilteredRate = total / ((performance.now() - t) / 1000);
  await raw.close();

  await nc.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });

  return results;
}

const runs: Record<string, number>[] = [];
for (const layout of layouts) runs.push(await run(layout));
process.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);

const col = (k: string, digits = 0) => runs.map((x) => fmt(x[k]!, digits)).join(' | ');
const ratios = (a: string, b: string) =>
  runs.map((x) => `**${fmt(x[a]! / x[b]!, 2)}×**`).join(' | ');
await writeReport(
  'intake',
  { machine: machine(), date: new Date().toISOString(), server: NATS_SERVER_VERSION, N, runs },
  `
## Intake layout: filtered durable consumers over ${fmt(N)} VPC subjects (issue 4)

\`node --import tsx test/bench/intake.bench.ts\` — a fresh nats-server ${NATS_SERVER_VERSION} per column on the same machine (file storage, default sync), ${machine()}; ${new Date().toISOString().slice(0, 10)}.

Stream INTENTS holds one intent on each of ${fmt(N)} subjects \`intent.<bucket>.<vpcId>\`,
written through the server's \`partition()\` mapping. Each layout's durable consumers
filter on their buckets' \`intent.<bucket>.*\` subjects, headers-only, every delivery
acked (what the controller does); the raw broker is one unfiltered consumer over the
same stream, measured in the same run on the same server.

| layout | ${layouts.map((l) => l.name).join(' | ')} |
|---|${runs.map(() => '---').join('|')}|
| consumers | ${col('consumers')} |
| create the consumers (ms) | ${col('createMs')} |
| backlog: consume all ${fmt(N)} through them (msgs/s) | ${col('filteredRate')} |
| backlog: one unfiltered consumer, raw (msgs/s) | ${col('unfilteredRate')} |
| backlog ratio filtered / raw | ${ratios('filteredRate', 'unfilteredRate')} |
| live: 20,000 new intents, publish → all delivered (msgs/s) | ${col('liveRate')} |
| publish rate with the consumers present (msgs/s) | ${col('publishWithConsumers')} |
| publish rate without them (msgs/s) | ${col('publishWithoutConsumers')} |
| publish ratio with / without | ${ratios('publishWithConsumers', 'publishWithoutConsumers')} |
| server memory: filled / + consumers / consuming (MiB) | ${runs.map((x) => `${fmt(x.memFilledMiB!)} / ${fmt(x.memConsumersMiB!)} / ${fmt(x.memConsumingMiB!)}`).join(' | ')} |

Decision: the controller runs **one intake consumer per instance**, filtered on the
instance's buckets, and keeps 1,024 buckets as the unit of placement. A consumer per
bucket — the layout first planned — costs the server work per stored message for
each of its 1,024 consumers: publishing falls to about a seventh of the raw rate and
a backlog drains at a few percent of it (the pitfall of nats-server #7014, #7852,
#4888, reproduced). Fewer buckets (64) helps but still halves publishing and would
make placement coarse. The per-instance consumer's durable name is derived from its
bucket set, so an instance restarted on the same buckets takes over the same ack
floor; handing single buckets between instances is the placement issue's work.
`,
);
process.exit(0);
