/**
 * The controller's throughput against a raw JetStream anchor in matched units, and
 * hydration.
 *   npm run bench:controller [-- --vpcs 200 --per-vpc 50 --events 100000]
 *
 * A fresh nats-server; 500 hosts; one controller in-process owning every bucket.
 *  - Product: intents published at once from 4 connections; rate = intents / time
 *    to the last decision; the messages it stored per intent are counted from the
 *    streams (INTENTS, EVENTS, GOALSTATES, STATUS).
 *  - Anchor, same run: as many messages of the same mean size, published from the
 *    same 4 connections with 1,024 acks outstanding each. Ratio = the product's
 *    stored messages/s over the anchor's. CPU per process from /proc for both.
 *  - Second anchor: the same writes (ten times as many) from the Go client, the NATS
 *    CLI's `nats bench js pub async` (natsCliAnchor.ts): one the server limits.
 *  - Hydration of a VPC with 100,000 events: replaying EVENTS alone, and from a
 *    snapshot taken 1,000 events before the end; against reading the same
 *    messages raw.
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  DEFAULT_LAYOUT,
  NATS_SERVER_VERSION,
  connectNats,
  cpuSince,
  cpuSnapshot,
  createJetStreamDecisionPublisher,
  createJetStreamEventLog,
  createKvSnapshotStore,
  createLogger,
  ensureLayout,
  putHosts,
  runDir,
  startLocalNats,
} from '../../infra/index.js';
import {
  DEFAULT_BUCKET_COUNT,
  isSkipped,
  streams,
  subjects,
  type Status,
} from '../../shared/index.js';
import { vpc } from '../../actors/index.js';
import { start } from '../../services/controller/index.js';
import { Limiter } from '../../services/controller/limiter.js';
import { createMetrics } from '../../services/controller/metrics.js';
import { VpcLane } from '../../services/controller/vpcs/lane.js';
import { clientConnections } from '../support/controller.js';
import { fleet, publishScripts, vpcScript } from '../support/workload.js';
import { fmt, machine, pct, writeReport } from './report.js';
import { NATS_CLI_VERSION, natsCli, runCliAnchor } from './natsCliAnchor.js';

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

/** Messages and bytes stored in the product's streams. */
async function storedCounts(): Promise<Map<string, { messages: number; bytes: number }>> {
  const out = new Map<string, { messages: number; bytes: number }>();
  for (const name of [streams.intents, streams.events, streams.goalStates, streams.status]) {
    const info = await jsm.streams.info(name);
    out.set(name, { messages: info.state.messages, bytes: info.state.bytes });
  }
  return out;
}

function diffCounts(
  before: Map<string, { messages: number; bytes: number }>,
  after: Map<string, { messages: number; bytes: number }>,
) {
  let messages = 0;
  let bytes = 0;
  const byStream: Record<string, number> = {};
  for (const [name, a] of after) {
    const b = before.get(name) ?? { messages: 0, bytes: 0 };
    messages += a.messages - b.messages;
    bytes += a.bytes - b.bytes;
    byStream[name] = a.messages - b.messages;
  }
  return { messages, bytes, byStream };
}

/** CPU per role as % of one core over `seconds`. */
function cpuPercents(spent: Map<string, number>, seconds: number): Record<string, number> {
  return Object.fromEntries([...spent].map(([role, s]) => [role, Math.round((100 * s) / seconds)]));
}

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
const storedBefore = await storedCounts();
let cpu = cpuSnapshot('bench');
const e2eStart = performance.now();
await publishScripts(clients, scripts, 256);
await decidedAll;
const e2eCpu = cpuSince(cpu, cpuSnapshot('bench'));
const stored = diffCounts(storedBefore, await storedCounts());
const e2eSeconds = (lastDecision - e2eStart) / 1000;
const e2e = {
  intents: total,
  rate: total / e2eSeconds,
  p50: pct(latencies, 50),
  p99: pct(latencies, 99),
  goalStates: controller.metrics.goalStates,
  /** Messages stored per intent (INTENTS + EVENTS + GOALSTATES + STATUS), and their mean size. */
  writesPerIntent: stored.messages / total,
  bytesPerWrite: stored.bytes / stored.messages,
  stored: stored.byStream,
  cpuPercent: cpuPercents(e2eCpu, e2eSeconds),
};
statusSub.unsubscribe();
await controller.stop();

// ── raw JetStream anchor, in matched units ─────────────────────────────────
// As many stored messages as the product stored for the intents, of their mean
// size, published from the 4 client connections with 1,024 acks outstanding each
// (so the server, not one client, is the limit: its CPU is shown), over as many
// subjects as there were VPCs.
await jsm.streams.add({ name: 'RAW', subjects: ['raw.>'] });
const rawWrites = stored.messages;
const sample = new Uint8Array(Math.round(e2e.bytesPerWrite)).fill(120);
cpu = cpuSnapshot('bench');
const rawStart = performance.now();
{
  let next = 0;
  await Promise.all(
    clients.map(async (c, k) => {
      const js = jetstream(c);
      const inFlight = new Set<Promise<unknown>>();
      while (next < rawWrites) {
        const i = next++;
        const p = js.publish(`raw.${i % VPCS}`, sample, { msgID: `raw-${k}-${i}` });
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        if (inFlight.size >= 1024) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    }),
  );
}
const rawSeconds = (performance.now() - rawStart) / 1000;
const raw = {
  writes: rawWrites,
  writesPerSecond: rawWrites / rawSeconds,
  cpuPercent: cpuPercents(cpuSince(cpu, cpuSnapshot('bench')), rawSeconds),
};
const ratio = (e2e.rate * e2e.writesPerIntent) / raw.writesPerSecond;

// ── the same anchor from the Go client (the NATS CLI's bench) ──────────────
// Node's client is the limit of the anchor above; this one is not. Ten times the
// messages, so that the run lasts long enough to time (same size, connections,
// window, msgIds and subjects).
const cli = natsCli();
const cliAnchor =
  'path' in cli
    ? await runCliAnchor(cli.path, server.url, {
        messages: rawWrites * 10,
        size: sample.length,
        clients: clients.length,
        window: 1024,
        subjects: VPCS,
      })
    : undefined;
const cliRatio = cliAnchor
  ? (e2e.rate * e2e.writesPerIntent) / cliAnchor.messagesPerSecond
  : undefined;

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

const results = {
  e2e,
  raw,
  ratio,
  cliAnchor: cliAnchor ?? { missing: 'missing' in cli ? cli.missing : '' },
  cliRatio,
  hydration,
};
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
await writeReport(
  'controller',
  { machine: machine(), date: new Date().toISOString(), server: NATS_SERVER_VERSION, results },
  `
## Controller throughput against a matched raw JetStream anchor, and hydration

\`npm run bench:controller\` — one controller in-process owning all 1,024 buckets,
nats-server ${NATS_SERVER_VERSION} on the same machine (file storage, default sync),
${machine()}; ${new Date().toISOString().slice(0, 10)}. Client, controller and server share the
machine's cores.

${fmt(total)} intents over ${VPCS} VPCs (500 hosts in 10 clusters; creates, migrations,
deletes, group and route changes, ~10 % refused, ~10 % malformed) published at once from 4
connections; rate = intents until the last decision (its status) / time. The product
stored ${fmt(e2e.writesPerIntent, 2)} messages per intent (INTENTS ${fmt(e2e.stored[streams.intents] ?? 0)},
EVENTS ${fmt(e2e.stored[streams.events] ?? 0)}, GOALSTATES ${fmt(e2e.stored[streams.goalStates] ?? 0)},
STATUS ${fmt(e2e.stored[streams.status] ?? 0)}; ${fmt(e2e.bytesPerWrite)} bytes on average;
intents of a VPC that wait together are committed as one EVENTS message with one goal
state per target). The anchor, in the same run on the same server, stores the same number
of messages of that size from the same 4 connections, 1,024 publish acks outstanding each.

| | intents/s | stored messages/s | p50 | p99 | CPU (% of a core) |
|---|---|---|---|---|---|
| controller: publish → decided (status) | ${fmt(e2e.rate)} | ${fmt(e2e.rate * e2e.writesPerIntent)} | ${fmt(e2e.p50, 1)} ms | ${fmt(e2e.p99, 1)} ms | ${Object.entries(
    e2e.cpuPercent,
  )
    .map(([r, v]) => `${r} ${v}`)
    .join(', ')} |
| raw JetStream anchor | | ${fmt(raw.writesPerSecond)} | | | ${Object.entries(raw.cpuPercent)
    .map(([r, v]) => `${r} ${v}`)
    .join(', ')} |
| **ratio (stored messages/s)** | | **${fmt(ratio, 2)}×** | | | |
${
  cliAnchor
    ? `| raw JetStream anchor, Go client (NATS CLI ${NATS_CLI_VERSION}, \`nats bench js pub async\`, ${fmt(cliAnchor.messages)} messages) | | ${fmt(cliAnchor.messagesPerSecond)} | | | ${Object.entries(
        cliAnchor.cpuPercent,
      )
        .map(([r, v]) => `${r} ${v}`)
        .join(', ')} |
| **ratio against the Go-client anchor** | | **${fmt(cliRatio!, 2)}×** | | | |`
    : `| raw JetStream anchor, Go client | not run: ${'missing' in cli ? cli.missing : ''} | | | | |`
}

\`bench\` is this process: the 4 clients and, in the product's run, the controller. In
the anchor's run the bench only publishes: ${(raw.cpuPercent.bench ?? 0) >= 90 ? `**this anchor was limited by its client** (this process at ${raw.cpuPercent.bench} % of a core, the server at ${raw.cpuPercent['nats-server'] ?? '?'} %): a server-limited anchor stores more per second, so the ratio is an upper bound` : 'the server was the limit'}. Latencies are measured with every intent queued at once, so they
are mostly queueing; the open-loop latencies are the demo's (\`--rate\`, docs/performance.md).
The second anchor is the same stream of writes from the Go client (the NATS CLI, built by
this bench from the Go module proxy into \`.cache/bin\`), which costs its client a few
µs per publish: there the server sets the pace, and its ratio is the one the target
(≥ 0.8×) is about.

Hydration of one VPC with ${fmt(hydration.events)} events (≈2,000 live ports at the end):

| | time | events/s |
|---|---|---|
| ordered consumer reading the ${fmt(hydration.events)} messages (raw) | ${fmt(rawReadMs)} ms | ${fmt(hydration.events / (rawReadMs / 1000))} |
| hydrate by replaying EVENTS (read + decode + evolve) | ${fmt(replayMs)} ms | ${fmt(hydration.events / (replayMs / 1000))} |
| hydrate from a snapshot 1,000 events before the end (${fmt(snapshotBytes / 1024)} KiB) | ${fmt(snapshotMs)} ms | — |
`,
);
process.exit(0);
