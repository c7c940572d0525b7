/**
 * The demo's run: the scenario expanded into files, the topology loaded, the
 * services started as the processes an operator runs (controllers, southbound
 * modules, one NCA fleet), the workload applied through the sync API with live
 * progress, and a summary measured from the outside — STATUS and the acks on the
 * wire, each service's /metrics, the oracle over the running fleet, placement.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  cpuSince,
  cpuSnapshot,
  stageQuantiles,
  ManagedProcess,
  NatsCredentials,
  type NatsRole,
  authorizeNatsHosts,
  connectNats,
  freePort,
  metricSamples,
  repoRoot,
  type Logger,
  type Servers,
} from '../../infra/index.js';
import {
  StatusSchema,
  bindingLabel,
  decodeSouthboundTable,
  kvBuckets,
  percentile,
  southboundKeys,
  subjects,
  type GoalStateAck,
  type HostRecord,
} from '../../shared/index.js';
import { check, type CheckReport } from '../cli/check.js';
import { foldEventLog } from '../nca/oracle.js';
import { acaDivergence, forkTestAcas, type TestAcaProcess } from '../aca-bridge/index.js';
import { placementReport } from '../cli/placement.js';
import { loadTopology } from '../cli/topology.js';
import { offerOpenLoop, sequencesBy } from './arrivals.js';
import { IntentTally, progressLine } from './progress.js';
import { expand, type Scenario } from './scenario.js';

export interface DemoOptions {
  scenario: Scenario;
  servers: Servers;
  dir: string;
  controllers: number;
  southbounds: number;
  /**
   * Intents offered per second, open loop: arrivals at random, each the next
   * intent of a VPC at random, published to the VPC's intent subject; or `max`:
   * every intent at once (what the system takes is then its capacity).
   */
  rate: number | 'max';
  /** NCA fleet processes, each with every Nth host. */
  ncaShards: number;
  /** Hosts bridged to test Alcor Control Agents (services/aca-bridge) instead of simulated. */
  acaHosts?: number;
  /** The test ACAs keep streams open (Alcor's ACA closes each after one reply). */
  acaLongLived?: boolean;
  /** How long to wait for every accepted intent to be programmed after the last decision. */
  settleMs: number;
  log: Logger;
  logLevel: string;
  out: (line: string) => void;
  /**
   * A terminal to redraw the progress line on (`redraw` writes it over the last,
   * `columns` is its current width), or undefined: a plain line now and then.
   */
  progress: { redraw: (line: string) => void; columns: () => number } | undefined;
  /** Called once the services start with what stops them (an interrupt before the run returns). */
  started?: (stop: () => Promise<void>) => void;
}

export interface Service {
  name: string;
  proc: ManagedProcess;
  opsUrl: string;
}

export interface BindingSummary {
  binding: string;
  hosts: number;
  /** Host acks of the workload's intents, ms from the intent's request. */
  acks: number;
  p50Ms: number;
  p99Ms: number;
  delivered: number;
  needed: number;
  duplicates: number;
  misrouted: number;
}

export interface DemoSummary {
  intents: number;
  accepted: number;
  rejected: number;
  rejectedBy: Record<string, number>;
  /** The scenario's deliberate mistakes refused with the reason expected, and those that were not. */
  mistakes: { planned: number; refusedAsExpected: number; otherwise: string[] };
  programmed: number;
  incomplete: number;
  notProgrammed: number;
  /** Statuses seen again (counted once), and final statuses seen before their intent's decision. */
  statuses: { repeats: number; finalBeforeDecision: number };
  applySeconds: number;
  intentsPerSecond: number;
  /** Intent request → `programmed` on STATUS. */
  programmedP50Ms: number;
  programmedP99Ms: number;
  /** Intent request → its decision (the apply API's reply). */
  acceptedP50Ms: number;
  acceptedP99Ms: number;
  /** The offered rate (undefined: `max`). */
  offeredPerSecond: number | undefined;
  /** The client's own lateness: scheduled arrival → request sent (p99), its event loop's utilization and CPU. */
  client: { sendLagP99Ms: number; eventLoopUtilization: number; cpuPercent: number };
  /** Stage latencies from the services' histograms (seconds, bucket upper bounds). */
  stages: Array<{ stage: string; count: number; p50: number; p99: number }>;
  /** CPU seconds per role while the intents were applied, and per intent (ms). */
  cpu: Array<{ role: string; seconds: number; msPerIntent: number }>;
  bindings: BindingSummary[];
  hostsReached: number;
  hostsUsed: number;
  oracle: CheckReport;
  /** With ACA hosts: their test ACAs checked against the log, and what they were sent. */
  aca?: {
    hosts: number;
    converged: number;
    /** The first diverging ACAs: host, and counts of missing / extra / different resources. */
    diverged: string[];
    messages: number;
    fullMessages: number;
    resources: number;
    refused: number;
    outOfOrder: number;
    /** From the bridged hosts' acks (ms): taken → pushed, and the push's round trip. */
    queueP50Ms: number;
    queueP99Ms: number;
    roundtripP50Ms: number;
    roundtripP99Ms: number;
  };
  placement: {
    controllers: Array<{ id: string; buckets: number; loadOverFair: number }>;
    controllerMaxOverAvg: number;
    southbound: Array<{ id: string; partitions: number; hosts: number }>;
    southboundMaxOverFair: number;
  };
  ok: boolean;
}

export interface DemoRun {
  services: Service[];
  summary: DemoSummary;
  stop: () => Promise<void>;
}

const encoder = new TextEncoder();

/**
 * Starts one service process (`main`, a path from the repository root) and waits
 * until its /healthz answers; its ops endpoint on `port` (default: a free one).
 */
/**
 * How to run a service's main: its compiled JavaScript (dist/, `npm run build`,
 * which the README's commands run), or the TypeScript through tsx without a build.
 */
/** How node runs one of the repository's modules: built (dist/), or the source through tsx. */
export function entryOf(main: string): string[] {
  const compiled = join(repoRoot, 'dist', main.replace(/\.ts$/, '.js'));
  return existsSync(compiled) ? [compiled] : ['--import', 'tsx', join(repoRoot, main)];
}

export async function spawnService(
  name: string,
  main: string,
  dir: string,
  env: Record<string, string>,
  logLevel: string,
  options: {
    /** Its ops endpoint's port (default: a free one). */
    port?: number;
    /** Told of the process as soon as it runs (to stop it even before it is ready). */
    spawned?: (proc: ManagedProcess) => void;
    /** A cgroup v2 directory to run it in (fault tests cut its network by it). */
    cgroup?: string;
  } = {},
): Promise<Service> {
  const port = options.port ?? (await freePort());
  const proc = new ManagedProcess({
    name,
    command: process.execPath,
    args: [...entryOf(main), '--log-level', logLevel, '--metrics-port', String(port)],
    cwd: repoRoot,
    logFile: join(dir, `${name}.log`),
    env: { ...process.env, ...env, LOG_PRETTY: '0' },
    ...(options.cgroup ? { cgroup: options.cgroup } : {}),
  });
  const { spawned } = options;
  spawned?.(proc);
  const opsUrl = `http://127.0.0.1:${port}`;
  await proc.waitUntilReady(async () => {
    try {
      return (await fetch(`${opsUrl}/healthz`)).ok;
    } catch {
      return false;
    }
  }, 120_000);
  return { name, proc, opsUrl };
}

/** Waits until every service's /readyz answers 200. */
export async function waitReady(
  services: ReadonlyArray<Pick<Service, 'name' | 'opsUrl'>>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const s of services) {
    for (;;) {
      const r = await fetch(`${s.opsUrl}/readyz`).catch(() => undefined);
      if (r?.ok) break;
      if (Date.now() > deadline)
        throw new Error(
          `${s.name} not ready after ${timeoutMs} ms: ${r ? await r.text() : 'no answer'}`,
        );
      await new Promise((res) => setTimeout(res, 200));
    }
  }
}

/** Sum of a metric's series from a /metrics text, per value of the label `by`. */
function samplesBy(text: string, name: string, by: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const { labels, value } of metricSamples(text, name)) {
    const label = labels[by];
    if (label !== undefined) out.set(label, (out.get(label) ?? 0) + value);
  }
  return out;
}

/**
 * The scenario expanded (deterministically, from its seed) into the files an
 * operator loads: `topology.json` (`alcor topology load`) and `intents.json`
 * (`alcor apply`) in `dir`, with a line describing them.
 */
export function writeScenarioFiles(
  scenario: Scenario,
  dir: string,
): {
  expanded: ReturnType<typeof expand>;
  topologyFile: string;
  intentsFile: string;
  lines: string[];
} {
  const expanded = expand(scenario);
  const intents = expanded.vpcs.flatMap((v) => v.intents);
  const topologyFile = join(dir, 'topology.json');
  const intentsFile = join(dir, 'intents.json');
  writeFileSync(topologyFile, JSON.stringify({ hosts: expanded.hosts }, null, 1));
  writeFileSync(intentsFile, JSON.stringify({ intents }, null, 1));
  return {
    expanded,
    topologyFile,
    intentsFile,
    lines: [
      `scenario: ${expanded.hosts.length} hosts in ${scenario.topology.clusters} clusters over ${scenario.topology.regions.length} region(s); ${expanded.vpcs.length} VPCs, ${intents.length} intents (${expanded.mistakes.length} deliberate mistakes)`,
      `  topology: ${topologyFile}\n  intents:  ${intentsFile}`,
    ],
  };
}

export async function runDemo(o: DemoOptions): Promise<DemoRun> {
  const { out, log } = o;
  const { expanded, topologyFile, lines } = writeScenarioFiles(o.scenario, o.dir);
  out('');
  for (const line of lines) out(line);

  const env = o.servers.env();
  // With users per role (DESIGN §9): the demo watches as a service, sends intents as
  // a client, and runs its agents each as its own host's user.
  const credentials = env.ALCOR_NATS_CREDENTIALS
    ? new NatsCredentials(env.ALCOR_NATS_CREDENTIALS)
    : undefined;
  const nc: NatsConnection = await connectNats(env.NATS_URL!, { name: 'alcor-demo' });
  const client: NatsConnection = credentials
    ? await connectNats(env.NATS_URL!, {
        name: 'alcor-demo-client',
        nkeySeedFile: credentials.roleSeedFile('client'),
      })
    : nc;
  // Each service process connects as its role's user (least privilege).
  const roleSeed = (role: NatsRole): Record<string, string> =>
    credentials ? { NATS_NKEY_SEED_FILE: credentials.roleSeedFile(role) } : {};
  const services: Service[] = [];
  // Hosts behind ACA bridges: spread over the bindings, among the hosts given ports.
  const acaHosts = pickAcaHosts(expanded.hosts, expanded.usedHosts, o.acaHosts ?? 0);
  // Their test ACAs in a process of their own (as on other machines): host → address.
  const acaProcess =
    acaHosts.length > 0
      ? await forkTestAcas(acaHosts.length, entryOf('services/aca-bridge/testAcaProcess.ts'), {
          longLived: o.acaLongLived === true,
        })
      : undefined;
  const acas = new Map<string, string>(
    acaHosts.map((h, i) => [h.hostId, acaProcess!.addresses[i]!]),
  );
  const procs: ManagedProcess[] = []; // every service process, ready or not
  const spawned = (proc: ManagedProcess): void => void procs.push(proc);
  let stopping = false;
  const stop = async (): Promise<void> => {
    stopping = true;
    await Promise.all(procs.map((p) => p.stop()));
    await acaProcess?.stop();
    await nc.close().catch(() => undefined);
    if (client !== nc) await client.close().catch(() => undefined);
  };
  o.started?.(stop);
  try {
    if (credentials) {
      await authorizeNatsHosts(env.NATS_URL!, credentials.dir, expanded.hosts);
      out(`NATS users: ${expanded.hosts.length} hosts, each allowed only its own subjects`);
    }
    const loaded = await loadTopology(nc, topologyFile, { prune: true });
    out(`topology loaded: ${loaded.hosts} hosts (${loaded.added} new, ${loaded.pruned} pruned)`);

    const started = Date.now();
    const starts: Array<Promise<Service>> = [];
    for (let i = 1; i <= o.controllers; i++)
      starts.push(
        spawnService(
          `controller-${i}`,
          'services/controller/main.ts',
          o.dir,
          { ...env, ALCOR_INSTANCE_ID: `controller-${i}`, ...roleSeed('controller') },
          o.logLevel,
          { spawned },
        ),
      );
    for (let i = 1; i <= o.southbounds; i++)
      starts.push(
        spawnService(
          `southbound-${i}`,
          'services/southbound/main.ts',
          o.dir,
          {
            ...env,
            ALCOR_INSTANCE_ID: `southbound-${i}`,
            ...roleSeed('southbound'),
            ...o.servers.kafkaRoleEnv('southbound'),
          },
          o.logLevel,
          { spawned },
        ),
      );
    services.push(...(await Promise.all(starts)));
    // The fleet resyncs at start: its hosts' VPC owners must be up first.
    const fleetId = `demo${Date.now().toString(36)}`;
    services.push(
      ...(await Promise.all(
        Array.from({ length: o.ncaShards }, (_, shard) =>
          spawnService(
            o.ncaShards === 1 ? 'nca' : `nca-${shard + 1}`,
            'services/nca/main.ts',
            o.dir,
            {
              ...env,
              ALCOR_FLEET_ID: fleetId,
              ALCOR_NCA_SHARD: `${shard + 1}/${o.ncaShards}`,
              ...(acas.size > 0
                ? {
                    ALCOR_NCA_HOSTS: expanded.hosts
                      .filter((h) => !acas.has(h.hostId))
                      .map((h) => h.hostId)
                      .join(','),
                  }
                : {}),
              // Each agent as its own host's user; the process has no user of its own.
              ...(credentials
                ? { ALCOR_NCA_CREDENTIALS: credentials.hostsDir, NATS_NKEY_SEED_FILE: '' }
                : {}),
              ...o.servers.kafkaRoleEnv('nca'),
            },
            o.logLevel,
            { spawned },
          ),
        ),
      )),
    );
    if (acas.size > 0)
      services.push(
        await spawnService(
          'aca-bridge',
          'services/aca-bridge/main.ts',
          o.dir,
          {
            ...env,
            ALCOR_FLEET_ID: `${fleetId}-aca`,
            ALCOR_NCA_HOSTS: [...acas.keys()].join(','),
            ALCOR_ACA_ADDRESSES: [...acas].map(([h, a]) => `${h}=${a}`).join(','),
            // Each host as its own user; the process reads the topology as the operator.
            ...(credentials
              ? { ALCOR_NCA_CREDENTIALS: credentials.hostsDir, ...roleSeed('operator') }
              : {}),
            ...o.servers.kafkaRoleEnv('nca'),
          },
          o.logLevel,
          { spawned },
        ),
      );
    await waitReady(services, 120_000);
    out(
      `services ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${services.map((s) => s.name).join(', ')} (logs in ${o.dir})`,
    );

    if (acas.size > 0)
      out(
        `ACA bridges: ${acas.size} hosts (${[...new Set(acaHosts.map(bindingLabel))].join(', ')}) push to test ACAs over gRPC`,
      );
    const summary = await applyAndMeasure(o, nc, client, expanded, services, acaProcess, acas);
    return { services, summary, stop };
  } catch (err) {
    // (Stopped on purpose, an interrupt: no service "exited".)
    for (const s of stopping ? [] : services)
      if (!s.proc.running) log.error({ service: s.name, tail: s.proc.logTail() }, 'service exited');
    await stop();
    throw err;
  }
}

async function applyAndMeasure(
  o: DemoOptions,
  nc: NatsConnection,
  client: NatsConnection,
  expanded: ReturnType<typeof expand>,
  services: Service[],
  acaProcess: TestAcaProcess | undefined,
  acas: ReadonlyMap<string, string>,
): Promise<DemoSummary> {
  const { out } = o;
  const hostBinding = new Map<string, string>(
    expanded.hosts.map((h: HostRecord) => [
      h.hostId,
      `${acas.has(h.hostId) ? 'aca/' : ''}${bindingLabel(h)}`,
    ]),
  );
  const intents = expanded.vpcs.flatMap((v) => v.intents);
  // Counted per intent of this run (progress.ts): a repeated or early status cannot
  // count an intent twice or lift a count above its total.
  const tally = new IntentTally(intents.map((i) => i.id));
  const total = tally.total;
  const sentAt = new Map<string, number>(); // intentId → request time
  const revisionOf = new Map<string, string>(); // `${vpc}:${rev}` → intentId
  const programmedMs: number[] = [];
  const ackMs = new Map<string, number[]>(); // binding → ms
  const acked = new Set<string>(); // `${vpc}:${rev}:${host}`
  const acaQueue: number[] = [];
  const acaRoundtrip: number[] = [];
  const reached = new Set<string>(); // hosts given ports by the workload that acked
  let lastDecided = Date.now();
  const acceptedMs: number[] = [];

  const statusSub = nc.subscribe(subjects.statusAll, {
    callback: (err, msg) => {
      if (err) return;
      let body: unknown;
      try {
        body = msg.json();
      } catch {
        return; // not JSON: not a status
      }
      const s = StatusSchema.safeParse(body);
      if (!s.success) return;
      const st = s.data;
      const sent = sentAt.get(st.intentId);
      if (sent === undefined) return;
      const change = tally.record(st);
      if (st.outcome === 'accepted' || st.outcome === 'programmed' || st.outcome === 'incomplete')
        if (!revisionOf.has(`${st.vpcId}:${st.revision}`))
          revisionOf.set(`${st.vpcId}:${st.revision}`, st.intentId);
      if (change.decided) lastDecided = Date.now();
      // (A decision inferred from a final status has no time of its own.)
      if (change.decided && (st.outcome === 'accepted' || st.outcome === 'rejected'))
        acceptedMs.push(Date.now() - sent);
      if (change.programmed) programmedMs.push(Date.now() - sent);
    },
  });
  const ackSub = nc.subscribe(subjects.acksAll, {
    callback: (err, msg) => {
      if (err) return;
      let ack: GoalStateAck;
      try {
        ack = msg.json<GoalStateAck>();
      } catch {
        return;
      }
      if (expanded.usedHosts.has(ack.hostId)) reached.add(ack.hostId);
      const t = ack.timings;
      if (t?.aca_roundtrip !== undefined) {
        acaQueue.push(t.aca_queue ?? 0);
        acaRoundtrip.push(t.aca_roundtrip);
      }
      const intentId = revisionOf.get(`${ack.vpcId}:${ack.revision}`);
      if (!intentId || ack.status !== 'applied') return;
      const key = `${ack.vpcId}:${ack.revision}:${ack.hostId}`;
      if (acked.has(key)) return;
      acked.add(key);
      const binding = hostBinding.get(ack.hostId) ?? 'unknown';
      const list = ackMs.get(binding) ?? [];
      list.push(Date.now() - sentAt.get(intentId)!);
      ackMs.set(binding, list);
    },
  });
  await nc.flush();

  // Progress: a line redrawn on a terminal (fitted to its width), a plain line every 2 s otherwise.
  const began = Date.now();
  const line = (columns: number): string =>
    progressLine(
      {
        decided: tally.decided,
        total,
        perSecond: tally.decided / Math.max((Date.now() - began) / 1000, 0.001),
        programmed: tally.programmed,
        accepted: tally.accepted,
        hostsReached: reached.size,
        hostsUsed: expanded.hostsUsed,
      },
      columns,
    );
  const { progress } = o;
  const tick = (): void =>
    progress ? progress.redraw(line(progress.columns())) : out(line(Infinity));
  const ticker = setInterval(tick, progress ? 250 : 2000);

  const sendLag: number[] = [];
  const cpuBefore = cpuSnapshot('demo (client)');
  const elu = performance.eventLoopUtilization();
  const clientCpu = process.cpuUsage();
  try {
    // Published to the VPC's intent subject (DESIGN §4), in order per VPC on one
    // connection; decisions and `programmed` come back on STATUS.
    await offerOpenLoop(
      o.rate,
      sequencesBy(intents, (i) => i.vpcId),
      (intent, arrival) => {
        const sent = performance.now();
        sendLag.push(sent - arrival);
        // Latencies count from the arrival (a late send is the client's, and shown).
        sentAt.set(intent.id, Date.now() - (sent - arrival));
        client.publish(subjects.intent(intent.vpcId), encoder.encode(JSON.stringify(intent)));
      },
    );
    const decideBy = Date.now() + o.settleMs;
    while (tally.decided < total && Date.now() < decideBy)
      await new Promise((r) => setTimeout(r, 50));
    tally.closeUndecided('no_decision');
    const applySeconds = (lastDecided - began) / 1000;
    // Every accepted intent ends programmed or incomplete (the controllers' deadline).
    const deadline = Date.now() + o.settleMs;
    while (tally.programmed + tally.incomplete < tally.accepted && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    const spent = cpuSince(cpuBefore, cpuSnapshot('demo (client)'));
    const clientUse = process.cpuUsage(clientCpu);
    const clientSeconds = (clientUse.user + clientUse.system) / 1e6;
    const wall = (Date.now() - began) / 1000;
    const loop = performance.eventLoopUtilization(elu);
    clearInterval(ticker);
    tick();
    out('');

    const texts = await Promise.all(
      services.map(async (s) => ({
        name: s.name,
        text: await (await fetch(`${s.opsUrl}/metrics`)).text(),
      })),
    );
    const ncaText = texts
      .filter((t) => t.name.startsWith('nca') || t.name === 'aca-bridge')
      .map((t) => t.text)
      .join('\n');
    const stages = [...stageQuantiles(texts.map((t) => t.text))].map(([stage, q]) => ({
      stage,
      ...q,
    }));
    const delivered = samplesBy(ncaText, 'alcor_nca_goal_states_delivered_total', 'binding');
    const needed = samplesBy(ncaText, 'alcor_nca_goal_states_needed_total', 'binding');
    const duplicates = samplesBy(ncaText, 'alcor_nca_goal_states_duplicates_total', 'binding');
    const misrouted = samplesBy(ncaText, 'alcor_nca_goal_states_misrouted_total', 'binding');
    const hostsBy = samplesBy(ncaText, 'alcor_nca_hosts', 'binding');
    const bindings: BindingSummary[] = [...hostsBy.keys()].sort().map((binding) => {
      const ms = ackMs.get(binding) ?? [];
      return {
        binding,
        hosts: hostsBy.get(binding) ?? 0,
        acks: ms.length,
        p50Ms: percentile(ms, 50),
        p99Ms: percentile(ms, 99),
        delivered: delivered.get(binding) ?? 0,
        needed: needed.get(binding) ?? 0,
        duplicates: duplicates.get(binding) ?? 0,
        misrouted: misrouted.get(binding) ?? 0,
      };
    });

    const oracle = await check(nc, {});
    const aca =
      acas.size > 0
        ? {
            ...(await acaReport(nc, expanded.hosts, acaProcess!, acas)),
            queueP50Ms: percentile(acaQueue, 50),
            queueP99Ms: percentile(acaQueue, 99),
            roundtripP50Ms: percentile(acaRoundtrip, 50),
            roundtripP99Ms: percentile(acaRoundtrip, 99),
          }
        : undefined;
    const place = await placementReport(nc, false);
    const table = await (await new Kvm(nc).open(kvBuckets.placement)).get(southboundKeys.table);
    const sb = table?.length ? decodeSouthboundTable(table.value) : undefined;
    const southbound = new Map<string, { partitions: number; hosts: number }>();
    if (sb?.ok) {
      for (const [partition, owner] of Object.entries(sb.value.owners)) {
        const entry = southbound.get(owner) ?? { partitions: 0, hosts: 0 };
        entry.partitions += 1;
        entry.hosts += sb.value.weights[partition] ?? 0;
        southbound.set(owner, entry);
      }
    }

    const planned = expanded.mistakes;
    const otherwise = planned
      .filter((m) => tally.outcomeOf(m.intentId) !== `rejected:${m.expect}`)
      .map(
        (m) =>
          `${m.intentId}: expected ${m.expect}, got ${tally.outcomeOf(m.intentId) ?? 'nothing'}`,
      );
    const rejectedBy = tally.rejectedBy();
    const rejected = tally.decided - tally.accepted;
    const { accepted, programmed, incomplete } = tally;
    const notProgrammed = accepted - programmed;
    return {
      intents: total,
      accepted,
      rejected,
      rejectedBy,
      mistakes: {
        planned: planned.length,
        refusedAsExpected: planned.length - otherwise.length,
        otherwise,
      },
      programmed,
      incomplete,
      notProgrammed,
      statuses: { repeats: tally.repeats, finalBeforeDecision: tally.finalBeforeDecision },
      applySeconds,
      intentsPerSecond: total / applySeconds,
      programmedP50Ms: percentile(programmedMs, 50),
      programmedP99Ms: percentile(programmedMs, 99),
      acceptedP50Ms: percentile(acceptedMs, 50),
      acceptedP99Ms: percentile(acceptedMs, 99),
      offeredPerSecond: o.rate === 'max' ? undefined : o.rate,
      client: {
        sendLagP99Ms: percentile(sendLag, 99),
        eventLoopUtilization: loop.utilization,
        cpuPercent: (100 * clientSeconds) / wall,
      },
      stages,
      cpu: [...spent]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([role, seconds]) => ({ role, seconds, msPerIntent: (1000 * seconds) / total })),
      bindings,
      hostsReached: reached.size,
      hostsUsed: expanded.hostsUsed,
      oracle,
      ...(aca ? { aca } : {}),
      placement: {
        controllers: place.members.map((m) => ({
          id: m.id,
          buckets: m.buckets,
          loadOverFair: m.loadOverFair,
        })),
        controllerMaxOverAvg: place.maxOverAvg,
        southbound: [...southbound]
          .map(([id, e]) => ({ id, ...e }))
          .sort((a, b) => a.id.localeCompare(b.id)),
        southboundMaxOverFair: sb?.ok ? sb.value.maxOverFair : NaN,
      },
      ok:
        oracle.clean &&
        (aca === undefined || aca.converged === aca.hosts) &&
        notProgrammed === 0 &&
        otherwise.length === 0 &&
        rejected === planned.length,
    };
  } finally {
    clearInterval(ticker);
    statusSub.unsubscribe();
    ackSub.unsubscribe();
  }
}

/** `n` hosts for ACA bridges: round robin over the bindings, hosts given ports first. */
export function pickAcaHosts(
  hosts: readonly HostRecord[],
  used: ReadonlySet<string>,
  n: number,
): HostRecord[] {
  const byBinding = new Map<string, HostRecord[]>();
  const ordered = [...hosts].sort(
    (a, b) => Number(used.has(b.hostId)) - Number(used.has(a.hostId)),
  );
  for (const h of ordered) {
    const list = byBinding.get(bindingLabel(h)) ?? [];
    list.push(h);
    byBinding.set(bindingLabel(h), list);
  }
  const lists = [...byBinding.values()];
  const out: HostRecord[] = [];
  for (let i = 0; out.length < Math.min(n, hosts.length); i++)
    for (const list of lists) if (list[i] && out.length < n) out.push(list[i]!);
  return out;
}

/** The test ACAs against the log (their programmed resources, in Alcor's schema). */
async function acaReport(
  nc: NatsConnection,
  hosts: readonly HostRecord[],
  acaProcess: TestAcaProcess,
  acas: ReadonlyMap<string, string>,
): Promise<
  Omit<
    NonNullable<DemoSummary['aca']>,
    'queueP50Ms' | 'queueP99Ms' | 'roundtripP50Ms' | 'roundtripP99Ms'
  >
> {
  const states = await foldEventLog(nc);
  const report = await acaProcess.report();
  const ips = new Map(hosts.map((h) => [h.hostId, h.underlayIp]));
  const byAddress = new Map(acaProcess.addresses.map((a, i) => [a, i]));
  const diverged: string[] = [];
  for (const h of hosts) {
    const at = byAddress.get(acas.get(h.hostId) ?? '');
    if (at === undefined) continue;
    const model = new Map(report.models[at]);
    const d = acaDivergence(states, h, { model }, (id) => ips.get(id));
    if (d)
      diverged.push(
        `${d.hostId}: ${d.missing.length} missing, ${d.extra.length} extra, ${d.different.length} different (e.g. ${[...d.missing, ...d.extra, ...d.different][0]})`,
      );
  }
  const sum = (k: keyof (typeof report.stats)[number]): number =>
    report.stats.reduce((n, s) => n + s[k], 0);
  return {
    hosts: acas.size,
    converged: acas.size - diverged.length,
    diverged,
    messages: sum('messages'),
    fullMessages: sum('fullMessages'),
    resources: sum('states'),
    refused: sum('refused'),
    outOfOrder: sum('outOfOrder'),
  };
}

const ms = (n: number): string => (Number.isNaN(n) ? '-' : `${Math.round(n)} ms`);

export function renderSummary(s: DemoSummary): string[] {
  const lines = [
    '── summary ──',
    `intents: ${s.intents} applied in ${s.applySeconds.toFixed(1)} s (${Math.round(s.intentsPerSecond)}/s${s.offeredPerSecond === undefined ? ', all offered at once' : `, ${s.offeredPerSecond}/s offered`}): ${s.accepted} accepted, ${s.rejected} rejected`,
    `  rejected by reason: ${
      Object.entries(s.rejectedBy)
        .map(([c, n]) => `${c} ${n}`)
        .join(', ') || 'none'
    }`,
    `  deliberate mistakes refused with the expected reason: ${s.mistakes.refusedAsExpected}/${s.mistakes.planned}${s.mistakes.otherwise.length ? ` — NOT: ${s.mistakes.otherwise.slice(0, 3).join('; ')}` : ''}`,
    `  intent → decided (its status) p50 ${ms(s.acceptedP50Ms)}, p99 ${ms(s.acceptedP99Ms)}`,
    `programmed: ${s.programmed}/${s.accepted} accepted intents (${s.incomplete} incomplete, ${s.notProgrammed} not programmed); intent → programmed p50 ${ms(s.programmedP50Ms)}, p99 ${ms(s.programmedP99Ms)}`,
    ...(s.statuses.repeats + s.statuses.finalBeforeDecision > 0
      ? [
          `  statuses: ${s.statuses.repeats} repeated (each intent counted once), ${s.statuses.finalBeforeDecision} final before their intent's decision`,
        ]
      : []),
    `hosts reached: ${s.hostsReached} (${s.hostsUsed} given ports by the workload)`,
    'per binding (intent request → host applied; goal-state messages at the agents):',
  ];
  const labelWidth = Math.max(10, ...s.bindings.map((b) => b.binding.length));
  for (const b of s.bindings) {
    lines.push(
      `  ${b.binding.padEnd(labelWidth)} ${String(b.hosts).padStart(5)} hosts  p50 ${ms(b.p50Ms).padStart(7)}  p99 ${ms(b.p99Ms).padStart(7)}  (${b.acks} acks)  delivered ${b.delivered} / needed ${b.needed}${b.duplicates ? `  duplicates ${b.duplicates}` : ''}${b.misrouted ? `  misrouted ${b.misrouted}` : ''}`,
    );
  }
  const secs = (x: number): string =>
    x === Infinity ? '>60 s' : x < 1 ? `≤${Math.round(x * 1000)} ms` : `≤${x} s`;
  const order = ['decide', 'publish', 'relay', 'deliver', 'apply', 'ack', 'programmed'];
  const stages = [...s.stages].sort((a, b) => order.indexOf(a.stage) - order.indexOf(b.stage));
  lines.push(
    `stages (p50 / p99, histogram buckets): ${stages.map((t) => `${t.stage} ${secs(t.p50)} / ${secs(t.p99)}`).join(', ')}`,
  );
  const cpuTotal = s.cpu.reduce((n, c) => n + c.msPerIntent, 0);
  lines.push(
    `CPU per intent: ${cpuTotal.toFixed(2)} ms over all processes — ${s.cpu.map((c) => `${c.role} ${c.msPerIntent.toFixed(2)}`).join(', ')}`,
    `  the client: send lag p99 ${ms(s.client.sendLagP99Ms)}, event loop ${(100 * s.client.eventLoopUtilization).toFixed(0)} % busy, CPU ${s.client.cpuPercent.toFixed(0)} % of a core${s.client.eventLoopUtilization > 0.8 || s.client.sendLagP99Ms > 50 ? ' — SATURATED: the latencies include its own delay' : ''}`,
  );
  const o = s.oracle;
  lines.push(
    `oracle: ${o.clean ? 'CLEAN' : 'NOT CLEAN'} — ${o.converged}/${o.hosts} hosts hold exactly what EVENTS says (${o.vpcs} VPCs folded)${o.diverged.length ? `; ${o.diverged.length} divergence(s), e.g. ${o.diverged[0]!.hostId}/${o.diverged[0]!.vpcId}` : ''}${o.silent.length ? `; ${o.silent.length} agent(s) silent` : ''}`,
  );
  const a = s.aca;
  if (a)
    lines.push(
      `ACAs: ${a.converged === a.hosts ? 'CLEAN' : 'NOT CLEAN'} — ${a.converged}/${a.hosts} test ACAs hold exactly what EVENTS says in Alcor's schema; ${a.messages} GoalStateV2 (${a.fullMessages} FULL), ${a.resources} resource states, ${a.refused} refused, ${a.outOfOrder} out of order; at the bridges: queued p50 ${ms(a.queueP50Ms)} / p99 ${ms(a.queueP99Ms)}, push round trip p50 ${ms(a.roundtripP50Ms)} / p99 ${ms(a.roundtripP99Ms)}${a.diverged.length ? `; diverged: ${a.diverged.slice(0, 3).join('; ')}` : ''}`,
    );
  const p = s.placement;
  lines.push(
    `placement: controllers ${p.controllers.map((c) => `${c.id} ${c.buckets} buckets (load/fair ${c.loadOverFair.toFixed(2)})`).join(', ')}; max/avg ${p.controllerMaxOverAvg.toFixed(2)}`,
    `           southbound ${p.southbound.map((m) => `${m.id} ${m.partitions} partitions / ${m.hosts} Kafka hosts`).join(', ') || 'no table'}; max/fair ${Number.isNaN(p.southboundMaxOverFair) ? '-' : p.southboundMaxOverFair.toFixed(2)}`,
    s.ok
      ? 'RESULT: OK — every intent decided as expected, every accepted one programmed, oracle clean'
      : 'RESULT: NOT OK',
  );
  return lines;
}
