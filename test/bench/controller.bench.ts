/**
 * Issue 4 benchmark: the controller end to end, and hydration.
 *   node --import tsx test/bench/controller.bench.ts [--vpcs 200] [--per-vpc 50]
 *
 * A fresh nats-server; 500 hosts; one controller in-process owning every bucket.
 *  - End to end: intents published from 4 connections (the workload of the
 *    integration tests); intent → decision latency = publish → its status message.
 *  - Raw JetStream in the same run: the same number of same-size messages
 *    published to a stream and consumed (acked) by one consumer; latency =
 *    publish → delivery. Ratio = controller rate / raw rate.
 *  - Hydration of a VPC with 100,000 events: replaying EVENTS alone, and from a
 *    snapshot taken 1,000 events before the end; against an ordered consumer
 *    reading the same 100,000 messages raw.
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  DEFAULT_LAYOUT,
  NATS_SERVER_VERSION,
  connectNats,
  createJetStreamDecisionPublisher,
  createJetStreamEventLog,
  createKvSnapshotStore,
  createLogger,
  ensureLayout,
  putHosts,
  runDir,
  startLocalNats,
} from '../../infra/index.js';
import { DEFAULT_BUCKET_COUNT, isSkipped, subjects, type Status } from '../../shared/index.js';
import { vpc } from '../../actors/index.js';
import { start } from '../../services/controller/index.js';
import { Limiter } from '../../services/controller/limiter.js';
import { createMetrics } from '../../services/controller/metrics.js';
import { VpcLane } from '../../services/controller/vpcs/lane.js';
import { clientConnections } from '../support/controller.js';
import { fleet, publishScripts, vpcScript } from '../support/workload.js';
import { fmt, machine, pct, writeReport } from './report.js';

const { values } = parseArgs({
  options: {
    vpcs: { type: 'string', default: '200' },
    'per-vpc': { type: 'string', default: '50' },
    events: { type: 'string', default: '100000' },
  },
});
const VPCS = Number(values.vpcs);
const PER_VPC = Number(values['per-vpc']);
const EVENTS = Number(values.events);
const log = createLogger({ name: 'bench', level: 'silent', pretty: false });
const encoder = new TextEncoder();

const dir = runDir('alcor-bench-ctl-');
const server = await startLocalNats({ dir, bucketCount: DEFAULT_BUCKET_COUNT });
const nc = await connectNats(server.url, { name: 'bench', reconnect: false });
const jsm = await jetstreamManager(nc);
await ensureLayout(nc, jsm, DEFAULT_LAYOUT);
const hosts = fleet(10, 50);
await putHosts(nc, hosts);
const clients = await clientConnections(server.url, 4);

// ── end to end ────────────────────────────────────────────────────────────
const scripts = new Map<string, unknown[]>();
for (let v = 0; v < VPCS; v++) scripts.set(`e2e-${v}`, vpcScript(`e2e-${v}`, PER_VPC, hosts, v));
const total = VPCS * PER_VPC;
const sentAt = new Map<string, number>();
for (const script of scripts.values())
  for (const intent of script) sentAt.set((intent as { id: string }).id, 0);
const latencies: number[] = [];
let decidedCount = 0;
let lastDecision = 0;
let allDecided: () => void = () => undefined;
const decidedAll = new Promise<void>((r) => (allDecided = r));
const statusSub = nc.subscribe('status.>', {
  callback: (_err, m) => {
    const s = m.json<Status>();
    const sent = sentAt.get(s.intentId);
    if (sent === undefined) return;
    latencies.push(performance.now() - sent);
    sentAt.delete(s.intentId);
    lastDecision = performance.now();
    if (++decidedCount === total) allDecided();
  },
});
const controller = await start({
  instanceId: 'bench',
  natsUrl: server.url,
  buckets: Array.from({ length: DEFAULT_BUCKET_COUNT }, (_, i) => i),
  log,
});
// Stamp each intent as it is handed to the client library.
for (const script of scripts.values()) {
  for (const intent of script) {
    Object.defineProperty(intent, 'toJSON', {
      enumerable: false,
      value() {
        sentAt.set((this as { id: string }).id, performance.now());
        const { toJSON: _drop, ...plain } = this as Record<string, unknown>;
        return plain;
      },
    });
  }
}
const e2eStart = performance.now();
await publishScripts(clients, scripts, 256);
await decidedAll;
const e2e = {
  intents: total,
  rate: total / ((lastDecision - e2eStart) / 1000),
  p50: pct(latencies, 50),
  p99: pct(latencies, 99),
  goalStates: controller.metrics.goalStates,
};
statusSub.unsubscribe();
await controller.stop();

// ── raw JetStream: publish + consume the same number of same-size messages ──
await jsm.streams.add({ name: 'RAW', subjects: ['raw.>'] });
await jsm.consumers.add('RAW', {
  durable_name: 'raw',
  ack_policy: AckPolicy.Explicit,
  deliver_policy: DeliverPolicy.All,
});
const sample = encoder.encode(JSON.stringify([...scripts.values()][0]![5]));
const rawSent: number[] = [];
const rawLatencies: number[] = [];
const rawMessages = await (
  await jetstream(nc).consumers.get('RAW', 'raw')
).consume({
  max_messages: 1024,
});
const rawStart = performance.now();
const consumed = (async () => {
  let n = 0;
  for await (const m of rawMessages) {
    rawLatencies.push(performance.now() - rawSent[m.seq - 1]!);
    m.ack();
    if (++n === total) return performance.now();
  }
  return performance.now();
})();
{
  const js = jetstream(clients[0]!);
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; i < total; i++) {
    rawSent.push(performance.now());
    const p = js.publish(`raw.${i % VPCS}`, sample, { msgID: `raw-${i}` });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= 1024) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}
const rawEnd = await consumed;
await rawMessages.close();
const raw = {
  rate: total / ((rawEnd - rawStart) / 1000),
  p50: pct(rawLatencies, 50),
  p99: pct(rawLatencies, 99),
};

// ── hydration of a 100,000-event VPC ───────────────────────────────────────
const big = 'hydrate-me';
const commits: string[] = [];
{
  let state = vpc.initialState(big);
  const place = (h: string) => hosts.find((x) => x.hostId === h);
  const lookupHost = (h: string) => place(h);
  let seq = 0;
  const decideOne = (intent: object) => {
    seq += 1;
    const d = vpc.decide(
      { intent: { vpcId: big, id: `h${seq}`, ...intent } as never, cursor: seq, at: 't' },
      state,
      { lookupHost },
    );
    if (d.type !== 'commit') return;
    state = vpc.evolve(state, { revision: seq, commit: d.commit });
    commits.push(JSON.stringify(d.commit));
  };
  decideOne({ kind: 'vpc.create', spec: { cidr: '10.0.0.0/8' } });
  decideOne({
    kind: 'subnet.create',
    spec: { subnetId: 's1', cidr: '10.0.0.0/12', gatewayIp: '10.0.0.1' },
  });
  // Ports come and go: the VPC ends with ~2,000 ports after 100,000 events.
  for (let i = 0; commits.length < EVENTS; i++) {
    if (i % 50 < 49 || i < 4000) {
      decideOne({
        kind: 'port.create',
        spec: { portId: `p${i}`, subnetId: 's1', hostId: hosts[i % hosts.length]!.hostId },
      });
    } else {
      for (let k = i - 2000; k < i - 1950 && commits.length < EVENTS; k++)
        decideOne({ kind: 'port.delete', spec: { portId: `p${k}` } });
    }
  }
}
{
  const js = jetstream(nc);
  const inFlight = new Set<Promise<unknown>>();
  for (const c of commits) {
    const p = js.publish(subjects.event(big), encoder.encode(c));
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= 2048) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}
const eventLog = await createJetStreamEventLog(nc);
const snapshots = await createKvSnapshotStore(nc);
const worker = (id: string) =>
  new VpcLane(big, 0, {
    log: eventLog,
    intents: {
      read: async () => {
        await Promise.resolve();
        return [];
      },
    },
    publisher: createJetStreamDecisionPublisher(nc),
    snapshots,
    lookupHost: () => undefined,
    logger: log.child({ id }),
    limiter: new Limiter(4),
    metrics: createMetrics(),
    snapshotEvery: Number.MAX_SAFE_INTEGER,
    readBatch: 256,
    groupMax: 128,
    groupBytes: 256 * 1024,
    outboxWindow: 64,
    leaseValid: () => true,
    lossEpoch: () => 0,
    reportLoad: () => undefined,
  });
let t = performance.now();
let rawRead = 0;
for await (const _ of eventLog.read(big, 0)) rawRead += 1;
const rawReadMs = performance.now() - t;
t = performance.now();
await worker('replay').hydrate();
const replayMs = performance.now() - t;
// A snapshot 1,000 events before the end.
{
  let state = vpc.initialState(big);
  let n = 0;
  for await (const r of eventLog.read(big, 0)) {
    if (!isSkipped(r)) state = vpc.evolve(state, r);
    if (++n === EVENTS - 1000) break;
  }
  await snapshots.save(big, state.revision, JSON.stringify(vpc.toSnapshot(state)));
}
t = performance.now();
await worker('snapshot').hydrate();
const snapshotMs = performance.now() - t;
const snapshotBytes = (await snapshots.load(big))?.text.length ?? 0;
const hydration = { events: rawRead, rawReadMs, replayMs, snapshotMs, snapshotBytes };

await Promise.all(clients.map((c) => c.close()));
await nc.close();
await server.stop();
rmSync(dir, { recursive: true, force: true });

const results = { e2e, raw, hydration };
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
await writeReport(
  'controller',
  { machine: machine(), date: new Date().toISOString(), server: NATS_SERVER_VERSION, results },
  `
## Controller end to end and hydration (issue 4)

\`node --import tsx test/bench/controller.bench.ts\` — one controller in-process owning all
1,024 buckets, nats-server ${NATS_SERVER_VERSION} on the same machine (file storage, default
sync), ${machine()}; ${new Date().toISOString().slice(0, 10)}. Client, controller and server
share the machine's cores.

${fmt(total)} intents over ${VPCS} VPCs (500 hosts in 10 clusters; creates, migrations,
deletes, group and route changes, ~10 % refused, ~10 % malformed) published from 4
connections. Each intent: read from INTENTS, decide, append to EVENTS with
compare-and-set, publish its goal states (${fmt(e2e.goalStates / total, 1)} per intent on
average), publish its status. Raw JetStream: the same number of same-size messages
published and consumed (acked) by one consumer, in the same run on the same server.

| | intents (msgs)/s | p50 latency | p99 latency |
|---|---|---|---|
| controller: publish → status | ${fmt(e2e.rate)} | ${fmt(e2e.p50, 1)} ms | ${fmt(e2e.p99, 1)} ms |
| raw JetStream: publish → consumed | ${fmt(raw.rate)} | ${fmt(raw.p50, 1)} ms | ${fmt(raw.p99, 1)} ms |
| **ratio** | **${fmt(e2e.rate / raw.rate, 2)}×** | | |

Latencies are measured under the full load (every intent queued at once), so they are
mostly queueing. Reading the ratio: each intent stores ${fmt(2 + e2e.goalStates / total, 1)}
JetStream messages (its commit, its goal states, its status) against the raw run's one,
so per stored message the controller runs at ${fmt(((2 + e2e.goalStates / total) * e2e.rate) / raw.rate, 2)}× the raw rate; intents of one
VPC are decided strictly one after another (append, then goal states, then status).

Hydration of one VPC with ${fmt(hydration.events)} events (≈2,000 live ports at the end):

| | time | events/s |
|---|---|---|
| ordered consumer reading the ${fmt(hydration.events)} messages (raw) | ${fmt(rawReadMs)} ms | ${fmt(hydration.events / (rawReadMs / 1000))} |
| hydrate by replaying EVENTS (read + decode + evolve) | ${fmt(replayMs)} ms | ${fmt(hydration.events / (replayMs / 1000))} |
| hydrate from a snapshot 1,000 events before the end (${fmt(snapshotBytes / 1024)} KiB) | ${fmt(snapshotMs)} ms | — |
`,
);
process.exit(0);
