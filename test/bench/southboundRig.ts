/**
 * The rig of the southbound benchmarks: fresh nats-server, Redis and Kafka clusters
 * a and b; 500 hosts in 10 clusters over 2 regions, a third bound to each of Kafka
 * a, Kafka b and JetStream; one controller, one southbound module and the fleet
 * simulator, in this process or as their own processes. Also the status watch and
 * the burst phase. The raw chain, for comparison, is in rawChain.ts.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  DEFAULT_LAYOUT,
  NatsCredentials,
  type NatsRole,
  authorizeNatsHosts,
  metricSamples,
  connectNats,
  ensureLayout,
  createLogger,
  provisionServers,
  putHosts,
  serversFromEnv,
} from '../../infra/index.js';
import { StatusSchema, type HostRecord } from '../../shared/index.js';
import { start as startController } from '../../services/controller/index.js';
import { start as startSouthbound } from '../../services/southbound/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import { spawnService, waitReady } from '../../services/demo/run.js';
import { clientConnections } from '../support/controller.js';
import { fleet, publishScripts, vpcScript } from '../support/workload.js';
import { pct } from './report.js';

export const log = createLogger({ name: 'bench', level: 'silent', pretty: false });

export const bindingOf = (h: HostRecord): string =>
  h.binding.type === 'kafka' ? `kafka ${h.binding.cluster}` : 'jetstream';

export interface Rig {
  servers: ReturnType<typeof serversFromEnv>;
  nc: NatsConnection;
  hosts: HostRecord[];
  clients: NatsConnection[];
  /** Goal states delivered to the fleet's hosts so far, and their bytes. */
  fleetTotals: () => Promise<{ delivered: number; bytes: number }>;
  /** Each service's /metrics text (as processes; none in this process). */
  metricsTexts: () => Promise<string[]>;
  /** The services, when they run in this process. */
  inProcess?: { ncas: Fleet; southbound: Awaited<ReturnType<typeof startSouthbound>> };
  /** Stops the product (the servers stay for the raw chains). */
  stopProduct: () => Promise<void>;
  stop: () => Promise<void>;
}

/**
 * The servers and the hosts; the product (a controller, a southbound module, the
 * fleet) in this process, or with `processes` as the processes an operator runs
 * (each service's main, its logs in `dir`), so that the load's client is alone here.
 */
export async function startRig(
  o: {
    processes?: { dir: string };
    /** Hosts per topology cluster (10 clusters; default 50). */
    perCluster?: number;
    /** The southbound's Kafka hosts per partition (in-process product only). */
    kafkaHostsPerPartition?: number;
  } = {},
): Promise<Rig> {
  const provisioned = await provisionServers();
  // The bench's own clients use the servers' credentials (NATS seed, Kafka SASL).
  const env = provisioned.env();
  Object.assign(process.env, env);
  const servers = serversFromEnv();
  const nc = await connectNats(servers.natsUrl, { name: 'bench' });
  const bindings: HostRecord['binding'][] = [
    { type: 'kafka', cluster: 'a' },
    { type: 'kafka', cluster: 'b' },
    { type: 'jetstream' },
  ];
  const hosts = fleet(10, o.perCluster ?? 50, 'sb', {
    regions: 2,
    binding: (h) => bindings[h % 3]!,
  });
  await ensureLayout(nc, await jetstreamManager(nc), DEFAULT_LAYOUT);
  await putHosts(nc, hosts);
  const product = o.processes
    ? await productProcesses(provisioned, env, hosts, o.processes.dir)
    : await productInProcess(servers, hosts, o.kafkaHostsPerPartition);
  const clients = await clientConnections(servers.natsUrl, 4);
  let productUp = true;
  const stopProduct = async (): Promise<void> => {
    if (!productUp) return;
    productUp = false;
    await product.stop();
  };
  return {
    servers,
    nc,
    hosts,
    clients,
    fleetTotals: product.fleetTotals,
    metricsTexts: product.metricsTexts,
    ...(product.inProcess ? { inProcess: product.inProcess } : {}),
    stopProduct,
    stop: async () => {
      await stopProduct();
      await Promise.all(clients.map((c) => c.close()));
      await nc.close();
      await provisioned.stop();
    },
  };
}

interface Product {
  fleetTotals: Rig['fleetTotals'];
  metricsTexts: Rig['metricsTexts'];
  inProcess?: Rig['inProcess'];
  stop: () => Promise<void>;
}

async function productInProcess(
  servers: ReturnType<typeof serversFromEnv>,
  hosts: HostRecord[],
  kafkaHostsPerPartition?: number,
): Promise<Product> {
  const controller = await startController({
    instanceId: 'bench',
    natsUrl: servers.natsUrl,
    redisUrl: servers.redisUrl,
    buckets: Array.from({ length: 1024 }, (_, i) => i),
    programmedDeadlineMs: 300_000,
    log,
  });
  const southbound = await startSouthbound({
    instanceId: 'bench-sb',
    natsUrl: servers.natsUrl,
    redisUrl: servers.redisUrl,
    kafka: servers.kafka,
    ...(kafkaHostsPerPartition ? { kafkaHostsPerPartition } : {}),
    log,
  });
  const ncas = await startFleet({
    natsUrl: servers.natsUrl,
    kafka: servers.kafka,
    hosts,
    logger: log,
    fleetId: 'bench',
  });
  return {
    fleetTotals: () => Promise.resolve(ncas.totals()),
    metricsTexts: () => Promise.resolve([]),
    inProcess: { ncas, southbound },
    stop: async () => {
      await ncas.stop();
      await southbound.stop();
      await controller.stop();
    },
  };
}

/** The product as the demo runs it: a process per service, each as its role's NATS user. */
async function productProcesses(
  servers: Awaited<ReturnType<typeof provisionServers>>,
  env: Record<string, string>,
  hosts: HostRecord[],
  dir: string,
): Promise<Product> {
  const credentials = env.ALCOR_NATS_CREDENTIALS
    ? new NatsCredentials(env.ALCOR_NATS_CREDENTIALS)
    : undefined;
  if (credentials) await authorizeNatsHosts(env.NATS_URL!, credentials.dir, hosts);
  const roleSeed = (role: NatsRole): Record<string, string> =>
    credentials ? { NATS_NKEY_SEED_FILE: credentials.roleSeedFile(role) } : {};
  const services = await Promise.all([
    spawnService(
      'controller',
      'services/controller/main.ts',
      dir,
      {
        ...env,
        ALCOR_INSTANCE_ID: 'bench-controller',
        // Below the benches' settle bound: an intent a host never acks ends
        // `incomplete`, naming the host, before the bench gives up on it.
        ALCOR_PROGRAMMED_DEADLINE_MS: '60000',
        ...roleSeed('controller'),
      },
      'warn',
    ),
    spawnService(
      'southbound',
      'services/southbound/main.ts',
      dir,
      {
        ...env,
        ALCOR_INSTANCE_ID: 'bench-southbound',
        ...roleSeed('southbound'),
        ...servers.kafkaRoleEnv('southbound'),
      },
      'warn',
    ),
    spawnService(
      'nca',
      'services/nca/main.ts',
      dir,
      {
        ...env,
        ALCOR_FLEET_ID: 'bench',
        ...(credentials
          ? { ALCOR_NCA_CREDENTIALS: credentials.hostsDir, NATS_NKEY_SEED_FILE: '' }
          : {}),
        ...servers.kafkaRoleEnv('nca'),
      },
      'warn',
    ),
  ]);
  await waitReady(services, 180_000);
  const nca = services[2];
  return {
    fleetTotals: async () => {
      const text = await (await fetch(`${nca.opsUrl}/metrics`)).text();
      const sum = (name: string): number =>
        metricSamples(text, name).reduce((n, s) => n + s.value, 0);
      return {
        delivered: sum('alcor_nca_goal_states_delivered_total'),
        bytes: sum('alcor_nca_goal_states_bytes_total'),
      };
    },
    metricsTexts: () =>
      Promise.all(services.map(async (s) => (await fetch(`${s.opsUrl}/metrics`)).text())),
    stop: async () => {
      await Promise.all(services.map((s) => s.proc.stop()));
    },
  };
}

/** Intent → status times, from STATUS as the controller wrote it. */
export interface StatusWatch {
  /** Registers an intent and when it arrived (performance.now()); call before it is sent. */
  expect: (intentId: string, arrival?: number) => void;
  arrived: (intentId: string, at: number) => void;
  /** Resolves once every expected intent is decided and every accepted one programmed or incomplete. */
  settled: (timeoutMs: number) => Promise<boolean>;
  readonly decided: number;
  readonly accepted: number;
  readonly incomplete: number;
  /** Arrival → accepted (ms), per accepted intent. */
  readonly toAccepted: number[];
  /** Arrival → programmed (ms), per programmed intent. */
  readonly toProgrammed: number[];
  /** Accepted → programmed (ms): the southbound's share. */
  readonly delivery: number[];
  readonly lastProgrammedAt: number;
  readonly lastDecidedAt: number;
  /** `incomplete` statuses as they came (the first 5): they name the missing hosts. */
  readonly incompletes: unknown[];
  /** Accepted intents with no `programmed` or `incomplete` seen (at most `limit`). */
  unfinished: (limit: number) => string[];
  stop: () => void;
}

export function watchStatuses(nc: NatsConnection): StatusWatch {
  const arrivedAt = new Map<string, number>();
  const acceptedAt = new Map<string, number>();
  const toAccepted: number[] = [];
  const toProgrammed: number[] = [];
  const delivery: number[] = [];
  let decided = 0;
  let accepted = 0;
  let incomplete = 0;
  let lastProgrammedAt = 0;
  let lastDecidedAt = 0;
  const incompletes: unknown[] = [];
  const ended = new Set<string>();
  let wake: (() => void) | undefined;
  const sub = nc.subscribe('status.>', {
    callback: (_err, m) => {
      const parsed = StatusSchema.safeParse(m.json());
      if (!parsed.success) return;
      const s = parsed.data;
      const at = arrivedAt.get(s.intentId);
      if (at === undefined) return;
      const now = performance.now();
      if (s.outcome === 'accepted') {
        accepted += 1;
        decided += 1;
        lastDecidedAt = now;
        acceptedAt.set(s.intentId, now);
        toAccepted.push(now - at);
      } else if (s.outcome === 'rejected') {
        decided += 1;
        lastDecidedAt = now;
      } else if (s.outcome === 'programmed') {
        toProgrammed.push(now - at);
        delivery.push(now - (acceptedAt.get(s.intentId) ?? now));
        ended.add(s.intentId);
        lastProgrammedAt = now;
      } else if (s.outcome === 'incomplete') {
        incomplete += 1;
        if (incompletes.length < 5) incompletes.push(s);
        ended.add(s.intentId);
      }
      wake?.();
    },
  });
  return {
    expect: (id, arrival = 0) => void arrivedAt.set(id, arrival),
    arrived: (id, at) => void arrivedAt.set(id, at),
    settled: async (timeoutMs) => {
      const by = performance.now() + timeoutMs;
      while (!(decided === arrivedAt.size && ended.size === accepted)) {
        const left = by - performance.now();
        if (left <= 0) return false;
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, Math.min(left, 250));
        });
        wake = undefined;
      }
      return true;
    },
    get decided() {
      return decided;
    },
    get accepted() {
      return accepted;
    },
    get incomplete() {
      return incomplete;
    },
    toAccepted,
    toProgrammed,
    delivery,
    get lastProgrammedAt() {
      return lastProgrammedAt;
    },
    incompletes,
    get lastDecidedAt() {
      return lastDecidedAt;
    },
    unfinished: (limit) => [...acceptedAt.keys()].filter((id) => !ended.has(id)).slice(0, limit),
    stop: () => sub.unsubscribe(),
  };
}

export interface BurstPhase {
  binding: string;
  intents: number;
  accepted: number;
  programmed: number;
  rate: number;
  p50: number;
  p99: number;
  /** accepted → programmed: the southbound's share. */
  deliverP50: number;
  deliverP99: number;
  goalStateBytes: number;
}

/**
 * Per binding: `vpcs` VPCs × `perVpc` intents whose ports are all on that binding's
 * hosts, published at once from 4 connections; capacity = programmed per second.
 */
export async function burstPhase(
  rig: Rig,
  name: string,
  o: { vpcs: number; perVpc: number; seed: number },
): Promise<BurstPhase> {
  const { clients } = rig;
  const own = rig.hosts.filter((h) => bindingOf(h) === name);
  const scripts = new Map<string, unknown[]>();
  for (let v = 0; v < o.vpcs; v++) {
    const vpcId = `${name.replace(' ', '-')}-${v}`;
    scripts.set(vpcId, vpcScript(vpcId, o.perVpc, own, o.seed + v));
  }
  const watch = watchStatuses(rig.nc);
  for (const script of scripts.values()) {
    for (const intent of script) {
      watch.expect((intent as { id: string }).id);
      Object.defineProperty(intent, 'toJSON', {
        enumerable: false,
        value() {
          watch.arrived((this as { id: string }).id, performance.now());
          const { toJSON: _drop, ...plain } = this as Record<string, unknown>;
          return plain;
        },
      });
    }
  }
  const bytesBefore = (await rig.fleetTotals()).bytes;
  const started = performance.now();
  await publishScripts(clients, scripts, 256);
  await watch.settled(600_000);
  watch.stop();
  const programmed = watch.toProgrammed.length;
  return {
    binding: name,
    intents: o.vpcs * o.perVpc,
    accepted: watch.accepted,
    programmed,
    rate: programmed / ((watch.lastProgrammedAt - started) / 1000),
    p50: pct(watch.toProgrammed, 50),
    p99: pct(watch.toProgrammed, 99),
    deliverP50: pct(watch.delivery, 50),
    deliverP99: pct(watch.delivery, 99),
    goalStateBytes: ((await rig.fleetTotals()).bytes - bytesBefore) / Math.max(1, programmed),
  };
}
