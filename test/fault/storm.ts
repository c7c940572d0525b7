/**
 * A reconnect storm: `npm run fault:storm -- [options]`. A fleet of JetStream-bound
 * agents (1,000 by default, each its own NATS connection and user) loses NATS at
 * once — its connections reset by the kernel (test/support/netFault.ts) — while
 * every VPC it holds changes; then NATS comes back and every agent asks for full
 * states at the same moment. Meanwhile another tenant, on a fleet that kept its
 * link, applies intents one at a time and waits for them to be programmed.
 *
 * Measured, for each `--resync-concurrency` (the controllers' ALCOR_RESYNC_CONCURRENCY;
 * 0 answers every resync as it comes): the time from the heal until the oracle is
 * clean for every host, the other tenant's intent → programmed before and during
 * the storm, what the controllers answered (full states sent, requests deferred),
 * and the CPU of the controllers, the storm's fleet and this harness. Writes
 * docs/bench/storm.json and a section of docs/reliability.md.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { NatsConnection } from '@nats-io/transport-node';
import { createLogger, onShutdown } from '../../infra/index.js';
import { check } from '../../services/cli/check.js';
import { fmt, machine, pct, toolArgs, wholeArg, writeReport } from '../bench/report.js';
import { applyProgrammed } from '../support/controller.js';
import { subjects } from '../../shared/index.js';
import { fleet, vpcWithPorts } from '../support/workload.js';
import { counterByService, counterGrowth, startFaultSystem, type FaultSystem } from './system.js';

const USAGE = `Usage: npm run fault:storm -- [options]
  --hosts <n>               agents that lose NATS at once (default 1000)
  --vpcs <n>                VPCs over them (default 100)
  --ports <n>               ports per VPC, each on another host (default 20)
  --resync-concurrency <a,b>  the controllers' ALCOR_RESYNC_CONCURRENCY, one run each
                            (default 8,0: paced, then every resync answered at once)
  --cut-ms <n>              how long NATS is gone (default 5000)
  --reconnect-spread-ms <n> the storm fleet's reconnects spread over this long
                            (ALCOR_NCA_RECONNECT_SPREAD_MS; default the fleet's,
                            4 ms a host)
  --service-log-level <l>   the services' log level, in their logs under the run's
                            folder (default warn)
  --connections <a,b>       per-host: each agent its own connection and NATS user;
                            shared: the agents share a few (the simulator's way:
                            every agent on a connection asks at the same instant);
                            one run each (default per-host,shared)
  --no-report               print only; do not write docs/
`;

const args = toolArgs('fault:storm', USAGE, {
  hosts: { type: 'string', default: '1000' },
  vpcs: { type: 'string', default: '100' },
  ports: { type: 'string', default: '20' },
  'resync-concurrency': { type: 'string', default: '8,0' },
  'cut-ms': { type: 'string', default: '5000' },
  'reconnect-spread-ms': { type: 'string' },
  'service-log-level': { type: 'string', default: 'warn' },
  connections: { type: 'string', default: 'per-host,shared' },
  'no-report': { type: 'boolean', default: false },
});
const hostCount = wholeArg('fault:storm', USAGE, 'hosts', args.hosts, 20_000);
const vpcCount = wholeArg('fault:storm', USAGE, 'vpcs', args.vpcs, 10_000);
const portsPerVpc = wholeArg('fault:storm', USAGE, 'ports', args.ports, 200);
const cutMs = wholeArg('fault:storm', USAGE, 'cut-ms', args['cut-ms'], 600_000);
const spreadMs =
  args['reconnect-spread-ms'] === undefined
    ? undefined
    : wholeArg('fault:storm', USAGE, 'reconnect-spread-ms', args['reconnect-spread-ms'], 600_000);
const modes = args.connections.split(',').map((m) => {
  if (m !== 'per-host' && m !== 'shared') throw new Error(`--connections ${m}: per-host or shared`);
  return m;
});
const concurrencies = args['resync-concurrency'].split(',').map((s) => {
  if (!/^\d+$/.test(s.trim())) throw new Error(`--resync-concurrency ${s}: whole numbers`);
  return Number(s);
});
const log = createLogger({ name: 'storm', level: 'warn' });
const encoder = new TextEncoder();

/** Clusters of 100 storm hosts; the tenant's 20 hosts in two clusters of their own. */
const STORM_PER_CLUSTER = 100;
const TENANT_HOSTS = 20;
/** How long the other tenant is measured before the storm. */
const BASELINE_MS = 15_000;
/** The oracle must be clean this long after the heal, or the run failed. */
const CONVERGE_BOUND_MS = 180_000;

interface StormRun {
  resyncConcurrency: number;
  connections: 'per-host' | 'shared';
  hosts: number;
  vpcs: number;
  /** Heal → the oracle clean for every host (the first clean check's start). */
  reconvergeMs: number;
  converged: boolean;
  divergentHosts: number;
  /** The other tenant's intent → programmed (ms), before the storm and from the cut until reconverged. */
  tenantBefore: { n: number; p50: number; p99: number; max: number };
  tenantDuring: { n: number; p50: number; p99: number; max: number };
  tenantFailed: number;
  resyncFulls: number;
  resyncDeferred: number;
  agentResyncs: number;
  agentDeferrals: number;
  /** CPU seconds per wall second over the storm window (1 = one core). */
  cpu: { controllers: number; stormFleet: number; harness: number };
  harnessLoopP99Ms: number;
}

const cpuOf = (system: FaultSystem, names: string[]) =>
  counterByService(
    { services: system.services.filter((s) => names.includes(s.name)) },
    'process_cpu_seconds_total',
  );

/** The services' counters a run reports, by the name it reports them under. */
const COUNTERS = {
  resyncFulls: 'alcor_controller_resync_fulls_total',
  resyncDeferred: 'alcor_controller_resync_deferred_total',
  agentResyncs: 'alcor_nca_resyncs_total',
  agentDeferrals: 'alcor_nca_resyncs_deferred_total',
} as const;
type Counted = Record<keyof typeof COUNTERS, Map<string, number>>;

async function readCounters(system: FaultSystem): Promise<Counted> {
  const out: Partial<Counted> = {};
  for (const [key, name] of Object.entries(COUNTERS) as Array<[keyof Counted, string]>)
    out[key] = await counterByService(system, name);
  return out as Counted;
}

/** What each counter grew by between two readings, summed over the services. */
function counterGrowths(before: Counted, after: Counted): Record<keyof Counted, number> {
  const out: Partial<Record<keyof Counted, number>> = {};
  for (const key of Object.keys(COUNTERS) as Array<keyof Counted>)
    out[key] = counterGrowth(before[key], after[key]);
  return out as Record<keyof Counted, number>;
}

const stats = (xs: number[]) => ({
  n: xs.length,
  p50: pct(xs, 50),
  p99: pct(xs, 99),
  max: xs.length ? Math.max(...xs) : NaN,
});

/** One intent at a time on the tenant's VPC, each waited for until programmed. */
class TenantProbe {
  readonly samples: Array<{ at: number; ms: number }> = [];
  failed = 0;
  private running = false;
  private done: Promise<void> = Promise.resolve();
  private k = 0;

  constructor(
    private readonly client: NatsConnection,
    private readonly vpcId: string,
    private readonly hostIds: string[],
  ) {}

  start(): void {
    this.running = true;
    this.done = (async () => {
      while (this.running) {
        const k = this.k++;
        const began = Date.now();
        // A port made, then deleted: the tenant's subnet never fills.
        const portId = `probe${k >> 1}`;
        const intent =
          k % 2 === 0
            ? {
                kind: 'port.create',
                spec: {
                  portId,
                  subnetId: 's1',
                  hostId: this.hostIds[(k >> 1) % this.hostIds.length],
                },
              }
            : { kind: 'port.delete', spec: { portId } };
        try {
          const [item] = await applyProgrammed<
            Array<{ outcome: string; programmed?: { outcome: string } }>
          >(this.client, [{ id: `${this.vpcId}-probe${k}`, vpcId: this.vpcId, ...intent }], 60_000);
          if (item?.outcome === 'accepted' && item.programmed?.outcome === 'programmed')
            this.samples.push({ at: began, ms: Date.now() - began });
          else this.failed += 1;
        } catch {
          this.failed += 1;
        }
        await sleep(100);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  between(from: number, to: number): number[] {
    return this.samples.filter((s) => s.at >= from && s.at < to).map((s) => s.ms);
  }
}

/** Applies one intent through the sync API; its outcome once decided. */
async function applyDecided(client: NatsConnection, intent: object): Promise<string> {
  const reply = await client.request(
    subjects.applyIntents,
    encoder.encode(JSON.stringify([intent])),
    {
      timeout: 30_000,
    },
  );
  return reply.json<Array<{ outcome: string }>>()[0]?.outcome ?? 'none';
}

/** Applies every VPC through the sync API, a few at a time, each waited for until decided. */
async function seed(client: NatsConnection, vpcs: Array<{ vpcId: string; hostIds: string[] }>) {
  const queue = [...vpcs];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let v = queue.shift(); v; v = queue.shift()) {
        const items = await applyProgrammed<Array<{ outcome: string }>>(
          client,
          vpcWithPorts(v.vpcId, v.hostIds),
          120_000,
        );
        const refused = items.find((i) => i.outcome !== 'accepted');
        if (refused) throw new Error(`seeding ${v.vpcId}: ${JSON.stringify(refused)}`);
      }
    }),
  );
}

async function stormRun(resyncConcurrency: number, shared: boolean): Promise<StormRun> {
  const dir = mkdtempSync(join(tmpdir(), 'alcor-storm-'));
  const stormHosts = fleet(Math.ceil(hostCount / STORM_PER_CLUSTER), STORM_PER_CLUSTER, 's').slice(
    0,
    hostCount,
  );
  // Their own underlay range: the storm's clusters start at 172.16.0.0 too.
  const tenantHosts = fleet(2, TENANT_HOSTS / 2, 't', { regionPrefix: 'tr' }).map((h) => ({
    ...h,
    underlayIp: h.underlayIp.replace(/^172\.\d+\./, '172.31.'),
  }));
  const system = await startFaultSystem({
    dir,
    log,
    natsNodes: 1,
    controllers: 2,
    southbounds: 1,
    links: false,
    hosts: [...stormHosts, ...tenantHosts],
    fleetHosts: [stormHosts.map((h) => h.hostId), tenantHosts.map((h) => h.hostId)],
    heartbeatTtlMs: 5000,
    sharedFleetConnections: shared,
    logLevel: args['service-log-level'],
    env: {
      ALCOR_RESYNC_CONCURRENCY: String(resyncConcurrency),
      ...(spreadMs === undefined ? {} : { ALCOR_NCA_RECONNECT_SPREAD_MS: String(spreadMs) }),
    },
  });
  stopping = system;
  try {
    if (system.net.available !== true)
      throw new Error(`a reconnect storm needs real network faults: ${system.net.available}`);
    const stormFleet = system.of('nca')[0]!;
    // Every storm host holds at least one VPC: VPC v's ports on hosts v·ports, v·ports+1, ….
    const vpcs = Array.from({ length: vpcCount }, (_, v) => ({
      vpcId: `storm-v${v}`,
      hostIds: Array.from(
        { length: portsPerVpc },
        (_, i) => stormHosts[(v * portsPerVpc + i) % stormHosts.length]!.hostId,
      ),
    }));
    const began = Date.now();
    await seed(system.client, vpcs);
    const tenant = { vpcId: 'tenant-v0', hostIds: tenantHosts.map((h) => h.hostId) };
    await seed(system.client, [tenant]);
    console.log(`  seeded ${vpcCount} VPCs in ${fmt((Date.now() - began) / 1000, 1)} s`);
    const clean = await check(system.nc, {});
    if (!clean.clean) throw new Error(`not converged before the storm: ${clean.diverged.length}`);

    const probe = new TenantProbe(system.client, tenant.vpcId, tenant.hostIds);
    probe.start();
    await sleep(BASELINE_MS);

    const controllers = system.of('controller').map((c) => c.name);
    const counters0 = await readCounters(system);
    const cpu0 = {
      controllers: await cpuOf(system, controllers),
      stormFleet: await cpuOf(system, [stormFleet.name]),
      harness: process.cpuUsage(),
    };
    const loop = monitorEventLoopDelay({ resolution: 20 });
    loop.enable();

    // NATS goes away for every storm agent at once; meanwhile each VPC changes, so
    // only a resync brings the hosts back.
    const cutAt = Date.now();
    const cut = await system.net.cut({
      group: stormFleet.group!,
      to: stormFleet.natsPorts,
      mode: 'reset',
    });
    // Decided, not waited for: their hosts are away.
    const changes = await Promise.all(
      vpcs.map((v) =>
        applyDecided(system.client, {
          id: `${v.vpcId}-away`,
          kind: 'port.create',
          vpcId: v.vpcId,
          spec: { portId: 'away', subnetId: 's1', hostId: v.hostIds[0] },
        }),
      ),
    );
    const notAccepted = changes.filter((o) => o !== 'accepted').length;
    if (notAccepted > 0) throw new Error(`${notAccepted} changes during the cut not accepted`);
    await sleep(Math.max(0, cutMs - (Date.now() - cutAt)));
    const healAt = Date.now();
    await cut.heal();

    let report = await check(system.nc, {});
    let cleanAt = Date.now();
    while (!report.clean && Date.now() - healAt < CONVERGE_BOUND_MS) {
      await sleep(500);
      cleanAt = Date.now();
      report = await check(system.nc, {});
    }
    const endAt = Date.now();
    loop.disable();
    const wall = (endAt - cutAt) / 1000;
    const harnessCpu = process.cpuUsage(cpu0.harness);
    const run: StormRun = {
      resyncConcurrency,
      connections: shared ? 'shared' : 'per-host',
      hosts: stormHosts.length,
      vpcs: vpcCount,
      reconvergeMs: cleanAt - healAt,
      converged: report.clean,
      divergentHosts: new Set([...report.diverged.map((d) => d.hostId), ...report.silent]).size,
      tenantBefore: stats(probe.between(cutAt - BASELINE_MS, cutAt)),
      tenantDuring: stats(probe.between(cutAt, endAt)),
      tenantFailed: probe.failed,
      ...counterGrowths(counters0, await readCounters(system)),
      cpu: {
        controllers: counterGrowth(cpu0.controllers, await cpuOf(system, controllers)) / wall,
        stormFleet: counterGrowth(cpu0.stormFleet, await cpuOf(system, [stormFleet.name])) / wall,
        harness: (harnessCpu.user + harnessCpu.system) / 1e6 / wall,
      },
      harnessLoopP99Ms: loop.percentile(99) / 1e6,
    };
    await probe.stop();
    return run;
  } finally {
    stopping = undefined;
    await system.stop();
  }
}

let stopping: FaultSystem | undefined;
onShutdown(async () => {
  await stopping?.stop();
});

const ms = (n: number): string => (Number.isFinite(n) ? `${fmt(n, 0)} ms` : '—');
const runs: StormRun[] = [];
for (const [mode, c] of modes.flatMap((m) => concurrencies.map((c) => [m, c] as const))) {
  console.log(
    `── reconnect storm: ${hostCount} agents, ${mode} connections, ALCOR_RESYNC_CONCURRENCY=${c} ──`,
  );
  const r = await stormRun(c, mode === 'shared');
  runs.push(r);
  console.log(
    `  reconverged ${r.converged ? `in ${fmt(r.reconvergeMs / 1000, 1)} s` : `NOT (${r.divergentHosts} hosts)`}; ` +
      `tenant p99 ${ms(r.tenantBefore.p99)} before, ${ms(r.tenantDuring.p99)} during (max ${ms(r.tenantDuring.max)}); ` +
      `fulls ${r.resyncFulls}, deferred ${r.resyncDeferred}; cpu controllers ${fmt(r.cpu.controllers, 2)}, fleet ${fmt(r.cpu.stormFleet, 2)}, harness ${fmt(r.cpu.harness, 2)}`,
  );
}

const table = [
  '| connections | ALCOR_RESYNC_CONCURRENCY | agents | VPCs | reconverged after heal | tenant intent → programmed p50 / p99 / max, before | during the storm | tenant intents failed | full states sent | resyncs deferred (controller / agent rounds) | CPU cores: controllers / storm fleet / harness |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...runs.map(
    (r) =>
      `| ${r.connections} | ${r.resyncConcurrency === 0 ? '0 (unpaced)' : r.resyncConcurrency} | ${fmt(r.hosts)} | ${r.vpcs} | ${r.converged ? `${fmt(r.reconvergeMs / 1000, 1)} s` : `not in ${CONVERGE_BOUND_MS / 1000} s (${r.divergentHosts} hosts)`} | ${ms(r.tenantBefore.p50)} / ${ms(r.tenantBefore.p99)} / ${ms(r.tenantBefore.max)} | ${ms(r.tenantDuring.p50)} / ${ms(r.tenantDuring.p99)} / ${ms(r.tenantDuring.max)} | ${r.tenantFailed} | ${fmt(r.resyncFulls)} | ${fmt(r.resyncDeferred)} / ${fmt(r.agentDeferrals)} | ${fmt(r.cpu.controllers, 2)} / ${fmt(r.cpu.stormFleet, 2)} / ${fmt(r.cpu.harness, 2)} |`,
  ),
].join('\n');
const markdown = [
  `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()} (\`npm run fault:storm -- --hosts ${hostCount} --vpcs ${vpcCount} --ports ${portsPerVpc} --connections ${modes.join(',')} --resync-concurrency ${concurrencies.join(',')} --cut-ms ${cutMs}${spreadMs === undefined ? '' : ` --reconnect-spread-ms ${spreadMs}`}\`). The harness's event loop p99: ${runs.map((r) => ms(r.harnessLoopP99Ms)).join(', ')}.`,
  '',
  table,
].join('\n');
console.log(`\n${markdown}\n`);
if (!args['no-report']) {
  await writeReport('storm', { machine: machine(), runs }, markdown, { doc: 'reliability.md' });
  console.log('written: docs/bench/storm.json, docs/reliability.md');
}
process.exit(runs.every((r) => r.converged) ? 0 : 1);
