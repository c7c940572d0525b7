/**
 * Issue 6 benchmark: intent → programmed, per binding, against the raw brokers.
 *   node --import tsx test/bench/southbound.bench.ts [--vpcs 60] [--per-vpc 40]
 *
 * Fresh servers (nats-server, Redis, Kafka clusters a and b); 500 hosts in 10
 * clusters over 2 regions, a third bound to Kafka a, a third to Kafka b, a third
 * to JetStream; one controller (every bucket), one southbound module and the
 * fleet simulator, in this process. One phase per binding: VPCs whose ports are
 * all on hosts of that binding, so an intent's `programmed` measures that path.
 * Latency = the intent handed to the client → its `programmed` status.
 *
 * Raw, in the same run, the same hops without any decision: a message published
 * to a JetStream stream, consumed, forwarded (JetStream: published on a subject a
 * host subscribes to; Kafka: produced with acks from all replicas and consumed),
 * and answered on core NATS — as many messages, of a goal state's size.
 *
 *   … [--layouts 1,8] [--per-cluster 50]
 *
 * With `--layouts`, instead: the Kafka phases once per Kafka layout (hosts per
 * partition), each on fresh servers, with `--per-cluster` hosts in each of the 10
 * clusters; written to the "southbound-layout" section of docs/performance.md.
 */
import { parseArgs } from 'node:util';
import { NATS_SERVER_VERSION, KAFKA_VERSION } from '../../infra/index.js';
import { fmt, machine, writeReport } from './report.js';
import { bindingOf, burstPhase, startRig, type BurstPhase } from './southboundRig.js';
import { hopOf, rawChain, type RawResult } from './rawChain.js';

const { values } = parseArgs({
  options: {
    vpcs: { type: 'string', default: '60' },
    'per-vpc': { type: 'string', default: '40' },
    /** The phases, in order. */
    bindings: { type: 'string', default: 'jetstream,kafka a,kafka b' },
    /** Kafka hosts per partition to compare (the Kafka phases only, fresh servers each). */
    layouts: { type: 'string', default: '' },
    'per-cluster': { type: 'string', default: '50' },
  },
});
const VPCS = Number(values.vpcs);
const PER_VPC = Number(values['per-vpc']);
if (values.layouts) {
  await compareLayouts(values.layouts.split(',').map(Number), Number(values['per-cluster']));
  process.exit(0);
}

const rig = await startRig();
const { hosts } = rig;
const { southbound } = rig.inProcess!;

const phases: BurstPhase[] = [];
for (const [i, name] of values.bindings.split(',').entries())
  phases.push(await burstPhase(rig, name, { vpcs: VPCS, perVpc: PER_VPC, seed: 1000 * (i + 1) }));
const relayed = { ...southbound.relayMetrics };
const kafkaBindings = southbound.bindings();
await rig.stopProduct();

// ── raw: the same hops, no decisions ────────────────────────────────────────
const raws: RawResult[] = [];
for (const p of phases) {
  const own = hosts.filter((h) => bindingOf(h) === p.binding);
  raws.push(
    await rawChain(rig, p.binding, {
      count: p.programmed,
      size: Math.max(64, Math.round(p.goalStateBytes)),
      fanout: 1,
      offer: 'burst',
      hosts: own,
      hop: await hopOf(rig, p.binding, own),
    }),
  );
}
await rig.stop();

const results = {
  phases,
  raws,
  relayed,
  kafkaBindings,
  hosts: hosts.length,
  vpcsPerPhase: VPCS,
  perVpc: PER_VPC,
};
const perProduce = Object.entries(kafkaBindings)
  .map(
    ([id, b]) =>
      `${id}: ${fmt(b.produced)} records in ${fmt(b.produces)} produce requests (${fmt(b.produced / Math.max(1, b.produces), 1)} per request)`,
  )
  .join('; ');
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
const rows = phases
  .map((p, i) => {
    const r = raws[i]!;
    return `| ${p.binding} | ${fmt(p.intents)} / ${fmt(p.programmed)} | ${fmt(p.rate)} | ${fmt(p.p50, 1)} ms | ${fmt(p.p99, 1)} ms | ${fmt(p.deliverP50, 1)} ms | ${fmt(p.deliverP99, 1)} ms | ${fmt(r.rate)} | ${fmt(r.p50, 1)} ms | ${fmt(r.p99, 1)} ms | **${fmt(p.rate / r.rate, 2)}×** |`;
  })
  .join('\n');
await writeReport(
  'southbound',
  {
    machine: machine(),
    date: new Date().toISOString(),
    nats: NATS_SERVER_VERSION,
    kafka: KAFKA_VERSION,
    results,
  },
  `
## Southbound: intent → programmed, per binding (issue 6)

\`npm run bench:southbound\` — nats-server ${NATS_SERVER_VERSION}, Kafka ${KAFKA_VERSION} (KRaft, one
broker per cluster) and Redis on this machine; one controller (every bucket), one
southbound module and the fleet simulator (${fmt(hosts.length)} hosts in 10 clusters over 2
regions, a third per binding) in one process; ${machine()}; ${new Date().toISOString().slice(0, 10)}.

Per binding, ${VPCS} VPCs × ${PER_VPC} intents (ports created, moved and deleted, group
and route changes, ~20 % refused or malformed) whose ports are all on that binding's
hosts, published at once from 4 connections. _Programmed_ = the intent handed to
the client → its \`programmed\` status (every affected host applied and acked);
_delivery_ = its \`accepted\` status → \`programmed\` (the southbound's share). _Raw_ =
the same hops with no decision, as many messages of the phase's mean goal-state
size: publish to a stream, consume, forward (JetStream: publish on the host's
subject; Kafka: produce with acks from all replicas, consume), ack on core NATS.

| binding | intents / programmed | programmed/s | p50 | p99 | delivery p50 | delivery p99 | raw msgs/s | raw p50 | raw p99 | ratio |
|---|---|---|---|---|---|---|---|---|---|---|
${rows}

Reading: the latencies are under the full load (every intent queued at once), so
they are mostly queueing behind the VPC's earlier intents — a VPC's intents are
decided one after another. The raw chain has no such order, which is most of the
ratio. Relayed by the southbound over the run: ${fmt(relayed.relayed)} goal states (each
partition's relays also read the goal states of its JetStream-bound hosts, which make
no record), ${fmt(relayed.records)} Kafka records; ${perProduce}. The relays of one Kafka
cluster share its producer, and sends that meet while a produce is in flight go out
together in the next one.
`,
);
process.exit(0);

/** The Kafka phases per layout (hosts per partition), each on fresh servers. */
async function compareLayouts(layouts: number[], perCluster: number): Promise<void> {
  const runs: Array<{ hostsPerPartition: number; phases: BurstPhase[]; hosts: number }> = [];
  // A rig exports its servers' settings into the environment; the next one provisions its own.
  const envBefore = { ...process.env };
  for (const hostsPerPartition of layouts) {
    for (const k of Object.keys(process.env)) if (!(k in envBefore)) delete process.env[k];
    Object.assign(process.env, envBefore);
    const rig = await startRig({ kafkaHostsPerPartition: hostsPerPartition, perCluster });
    const phases: BurstPhase[] = [];
    for (const [i, name] of ['kafka a', 'kafka b'].entries())
      phases.push(
        await burstPhase(rig, name, { vpcs: VPCS, perVpc: PER_VPC, seed: 1000 * (i + 2) }),
      );
    runs.push({ hostsPerPartition, phases, hosts: rig.hosts.length });
    process.stdout.write(`${JSON.stringify({ hostsPerPartition, phases })}\n`);
    await rig.stop();
  }
  const hosts = runs[0]?.hosts ?? 0;
  const rows = runs
    .flatMap((r) =>
      r.phases.map(
        (p) =>
          `| ${r.hostsPerPartition} | ${p.binding} | ${fmt(p.intents)} / ${fmt(p.programmed)} | ${fmt(p.rate)} | ${fmt(p.p50, 1)} ms | ${fmt(p.p99, 1)} ms | ${fmt(p.deliverP50, 1)} ms | ${fmt(p.deliverP99, 1)} ms |`,
      ),
    )
    .join('\n');
  await writeReport(
    'southbound-layout',
    {
      machine: machine(),
      date: new Date().toISOString(),
      hosts,
      vpcs: VPCS,
      perVpc: PER_VPC,
      runs,
    },
    `
## Southbound: the Kafka layout (hosts per partition)

\`npm run bench:southbound -- --layouts ${layouts.join(',')} --per-cluster ${perCluster}\` — Kafka ${KAFKA_VERSION}
(KRaft, one broker per cluster), nats-server ${NATS_SERVER_VERSION}, Redis; ${fmt(hosts)} hosts in 10 clusters,
a third on each Kafka cluster; ${machine()}; ${new Date().toISOString().slice(0, 10)}.

The same Kafka phases as above (${VPCS} VPCs × ${PER_VPC} intents per binding), on fresh servers for
each layout: the southbound assigning hosts one to a partition, or several to a partition
(\`ALCOR_KAFKA_HOSTS_PER_PARTITION\`; agents take the records keyed for them).

| hosts per partition | binding | intents / programmed | programmed/s | p50 | p99 | delivery p50 | delivery p99 |
|---|---|---|---|---|---|---|---|
${rows}

Reading: fewer partitions make the same records cheaper to produce and fetch (a
produce or fetch request names each partition it touches); each agent then skips
its neighbours' records. At tens of thousands of hosts the partition count is
what breaks first: docs/evaluation.md.
`,
  );
}
