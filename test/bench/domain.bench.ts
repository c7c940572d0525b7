/**
 * Issue 3 benchmark: the pure domain core on one core.
 *   node --expose-gc --import tsx test/bench/domain.bench.ts [--quick]
 *
 * For each VPC size: build the VPC through the decider (hosts spread over
 * clusters), then time `port.create` intents on hosts already in the VPC:
 * decide + evolve + project, and the same plus JSON encoding of the goal states.
 * Baseline in the same run: JSON-decoding each intent and encoding its goal states
 * (work any implementation does per intent); the ratio says what the domain logic
 * costs on top. Also: the full state a joining host receives, and heap per VPC.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  decodeGoalState,
  splitGoalState,
  decodeIntent,
  type HostRecord,
  type RecordedCommit,
  type VpcIntent,
} from '../../shared/index.js';
import { nca, vpc } from '../../actors/index.js';
import { fmt, machine, writeReport } from './report.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });

interface Size {
  name: string;
  ports: number;
  clusters: number;
  hostsPerCluster: number;
  measured: number;
}

const sizes: Size[] = values.quick
  ? [
      {
        name: '1k ports',
        ports: 1_000,
        clusters: 10,
        hostsPerCluster: 10,
        measured: Number(process.env.BENCH_MEASURED ?? 500),
      },
    ]
  : [
      {
        name: '1k ports / 100 hosts / 10 clusters',
        ports: 1_000,
        clusters: 10,
        hostsPerCluster: 10,
        measured: 20_000,
      },
      {
        name: '100k ports / 5,000 hosts / 100 clusters',
        ports: 100_000,
        clusters: 100,
        hostsPerCluster: 50,
        measured: 5_000,
      },
    ];

function topology(size: Size): HostRecord[] {
  const hosts: HostRecord[] = [];
  for (let c = 0; c < size.clusters; c++) {
    for (let h = 0; h < size.hostsPerCluster; h++) {
      hosts.push({
        hostId: `h${c}-${h}`,
        region: `r${c % 2}`,
        az: `az${c % 4}`,
        dc: `dc${c % 8}`,
        cluster: `c${c}`,
        underlayIp: `192.168.${c}.${h}`,
        binding: { type: 'jetstream' },
      });
    }
  }
  return hosts;
}

function run(size: Size) {
  const hosts = topology(size);
  const places = new Map(
    hosts.map((h) => [h.hostId, { region: h.region, az: h.az, dc: h.dc, cluster: h.cluster }]),
  );
  const ctx = { lookupHost: (id: string) => places.get(id) };
  let state = vpc.initialState('vpc-bench');
  let seq = 0;
  const step = (intent: VpcIntent) => {
    seq += 1;
    const d = vpc.decide({ intent, cursor: seq, at: '2026-11-24T00:00:00Z' }, state, ctx);
    if (d.type !== 'commit') throw new Error(`unexpected ${d.type}`);
    const recorded: RecordedCommit = { revision: seq, commit: d.commit };
    state = vpc.evolve(state, recorded);
    return { commit: d.commit, messages: vpc.project(state, recorded, 1) };
  };
  const intent = (n: number, kind: VpcIntent['kind'], spec: unknown): VpcIntent =>
    ({ id: `i${n}`, kind, vpcId: 'vpc-bench', spec }) as VpcIntent;

  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  step(intent(0, 'vpc.create', { cidr: '10.0.0.0/8' }));
  step(intent(1, 'subnet.create', { subnetId: 's1', cidr: '10.0.0.0/14', gatewayIp: '10.0.0.1' }));
  step(
    intent(2, 'sg.create', {
      sgId: 'web',
      rules: [{ direction: 'ingress', protocol: 'tcp', portMin: 443, portMax: 443 }],
    }),
  );
  const loadStart = performance.now();
  for (let i = 0; i < size.ports; i++) {
    step(
      intent(10 + i, 'port.create', {
        portId: `p${i}`,
        subnetId: 's1',
        hostId: hosts[i % hosts.length]!.hostId,
        securityGroupIds: ['web'],
      }),
    );
  }
  const loadMs = performance.now() - loadStart;
  // What a host joining (or resyncing with) a VPC of this size receives.
  const fullStart = performance.now();
  const full = vpc.fullState(state, hosts[0]!.hostId, state.revision, 1);
  const fullBytes = JSON.stringify(full).length;
  const fullMs = performance.now() - fullStart;
  global.gc?.();
  const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;

  // The measured intents, prepared as bytes as they arrive from NATS.
  const encoder = new TextEncoder();
  const raw = Array.from({ length: size.measured }, (_, i) =>
    encoder.encode(
      JSON.stringify(
        intent(1_000_000 + i, 'port.create', {
          portId: `m${i}`,
          subnetId: 's1',
          hostId: hosts[(i * 7) % hosts.length]!.hostId,
          securityGroupIds: ['web'],
        }),
      ),
    ),
  );

  // Domain: decode + decide + evolve + project (no encoding).
  let t0 = performance.now();
  let messages = 0;
  let opsOut = 0;
  const produced: ReturnType<typeof step>[] = [];
  for (const bytes of raw) {
    const decoded = decodeIntent(bytes);
    if (!decoded.ok) throw new Error(decoded.error.message);
    const r = step(decoded.value);
    messages += r.messages.length;
    for (const m of r.messages) opsOut += m.message.ops.length;
    produced.push(r);
  }
  const domainMs = performance.now() - t0;

  // Encoding the goal states (what goes on the wire).
  t0 = performance.now();
  let bytesOut = 0;
  for (const r of produced) {
    bytesOut += JSON.stringify(r.commit).length;
    for (const m of r.messages) bytesOut += JSON.stringify(m.message).length;
  }
  const encodeMs = performance.now() - t0;
  const commitBytes = produced.reduce((n, r) => n + JSON.stringify(r.commit).length, 0);

  // Baseline: JSON decode of the intent + JSON encode of the same goal-state messages.
  const decoder = new TextDecoder();
  t0 = performance.now();
  let sink = 0;
  for (let i = 0; i < raw.length; i++) {
    const parsed = JSON.parse(decoder.decode(raw[i])) as { id: string };
    sink += parsed.id.length;
    for (const m of produced[i]!.messages) sink += JSON.stringify(m.message).length;
  }
  const baselineMs = performance.now() - t0;
  if (sink === 0) throw new Error('baseline did nothing');

  // The agent's side: one host holding the whole VPC (its full state applied)
  // validates and applies every goal-state message of the measured intents.
  // Baseline: JSON-parsing the same bytes. Each message must cost its own ops, not
  // the VPC's size (docs/reliability.md, what the fuzzer found, 4).
  const agent = nca.emptyHostModel(hosts[0]!.hostId);
  nca.handleGoalState(agent, full);
  const agentBytes = produced.flatMap((r) =>
    r.messages.map((m) => encoder.encode(JSON.stringify(m.message))),
  );
  t0 = performance.now();
  for (const bytes of agentBytes) {
    const decoded = decodeGoalState(bytes);
    if (!decoded.ok) throw new Error(decoded.error.message);
    nca.handleGoalState(agent, decoded.value);
  }
  const agentMs = performance.now() - t0;
  if (!nca.hostsVpc(agent, 'vpc-bench')) throw new Error('the agent lost the VPC');
  t0 = performance.now();
  for (const bytes of agentBytes)
    sink += (JSON.parse(decoder.decode(bytes)) as { revision: number }).revision;
  const agentBaselineMs = performance.now() - t0;

  // A host joining the VPC over a hop that takes 1 MiB a message (Kafka's default):
  // the full state cut into parts, and the agent decoding, reassembling and applying
  // them (issue 22). Baseline: JSON-parsing the same bytes. Peak heap: the most
  // heap in use after any part, above what was in use before the join.
  const cut = splitGoalState(full, 1024 * 1024);
  if (!cut.ok) throw new Error(cut.error.message);
  const partBytes = cut.value.map((m) => encoder.encode(JSON.stringify(m)));
  global.gc?.();
  const joinHeapBefore = process.memoryUsage().heapUsed;
  let joinPeak = joinHeapBefore;
  const joiner = nca.emptyHostModel(hosts[0]!.hostId);
  const parts = new nca.PartsAssembler();
  t0 = performance.now();
  for (const bytes of partBytes) {
    const decoded = decodeGoalState(bytes);
    if (!decoded.ok) throw new Error(decoded.error.message);
    const outcome = parts.add(decoded.value, 0);
    if (outcome.state === 'complete') nca.handleGoalState(joiner, outcome.message);
    joinPeak = Math.max(joinPeak, process.memoryUsage().heapUsed);
  }
  const joinMs = performance.now() - t0;
  if (nca.liveResources(joiner, 'vpc-bench').size < size.ports)
    throw new Error('the joining host did not apply the full state');
  global.gc?.();
  const joinRetainedMb = (process.memoryUsage().heapUsed - joinHeapBefore) / 1024 / 1024;
  t0 = performance.now();
  for (const bytes of partBytes)
    sink += (JSON.parse(decoder.decode(bytes)) as { revision: number }).revision;
  const joinBaselineMs = performance.now() - t0;

  const perSec = (ms: number) => (size.measured / ms) * 1000;
  return {
    size: size.name,
    hosts: hosts.length,
    clusters: size.clusters,
    vpcPorts: size.ports,
    measuredIntents: size.measured,
    buildIntentsPerSec: (size.ports / loadMs) * 1000,
    domainIntentsPerSec: perSec(domainMs),
    withEncodingIntentsPerSec: perSec(domainMs + encodeMs),
    baselineIntentsPerSec: perSec(baselineMs),
    ratioToBaseline: (domainMs + encodeMs) / baselineMs,
    messagesPerIntent: messages / size.measured,
    opsPerIntent: opsOut / size.measured,
    goalStateBytesPerIntent: (bytesOut - commitBytes) / size.measured,
    eventBytesPerIntent: commitBytes / size.measured,
    fullStateBytesForJoiningHost: fullBytes,
    fullStateOps: full.ops.length,
    fullStateMs: fullMs,
    heapMbForVpc: heapMb,
    agentMessagesPerSec: (agentBytes.length / agentMs) * 1000,
    agentBaselineMessagesPerSec: (agentBytes.length / agentBaselineMs) * 1000,
    agentRatioToBaseline: agentMs / agentBaselineMs,
    joinParts: partBytes.length,
    joinMs,
    joinBaselineMs,
    joinPeakHeapMb: (joinPeak - joinHeapBefore) / 1024 / 1024,
    joinRetainedHeapMb: joinRetainedMb,
  };
}

const results = sizes.map(run);
const joinRows = results
  .map(
    (r) =>
      `| ${r.size} | ${fmt(r.joinParts)} | ${fmt(r.joinMs, 1)} ms | ${fmt(r.joinBaselineMs, 1)} ms | ${fmt(r.joinMs / r.joinBaselineMs, 1)}× | ${fmt(r.joinPeakHeapMb, 1)} MiB | ${fmt(r.joinRetainedHeapMb, 1)} MiB |`,
  )
  .join('\n');
const agentRows = results
  .map(
    (r) =>
      `| ${r.size} | ${fmt(r.agentMessagesPerSec)} | ${fmt(r.agentBaselineMessagesPerSec)} | ${fmt(r.agentRatioToBaseline, 1)}× |`,
  )
  .join('\n');
for (const r of results) process.stdout.write(`${JSON.stringify(r)}\n`);

const rows = results
  .map(
    (r) =>
      `| ${r.size} | ${fmt(r.domainIntentsPerSec)} | ${fmt(r.withEncodingIntentsPerSec)} | ${fmt(r.baselineIntentsPerSec)} | ${fmt(r.ratioToBaseline, 1)}× | ${fmt(r.messagesPerIntent, 1)} | ${fmt(r.goalStateBytesPerIntent)} | ${fmt(r.eventBytesPerIntent)} | ${fmt(r.fullStateBytesForJoiningHost / 1024)} KiB in ${fmt(r.fullStateMs, 1)} ms | ${fmt(r.heapMbForVpc, 1)} MiB | ${fmt(r.buildIntentsPerSec)} |`,
  )
  .join('\n');

await writeReport(
  'domain',
  { machine: machine(), date: new Date().toISOString(), results },
  `
## Domain core: decide + evolve + project (issue 3)

\`node --expose-gc --import tsx test/bench/domain.bench.ts\` — one core, no I/O; ${machine()}; ${new Date().toISOString().slice(0, 10)}.

\`port.create\` intents into a VPC that already holds the stated ports, each on a host
already in the VPC (the steady state: one unicast to the host, one neighbor multicast
per cluster hosting the VPC). *Domain* = decode and validate the intent bytes, decide,
evolve, project. *+ encoding* adds JSON-encoding the commit and every goal-state
message. *Baseline* = JSON-parsing the intent and JSON-encoding the same goal-state
messages, the floor any implementation pays; the ratio is (domain + encoding) / baseline.

| VPC | domain intents/s | + encoding intents/s | baseline intents/s | ratio | messages/intent | goal-state bytes/intent | event bytes/intent | full state to a joining host | heap for the VPC | build rate (intents/s) |
|---|---|---|---|---|---|---|---|---|---|---|
${rows}

Reading: messages per intent = 1 unicast + 1 multicast per cluster hosting the VPC, so
bytes per intent grow with clusters, not hosts. A host joining the 100k-port VPC
receives the whole neighbor table once (the full state column); every change after
that is a delta. The heap figure is the decider's state for one VPC (records plus
indexes) after the build, measured with \`--expose-gc\`.

The agent's side: one host holding the whole VPC (its full state applied) decodes,
validates and applies every goal-state message of the measured intents. Baseline =
JSON-parsing the same bytes.

| VPC | agent messages/s | baseline messages/s | ratio |
|---|---|---|---|
${agentRows}

A message costs its own ops: the rate is the same for a VPC of 1k ports and of 100k.

A host joining the VPC over a hop that takes 1 MiB a message (Kafka's default): the
full state in parts (docs/southbound.md, "Goal states in parts"), decoded,
reassembled and applied by the agent. Baseline = JSON-parsing the same bytes. Peak
heap = the most heap in use after any part, above what was in use before; retained =
after a GC, what the host's model of the VPC keeps.

| VPC | parts of ≤ 1 MiB | agent: decode, reassemble, apply | baseline | ratio | peak heap | retained |
|---|---|---|---|---|---|---|
${joinRows}
`,
);
