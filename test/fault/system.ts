/**
 * The system the fault suite breaks: its own real servers (one nats-server, or a
 * three-node JetStream cluster with R3 streams; Redis; two Kafka clusters), and the
 * services as the processes an operator runs — controllers, southbound modules and
 * NCA fleets — each restartable, killable and pausable. On one nats-server every
 * service reaches NATS through its own TCP proxy, so one link can be cut or slowed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  DEFAULT_LAYOUT,
  NatsCredentials,
  authorizeNatsHosts,
  connectNats,
  ensureLayout,
  freePort,
  metricSamples,
  provisionServers,
  readLeader,
  type Logger,
  type Servers,
} from '../../infra/index.js';
import { kvBuckets, type HostRecord } from '../../shared/index.js';
import { spawnService, waitReady, type Service } from '../../services/demo/run.js';
import { loadTopology } from '../../services/cli/topology.js';
import { NetFaults } from '../support/netFault.js';
import { SmallDisk } from '../support/smallDisk.js';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.js';
import { fleet } from '../support/workload.js';

export type ServiceKind = 'controller' | 'southbound' | 'nca';

/** Starts of a process before the supervisor gives up. */
const START_ATTEMPTS = 30;

const MAIN: Record<ServiceKind, string> = {
  controller: 'services/controller/main.ts',
  southbound: 'services/southbound/main.ts',
  nca: 'services/nca/main.ts',
};

/** One service process, as a supervisor sees it: start, crash, stop, pause. */
export interface ServiceProcess {
  name: string;
  kind: ServiceKind;
  /** Its own link to NATS (one-server systems). */
  link: TcpProxy | undefined;
  /** Ports it reaches NATS on (its link's, or every node's). */
  natsPorts: number[];
  /** Its cgroup's name for {@link FaultSystem.net} (absent where network faults are not available). */
  group?: string;
  running: () => boolean;
  opsUrl: () => string;
  /** (Re)starts the process and waits until /healthz answers. */
  start: () => Promise<void>;
  /** SIGKILL: a crash, nothing flushed. */
  kill: () => Promise<void>;
  /** SIGTERM: a clean stop (handoff). */
  stop: () => Promise<void>;
  /** SIGSTOP / SIGCONT: a process that hangs (GC pause, VM stall) and comes back. */
  pause: () => void;
  resume: () => void;
}

export interface FaultSystemOptions {
  dir: string;
  log: Logger;
  /** nats-server nodes: 1, or a cluster of 3 with R3 streams. */
  natsNodes?: number;
  /** Brokers per Kafka cluster (default: 3 with a NATS cluster, else 1): the scaled-out set-up. */
  kafkaBrokers?: number;
  /** Redis as a Redis Cluster of 3 masters and 3 replicas (default: with a NATS cluster). */
  redisCluster?: boolean;
  controllers?: number;
  southbounds?: number;
  /** NCA processes; the hosts are dealt among them. */
  fleets?: number;
  clusters?: number;
  hostsPerCluster?: number;
  heartbeatTtlMs?: number;
  programmedDeadlineMs?: number;
  logLevel?: string;
  /** The hosts (default: {@link faultTopology} of clusters × hostsPerCluster). */
  hosts?: HostRecord[];
  /** Which hosts each NCA process runs (default: dealt round-robin over `fleets`). */
  fleetHosts?: string[][];
  /** On one nats-server, each service through a TCP proxy of its own (default true). */
  links?: boolean;
  /** More environment for every service. */
  env?: Record<string, string>;
  /** The last NATS node's store on a small filesystem of its own (fill-nats-disk; needs root). */
  smallDisk?: boolean;
  /** nats-server's sync_interval (default NATS_SYNC_INTERVAL, else the server's 2 min). */
  syncInterval?: string;
  /**
   * NCA processes share a few connections among their hosts (the `service` user, as
   * the demo's simulator does) instead of one per host as its own user.
   */
  sharedFleetConnections?: boolean;
}

export interface FaultSystem {
  servers: Servers;
  /** Real network faults (nftables on the processes' cgroups), if this machine allows them. */
  net: NetFaults;
  /** The cgroup name of NATS node i (1, 2, …), when network faults are available. */
  natsGroup: (node: number) => string | undefined;
  /** The harness's own connection, as a service (reads every stream). */
  nc: NatsConnection;
  /** The northbound client's connection (account CLIENT): where the load comes from. */
  client: NatsConnection;
  hosts: HostRecord[];
  services: ServiceProcess[];
  of: (kind: ServiceKind) => ServiceProcess[];
  /** The placement leader's instance id now, if any. */
  leader: () => Promise<string | undefined>;
  /** Starts one more controller (a rebalance); `remove` stops it cleanly. */
  addController: () => Promise<ServiceProcess>;
  remove: (p: ServiceProcess) => Promise<void>;
  /** Waits until every running service says /readyz. */
  ready: (timeoutMs?: number) => Promise<void>;
  heartbeatTtlMs: number;
  programmedDeadlineMs: number;
  /** Each nats-server's JetStream file storage limit (max_file_store), bytes. */
  storeLimit: number;
  /**
   * On a cluster, as root: the last NATS node's store on a small filesystem of its
   * own (fill-nats-disk fills it). Absent elsewhere.
   */
  smallDisk?: { node: number; disk: SmallDisk };
  stop: () => Promise<void>;
}

/**
 * The fault system's JetStream file storage limit per server: far above what a
 * long suite stores (tens of MB), low enough that another stream fills it in
 * seconds (fill-jetstream-store).
 */
export const FAULT_STORE_LIMIT = 1024 * 1024 * 1024;

/** The small filesystem under one NATS node's store: room for its max_file_store, and a little. */
const SMALL_DISK_BYTES = FAULT_STORE_LIMIT + 256 * 1024 * 1024;

/** Hosts over the clusters: a third on JetStream, a third on Kafka `a`, a third on `b`. */
export function faultTopology(clusters: number, hostsPerCluster: number): HostRecord[] {
  return fleet(clusters, hostsPerCluster, 'f', {
    regions: 2,
    binding: (h) =>
      h % 3 === 0 ? { type: 'jetstream' } : { type: 'kafka', cluster: h % 3 === 1 ? 'a' : 'b' },
  });
}

export async function startFaultSystem(o: FaultSystemOptions): Promise<FaultSystem> {
  const natsNodes = o.natsNodes ?? 1;
  // On a cluster the TTL must outlast a stream leader's failover (nats-server elects
  // within 4–9 s): a shorter one expires every member's lease when a node is lost.
  const heartbeatTtlMs = o.heartbeatTtlMs ?? (natsNodes > 1 ? 10_000 : 3000);
  const programmedDeadlineMs = o.programmedDeadlineMs ?? 30_000;
  const logLevel = o.logLevel ?? 'warn';
  mkdirSync(o.dir, { recursive: true });
  // Servers of its own, always local (it restarts and kills them): none from the
  // environment, but for how often NATS syncs to disk (NATS_SYNC_INTERVAL=always).
  const ownEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(NATS_|REDIS_URL|KAFKA_)/.test(k)),
  );
  const syncInterval = o.syncInterval ?? process.env.NATS_SYNC_INTERVAL;
  const kafkaBrokers = o.kafkaBrokers ?? (natsNodes > 1 ? 3 : 1);
  const net = await NetFaults.open(basename(o.dir));
  if (net.available !== true) o.log.warn({ why: net.available }, 'no real network faults here');
  const natsGroup = (node: number) => (net.available === true ? `nats-${node}` : undefined);
  const smallDisk = o.smallDisk ? SmallDisk.open(SMALL_DISK_BYTES) : undefined;
  if (smallDisk && smallDisk.available !== true)
    o.log.warn({ why: smallDisk.available }, 'no small filesystem under a NATS node here');
  const servers = await provisionServers({
    natsNodes,
    kafkaBrokers,
    redisCluster: o.redisCluster ?? natsNodes > 1,
    local: true,
    env: ownEnv,
    ...(syncInterval ? { syncInterval } : {}),
    maxFileStore: FAULT_STORE_LIMIT,
    natsCgroupOf: (node) => {
      const group = natsGroup(node);
      return group ? net.cgroup(group) : undefined;
    },
    ...(smallDisk?.available === true
      ? {
          natsStoreMountOf: (node: number, storeDir: string) =>
            node === natsNodes ? smallDisk.mount(storeDir) : Promise.resolve(),
        }
      : {}),
  }).catch(async (err: unknown) => {
    await smallDisk?.close();
    throw err;
  });
  if (syncInterval === 'always')
    await assertSyncAlways(servers.local?.natsNodes ?? []).catch(async (err: unknown) => {
      await servers.stop();
      await smallDisk?.close();
      throw err;
    });
  const services: ServiceProcess[] = [];
  const proxies: TcpProxy[] = [];
  let nc: NatsConnection | undefined;
  let client: NatsConnection | undefined;
  const stop = async (): Promise<void> => {
    await Promise.allSettled(services.map((s) => s.stop()));
    await nc?.close().catch(() => undefined);
    await client?.close().catch(() => undefined);
    await Promise.allSettled(proxies.map((p) => p.close()));
    await servers.stop({ keepData: true });
    await smallDisk?.close();
    await net.close();
  };
  try {
    const env = servers.env();
    // This process's own clients (the harness, the load, the checks) verify these
    // servers with their CA, as the services do.
    for (const [name, value] of Object.entries(env))
      if (name.endsWith('_CA_FILE')) process.env[name] = value;
    const credentials = new NatsCredentials(env.ALCOR_NATS_CREDENTIALS!);
    nc = await connectNats(env.NATS_URL!, {
      name: 'alcor-fault-harness',
      nkeySeedFile: credentials.roleSeedFile('service'),
    });
    client = await connectNats(env.NATS_URL!, {
      name: 'alcor-fault-client',
      nkeySeedFile: credentials.roleSeedFile('client'),
    });
    await ensureLayout(nc, await jetstreamManager(nc), {
      ...DEFAULT_LAYOUT,
      replicas: servers.replicas,
      heartbeatTtlMs,
    });
    const hosts = o.hosts ?? faultTopology(o.clusters ?? 6, o.hostsPerCluster ?? 10);
    await authorizeNatsHosts(env.NATS_URL!, credentials.dir, hosts);
    const topologyFile = join(o.dir, 'topology.json');
    writeFileSync(topologyFile, JSON.stringify({ hosts }));
    await loadTopology(nc, topologyFile, { prune: true });

    const base: Record<string, string> = {
      ...env,
      ALCOR_HEARTBEAT_TTL_MS: String(heartbeatTtlMs),
      ALCOR_PROGRAMMED_DEADLINE_MS: String(programmedDeadlineMs),
      ...o.env,
    };
    const natsPort =
      natsNodes === 1 && o.links !== false ? Number(new URL(env.NATS_URL!).port) : undefined;
    const natsScheme = env.NATS_URL!.startsWith('tls://') ? 'tls' : 'nats';

    const make = async (
      kind: ServiceKind,
      name: string,
      own: Record<string, string>,
    ): Promise<ServiceProcess> => {
      const link = natsPort
        ? await startTcpProxy({ host: '127.0.0.1', port: natsPort })
        : undefined;
      if (link) proxies.push(link);
      const opsPort = await freePort();
      const procEnv = {
        ...base,
        // Controllers and southbound modules connect as their role's user, the
        // southbound and the agents to Kafka as theirs.
        ...(kind === 'nca' ? {} : { NATS_NKEY_SEED_FILE: credentials.roleSeedFile(kind) }),
        ...(kind === 'controller' ? {} : servers.kafkaRoleEnv(kind)),
        ...own,
        // Through the proxy in the server's own scheme (tls:// with the run's CA).
        ...(link ? { NATS_URL: `${natsScheme}://${link.address}` } : {}),
      };
      let current: Service | undefined;
      const group = net.available === true ? name : undefined;
      const cgroup = group ? net.cgroup(group) : undefined;
      const p: ServiceProcess = {
        name,
        kind,
        link,
        natsPorts: link ? [link.port] : servers.local.natsNodes.map((n) => n.port),
        ...(group ? { group } : {}),
        running: () => current?.proc.running ?? false,
        opsUrl: () => current?.opsUrl ?? '',
        // As a supervisor does (systemd's Restart=always): a process that exits before
        // it is up (NATS down while it starts) is started again, a second later.
        start: async () => {
          if (current?.proc.running) return;
          link?.heal();
          link?.delay(0);
          for (let attempt = 1; ; attempt++) {
            try {
              current = await spawnService(name, MAIN[kind], o.dir, procEnv, logLevel, {
                port: opsPort,
                ...(cgroup ? { cgroup } : {}),
              });
              return;
            } catch (err) {
              if (attempt >= START_ATTEMPTS) throw err;
              o.log.warn(
                { service: name, attempt, err },
                'service did not start; starting it again',
              );
              await new Promise((r) => setTimeout(r, 1000));
            }
          }
        },
        kill: async () => {
          await current?.proc.kill();
        },
        stop: async () => {
          await current?.proc.stop();
        },
        pause: () => current?.proc.signal('SIGSTOP'),
        resume: () => current?.proc.signal('SIGCONT'),
      };
      return p;
    };

    const controllers = o.controllers ?? 3;
    let nextController = controllers + 1;
    for (let i = 1; i <= controllers; i++)
      services.push(
        await make('controller', `controller-${i}`, { ALCOR_INSTANCE_ID: `controller-${i}` }),
      );
    for (let i = 1; i <= (o.southbounds ?? 2); i++)
      services.push(
        await make('southbound', `southbound-${i}`, { ALCOR_INSTANCE_ID: `southbound-${i}` }),
      );
    const fleets = o.fleetHosts?.length ?? o.fleets ?? 2;
    for (let i = 1; i <= fleets; i++) {
      const mine =
        o.fleetHosts?.[i - 1] ?? hosts.filter((_, k) => k % fleets === i - 1).map((h) => h.hostId);
      services.push(
        await make('nca', `nca-${i}`, {
          ALCOR_FLEET_ID: `fault-fleet${i}`,
          ALCOR_NCA_HOSTS: mine.join(','),
          ...(o.sharedFleetConnections
            ? { NATS_NKEY_SEED_FILE: credentials.roleSeedFile('service') }
            : { ALCOR_NCA_CREDENTIALS: credentials.hostsDir, NATS_NKEY_SEED_FILE: '' }),
        }),
      );
    }
    const of = (kind: ServiceKind): ServiceProcess[] => services.filter((s) => s.kind === kind);
    // Controllers and southbound modules first: agents resync from the owners at start.
    await Promise.all([...of('controller'), ...of('southbound')].map((s) => s.start()));
    await Promise.all(of('nca').map((s) => s.start()));

    const system: FaultSystem = {
      servers,
      net,
      natsGroup,
      nc,
      client,
      hosts,
      services,
      of,
      leader: async () => (await readLeader(nc!, kvBuckets.controllers))?.id,
      addController: async () => {
        const id = `controller-${nextController++}`;
        const p = await make('controller', id, { ALCOR_INSTANCE_ID: id });
        services.push(p);
        await p.start();
        return p;
      },
      remove: async (p) => {
        await p.stop();
        services.splice(services.indexOf(p), 1);
      },
      ready: async (timeoutMs = 120_000) => {
        const live = services.filter((s) => s.running());
        await waitReady(
          live.map((s) => ({ name: s.name, opsUrl: s.opsUrl() })),
          timeoutMs,
        );
      },
      heartbeatTtlMs,
      programmedDeadlineMs,
      storeLimit: FAULT_STORE_LIMIT,
      ...(smallDisk?.dir ? { smallDisk: { node: natsNodes, disk: smallDisk } } : {}),
      stop,
    };
    await system.ready();
    return system;
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * A counter of every running service, by service name (unreachable: absent). Read
 * before and after a run, {@link counterGrowth} gives what the run added, across a
 * service restarted meanwhile (its counter starts again at 0).
 */
export async function counterByService(
  system: Pick<FaultSystem, 'services'>,
  name: string,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const s of system.services.filter((p) => p.running())) {
    const text = await fetch(`${s.opsUrl()}/metrics`).then(
      (r) => r.text(),
      () => undefined,
    );
    if (text === undefined) continue;
    let total = 0;
    for (const { value } of metricSamples(text, name)) total += value;
    out.set(s.name, total);
  }
  return out;
}

/** What a counter grew by between two readings, summed over the services. */
export function counterGrowth(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
): number {
  let grown = 0;
  for (const [name, value] of after) {
    const was = before.get(name) ?? 0;
    grown += value >= was ? value - was : value; // restarted: counted from 0 again
  }
  return grown;
}

/** Every node says (its /varz) that it syncs each write before acknowledging it. */
async function assertSyncAlways(nodes: readonly { monitorUrl: string }[]): Promise<void> {
  for (const { monitorUrl } of nodes) {
    const res = await fetch(`${monitorUrl}/varz`, { signal: AbortSignal.timeout(5000) });
    const varz = (await res.json()) as { jetstream?: { config?: { sync_always?: boolean } } };
    if (varz.jetstream?.config?.sync_always !== true)
      throw new Error(`nats-server at ${monitorUrl} does not sync every write (varz sync_always)`);
  }
}
