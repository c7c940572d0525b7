/**
 * bench:large — a host joining a 100,000-port VPC over 5,000 hosts (issue 22), on
 * each binding, against a raw transfer of the same bytes over the same broker in
 * the same run.
 *
 * The product: the VPC seeded into EVENTS (test/support/seedVpc.ts), a controller
 * and a southbound module in this process, the joiners' agents as their own
 * process (services/nca/main.ts, so that its memory is its own). A join is one
 * port.create through the sync API; its time runs from the first part of the
 * host's full state stored in GOALSTATES to the agent counting the full applied
 * (its /metrics, polled every 10 ms): the hop(s) to the agent, reassembly, decode
 * and apply. The agent's peak memory is its process's VmHWM.
 *
 * The anchors, with the same bytes: JetStream — the stored parts published to a
 * stream of their own and received by a core subscriber (as the agent receives
 * its unicast); Kafka — the parts cut as the relay cuts them, produced one
 * request at a time with acks from all replicas by an idempotent producer, and
 * consumed with the fleet's consumer settings (test/bench/rawChain.ts).
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  connectNats,
  metricSamples,
  putHosts,
  runDir,
  startLocalKafka,
  startLocalRedis,
} from '../../infra/index.js';
import {
  decodeGoalState,
  parseGoalState,
  splitGoalState,
  streams,
  subjects,
  type GoalStateMessage,
  type HostRecord,
} from '../../shared/index.js';
import { nca } from '../../actors/index.js';
import type { ApplyReplyItem } from '../../services/controller/index.js';
import { start as startSouthbound } from '../../services/southbound/index.js';
import { spawnService, waitReady } from '../../services/demo/run.js';
import { isolatedNats, startTestController } from '../support/controller.js';
import { fleet as makeHosts, readStream } from '../support/workload.js';
import { seedVpc } from '../support/seedVpc.js';
import { jetStreamHop, kafkaHop, type Hop } from './rawChain.js';
import { fmt, machine, writeReport } from './report.js';
import { log } from './southboundRig.js';

const { values: args } = parseArgs({
  options: {
    ports: { type: 'string', default: process.env.LARGE_VPC_PORTS ?? '100000' },
    'no-report': { type: 'boolean', default: false },
  },
});
const PORTS = Number(args.ports);
const CLUSTERS = 100;
const PER_CLUSTER = 50;
const VPC = 'huge';
const RAW_ROUNDS = 3;
/** Kafka's own default message.max.bytes, or the run's (the broker here takes it). */
const KAFKA_MESSAGE_MAX = Number(process.env.ALCOR_KAFKA_MESSAGE_MAX_BYTES ?? 1_048_588);
/** What the relay leaves under message.max.bytes (services/southbound/kafkaBinding.ts). */
const RECORD_HEADROOM = 2048;

interface Result {
  binding: string;
  /** Full state bytes as the agent received them. */
  bytes: number;
  parts: number;
  productMs: number;
  rawMs: number[];
  ratio: number;
  agentRssBeforeMiB: number;
  agentPeakMiB: number;
  /** The agent's work on these bytes, timed here alone: JSON.parse, the schema check, reassembly and apply (ms). */
  agentWork: { parseMs: number; checkMs: number; applyMs: number };
}

/** What the agent does with the parts, step by step, in this process (median of 3). */
function agentWork(values: readonly Uint8Array[], hostId: string): Result['agentWork'] {
  const rounds: Array<Result['agentWork']> = [];
  for (let r = 0; r < 3; r++) {
    let t = performance.now();
    const parsed = values.map((v) => JSON.parse(utf8.decode(v)) as unknown);
    const parseMs = performance.now() - t;
    t = performance.now();
    const checked = parsed.map((p) => {
      const c = parseGoalState(p);
      if (!c.ok) throw new Error(c.error.message);
      return c.value;
    });
    const checkMs = performance.now() - t;
    t = performance.now();
    const parts = new nca.PartsAssembler();
    let whole: GoalStateMessage | undefined;
    for (const m of checked) {
      const outcome = parts.add(m, Date.now());
      if (outcome.state === 'complete') whole = outcome.message;
    }
    if (!whole) throw new Error('the parts did not make a whole');
    nca.handleGoalState(nca.emptyHostModel(hostId), whole, {});
    rounds.push({ parseMs, checkMs, applyMs: performance.now() - t });
  }
  const mid = <K extends keyof Result['agentWork']>(k: K) =>
    rounds.map((r) => r[k]).sort((a, b) => a - b)[1]!;
  return { parseMs: mid('parseMs'), checkMs: mid('checkMs'), applyMs: mid('applyMs') };
}
const utf8 = new TextDecoder();

const mib = (kb: number) => kb / 1024;

/** VmRSS and VmHWM of a process, in KiB. */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

async function applied(opsUrl: string, binding: string): Promise<number> {
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  return metricSamples(text, 'alcor_nca_goal_states_applied_total')
    .filter((s) => s.labels.binding === binding)
    .reduce((n, s) => n + s.value, 0);
}

/** Forwards `values` (one at a time when `serial`) and resolves with the ms until all arrived. */
async function rawTransfer(hop: Hop, host: HostRecord, values: Uint8Array[], serial: boolean) {
  let left = values.length;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const stop = await hop.arrive(() => {
    if (--left === 0) done();
  });
  const began = performance.now();
  const batch = values.map((data, seq) => ({ seq, data, hosts: [host] }));
  if (serial) for (const one of batch) await hop.forward([one]);
  else await hop.forward(batch);
  await all;
  const ms = performance.now() - began;
  await stop();
  return ms;
}

async function main(): Promise<void> {
  const dir = runDir('alcor-bench-large-');
  const nats = await isolatedNats();
  mkdirSync(join(dir, 'redis'), { recursive: true });
  const redis = await startLocalRedis({ dir: join(dir, 'redis') });
  const kafka = await startLocalKafka({ clusterId: 'big', dir: join(dir, 'kafka') });
  const all = makeHosts(CLUSTERS, PER_CLUSTER + 1, 'big', {
    binding: (h) => (h === PER_CLUSTER ? { type: 'kafka', cluster: 'big' } : { type: 'jetstream' }),
  });
  const holders = all.filter((h) => !h.hostId.endsWith(`-h${PER_CLUSTER}`));
  const extra = (c: number) => all.find((h) => h.hostId === `big-c${c}-h${PER_CLUSTER}`)!;
  const joiners: Array<{ host: HostRecord; binding: string }> = [
    { host: { ...extra(0), binding: { type: 'jetstream' } }, binding: 'jetstream' },
    { host: extra(1), binding: 'kafka:big' },
  ];
  const seeded = await seedVpc(nats.nc, VPC, holders, PORTS);
  console.log(`seeded ${PORTS} ports over ${holders.length} hosts in ${fmt(seeded.seconds, 1)} s`);
  await putHosts(
    nats.nc,
    joiners.map((j) => j.host),
  );
  const controller = await startTestController(nats.url, {
    redisUrl: redis.url,
    programmedDeadlineMs: 30_000,
    decisionTimeoutMs: 120_000,
  });
  const southbound = await startSouthbound({
    instanceId: 'bench-large-sb',
    natsUrl: nats.url,
    redisUrl: redis.url,
    kafka: { big: kafka.brokers },
    log,
  });
  const nca = await spawnService(
    'nca',
    'services/nca/main.ts',
    dir,
    {
      NATS_URL: nats.url,
      KAFKA_CLUSTERS: 'big',
      KAFKA_BIG_BROKERS: kafka.brokers.join(','),
      ALCOR_NCA_HOSTS: joiners.map((j) => j.host.hostId).join(','),
      ALCOR_FLEET_ID: 'bench-large',
    },
    'warn',
  );
  await waitReady([nca], 120_000);
  const pid = nca.proc.pid!;
  const publisher = await connectNats(nats.url, { name: 'bench-raw-publisher' });
  const results: Result[] = [];
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  try {
    for (const [n, { host, binding }] of joiners.entries()) {
      const before = memoryOf(pid);
      const count = await applied(nca.opsUrl, binding);
      const reply = await nats.nc.request(
        subjects.applyIntents,
        new TextEncoder().encode(
          JSON.stringify([
            {
              id: `${VPC}-j${n}`,
              kind: 'port.create',
              vpcId: VPC,
              spec: { portId: `j${n}`, subnetId: 's1', hostId: host.hostId },
            },
          ]),
        ),
        { timeout: 60_000 },
      );
      const [answer] = reply.json<ApplyReplyItem[]>();
      if (answer?.outcome !== 'accepted') throw new Error(`join: ${JSON.stringify(answer)}`);
      const deadline = Date.now() + 300_000;
      while ((await applied(nca.opsUrl, binding)) <= count) {
        if (Date.now() > deadline) throw new Error(`${host.hostId} did not apply its full state`);
        await new Promise((r) => setTimeout(r, 10));
      }
      const appliedAt = Date.now();
      const peak = memoryOf(pid);
      const stored = await readStream(
        nats.nc,
        streams.goalStates,
        subjects.goalStateHost(host, host.hostId),
      );
      const first = Math.min(...stored.map((m) => m.time.getTime()));
      const productMs = appliedAt - first;
      // The same bytes, raw: as stored (JetStream), or cut as the relay cuts them (Kafka).
      let values = stored.map((m) => m.data);
      let hop: Hop;
      if (binding === 'jetstream') hop = await jetStreamHop(nats.nc, publisher);
      else {
        values = values.flatMap((data) => {
          const decoded = decodeGoalState(data);
          if (!decoded.ok) throw new Error(decoded.error.message);
          const split = splitGoalState(decoded.value, KAFKA_MESSAGE_MAX - RECORD_HEADROOM);
          if (!split.ok) throw new Error(split.error.message);
          return split.value.map((p) => new TextEncoder().encode(JSON.stringify(p)));
        });
        hop = await kafkaHop(kafka.brokers, 'big', [host]);
      }
      const rawMs: number[] = [];
      for (let r = 0; r < RAW_ROUNDS; r++) {
        // A fresh hop per round for Kafka (its stop deletes the topics).
        if (r > 0 && binding !== 'jetstream') hop = await kafkaHop(kafka.brokers, 'big', [host]);
        if (r > 0 && binding === 'jetstream') hop = await jetStreamHop(nats.nc, publisher);
        rawMs.push(await rawTransfer(hop, host, values, binding !== 'jetstream'));
      }
      rawMs.sort((a, b) => a - b);
      const bytes = values.reduce((s, v) => s + v.length, 0);
      const result: Result = {
        binding,
        bytes,
        parts: values.length,
        productMs,
        rawMs,
        ratio: productMs / rawMs[1]!,
        agentRssBeforeMiB: mib(before.rss),
        agentPeakMiB: mib(peak.hwm),
        agentWork: agentWork(values, host.hostId),
      };
      results.push(result);
      console.log(
        `${binding}: ${fmt(bytes / 1e6, 1)} MB in ${values.length} parts; product ${fmt(productMs)} ms, raw ${rawMs.map((m) => fmt(m)).join('/')} ms (${fmt(result.ratio, 1)}×); agent RSS ${fmt(result.agentRssBeforeMiB)} → peak ${fmt(result.agentPeakMiB)} MiB`,
      );
    }
  } finally {
    await publisher.close();
    await nca.proc.stop();
    await southbound.stop();
    await controller.stop();
    await kafka.stop();
    await redis.stop();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const cpu = process.cpuUsage(cpuBefore);
  const benchCpu = (cpu.user + cpu.system) / 1000 / (performance.now() - wallBefore);
  if (args['no-report']) return;
  await writeReport(
    'large-vpc',
    { machine: machine(), ports: PORTS, hosts: holders.length, results, benchCpu },
    [
      '## A host joining a 100,000-port VPC (`npm run bench:large`)',
      '',
      `${machine()}. A VPC of ${fmt(PORTS)} ports over ${fmt(holders.length)} hosts, seeded into EVENTS; one host joins it on each binding (one port through the sync API). **Product**: from the first part of the host's full state stored in GOALSTATES to the agent (its own process) counting it applied — the hop(s), reassembly, decode and apply. **Raw**: the same bytes over the same broker in the same run — JetStream: published to a stream and received by a core subscriber; Kafka: the parts as the relay cuts them, produced one request at a time (acks from all replicas, idempotent) and consumed with the fleet's settings; ${RAW_ROUNDS} rounds, the median taken. Agent memory: the agent process's resident set before the join and its peak (VmHWM).`,
      '',
      '| binding | full state | parts | product | raw (min/median/max) | product ÷ raw | agent RSS before | agent peak |',
      '| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
      ...results.map(
        (r) =>
          `| ${r.binding} | ${fmt(r.bytes / 1e6, 1)} MB | ${r.parts} | ${fmt(r.productMs)} ms | ${r.rawMs.map((m) => fmt(m)).join(' / ')} ms | ${fmt(r.ratio, 1)}× | ${fmt(r.agentRssBeforeMiB)} MiB | ${fmt(r.agentPeakMiB)} MiB |`,
      ),
      '',
      `**Against the target (≤ 1.5× the raw transfer): ${results.every((r) => r.ratio <= 1.5) ? 'met' : 'not met'}.** What the agent does with the same bytes, timed alone in this process (median of 3), and that work over the raw transfer: ${results
        .map((r) => {
          const w = r.agentWork;
          const floor = (w.parseMs + w.checkMs + w.applyMs) / r.rawMs[1]!;
          return `${r.binding}: JSON.parse ${fmt(w.parseMs)} ms, the schema check ${fmt(w.checkMs)} ms, reassembly and apply ${fmt(w.applyMs)} ms — ${fmt(floor, 1)}× the raw transfer before any hop`;
        })
        .join('; ')}. Where that work alone is above 1.5× (${
        results
          .filter(
            (r) =>
              (r.agentWork.parseMs + r.agentWork.checkMs + r.agentWork.applyMs) / r.rawMs[1]! > 1.5,
          )
          .map((r) => r.binding)
          .join(', ') || 'none here'
      }), no transport meets the target with goal states as JSON text: a cheaper decode (a binary encoding of full states — Alcor's GoalStateV2 is protobuf, issue 26) or checking less is what can. On the Kafka path the relay also decodes each 8 MiB part and encodes it again as records under the broker's limit, in the same process as the controller here.`,
      '',
      `This process (controller, southbound, the raw clients) used ${fmt(benchCpu * 100)} % of one core over the measured part (${benchCpu > 0.85 ? 'near saturation: the relay and the controller share it, which inflates the Kafka product time' : 'not saturated'}); the raw transfers are bounded by the broker and the single consumer, each round waiting for the last record.`,
    ].join('\n'),
  );
}

await main();
process.exit(0);
