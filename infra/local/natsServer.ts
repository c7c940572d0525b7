/**
 * nats-server without Docker: a pinned release built once with `go install` and
 * cached, or — for development only, with a warning — Debian's older package.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { ConfigError, ServerUnavailableError, type HostRecord } from '../../shared/index.js';
import { NatsCredentials, type AuthorizationFiles } from '../nats/auth.js';
import { connectNats } from '../nats/connect.js';
import { renderNatsConfig } from '../nats/serverConfig.js';
import { cacheDir, cached } from './cache.js';
import type { TlsFiles } from './tls.js';
import { run, which } from './exec.js';
import type { ContainerSpec } from './container.js';
import { ManagedProcess } from './managedProcess.js';
import { freePort } from './ports.js';

export const NATS_SERVER_VERSION = 'v2.14.9';
const MODULE = 'github.com/nats-io/nats-server/v2';

export interface NatsBinary {
  path: string;
  version: string;
  /** Set when the binary is not the pinned release. */
  warning?: string;
}

async function binaryVersion(path: string): Promise<string> {
  const { stdout } = await run(path, ['--version'], { timeoutMs: 10_000 });
  return stdout.trim().replace(/^nats-server:\s*/, '');
}

export async function ensureNatsServerBinary(): Promise<NatsBinary> {
  const override = process.env.ALCOR_NATS_SERVER_BIN;
  if (override) return { path: override, version: await binaryVersion(override) };

  const target = join(cacheDir('bin'), `nats-server-${NATS_SERVER_VERSION}`);
  const go = await which('go');
  if (existsSync(target) || go) {
    await cached(target, async (tmp) => {
      const gobin = `${tmp}.gobin`;
      mkdirSync(gobin, { recursive: true });
      await run(go ?? 'go', ['install', `${MODULE}@${NATS_SERVER_VERSION}`], {
        env: { ...process.env, GOBIN: gobin, CGO_ENABLED: '0' },
        timeoutMs: 900_000,
      });
      try {
        copyFileSync(join(gobin, 'nats-server'), tmp);
        chmodSync(tmp, 0o755);
      } finally {
        rmSync(gobin, { recursive: true, force: true });
      }
    });
    return { path: target, version: await binaryVersion(target) };
  }

  const system =
    (await which('nats-server')) ??
    (existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : undefined);
  if (system) {
    const version = await binaryVersion(system);
    return {
      path: system,
      version,
      warning:
        `using the system nats-server ${version}, not the pinned ${NATS_SERVER_VERSION} ` +
        '(no Go toolchain to build it). Fine for development only: 2.9 fsyncs every 60 s ' +
        'and lacks multi-filter consumers.',
    };
  }
  throw new ServerUnavailableError(
    'nats-server',
    `no binary: install Go (to build ${NATS_SERVER_VERSION}) or Debian's nats-server package, ` +
      'or set NATS_URL to a running server',
  );
}

export interface LocalNats {
  url: string;
  /** Its client port. */
  port: number;
  /** Its route port, when it is a node of a cluster. */
  routePort?: number;
  monitorUrl: string;
  /** Its JetStream store directory, and its log. */
  storeDir: string;
  logFile: string;
  version: string;
  warning?: string;
  /** The running process (a new one after {@link LocalNats.revive}). */
  readonly process: ManagedProcess;
  /** Set when the server runs with users per role (DESIGN §9). */
  credentials?: NatsCredentials;
  stop: () => Promise<void>;
  /** A crash: SIGKILL, no clean shutdown (fault tests). The store stays. */
  kill: () => Promise<void>;
  /** Starts it again after a kill or stop: same ports, configuration and store. */
  revive: () => Promise<void>;
}

export interface LocalNatsOptions {
  dir: string;
  bucketCount: number;
  syncInterval?: string;
  /** JetStream's file storage limit, bytes (NatsServerConfig.maxFileStore). */
  maxFileStore?: number;
  /** Called with the store directory, made and empty, before the server starts (a filesystem of its own mounted there). */
  storeMount?: (storeDir: string) => Promise<void>;
  /** The server's max_payload (default infra/nats/serverConfig.ts). */
  maxPayload?: number;
  /** A stream's ingest queue, in messages (NatsServerConfig.streamMaxBufferedMsgs). */
  streamMaxBufferedMsgs?: number;
  readyTimeoutMs?: number;
  /** Extra config appended verbatim (tests use it to break the server on purpose). */
  extraConfig?: string;
  port?: number;
  /**
   * Users per role and per host (infra/nats/auth.ts), their seeds in
   * `<dir>/credentials` (or `credentialsDir`, shared by a cluster's nodes); hosts are
   * added later with {@link authorizeNatsHosts}.
   */
  auth?: boolean;
  credentialsDir?: string;
  /** A node of a cluster: its route port and the routes to the other nodes. */
  cluster?: { name: string; port: number; routes: number[] };
  serverName?: string;
  /** TLS on the client port with these files; the URL is then `tls://…`. */
  tls?: TlsFiles;
  /** A cgroup v2 directory to run the server in (fault tests cut its network by it). */
  cgroup?: string;
  /** Runs it in a container of this image (its nats-server) instead of as a process here. */
  container?: ContainerSpec;
}

/** Pids of the servers sharing a credentials directory (one line each: `<name> <pid>`). */
const PID_FILE = 'nats-server.pid';

function recordPid(credentialsDir: string, name: string, pid: number | undefined): void {
  const file = join(credentialsDir, PID_FILE);
  const lines = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.startsWith(`${name} `))
    : [];
  if (pid !== undefined) lines.push(`${name} ${pid}`);
  writeFileSync(file, lines.join('\n') + '\n');
}

/** nats-server resolves an include against the including file's directory. */
function relativeTo(dir: string, files: AuthorizationFiles): AuthorizationFiles {
  return {
    alcorFile: relative(dir, files.alcorFile),
    clientFile: relative(dir, files.clientFile),
    hostsFile: relative(dir, files.hostsFile),
  };
}

/**
 * Gives these hosts NATS users on a locally provisioned server with auth (its
 * credentials directory, ALCOR_NATS_CREDENTIALS): their seeds and permissions are
 * written, the server (every node of a cluster) reloads, and this returns once the
 * last host can connect to each server of `url`. On a server provisioned otherwise,
 * operators render and reload the same file.
 */
export async function authorizeNatsHosts(
  url: string,
  credentialsDir: string,
  hosts: readonly HostRecord[],
): Promise<void> {
  const credentials = new NatsCredentials(credentialsDir);
  credentials.addHosts(hosts);
  credentials.render();
  const last = hosts.at(-1);
  if (!last) return;
  for (const line of readFileSync(join(credentialsDir, PID_FILE), 'utf8').split('\n')) {
    const pid = Number(line.split(' ')[1]);
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGHUP');
      } catch {
        // A node that is down reads the file when it starts again.
      }
    }
  }
  for (const server of url.split(',')) {
    for (let attempt = 0; ; attempt++) {
      try {
        const nc = await connectNats(server, {
          name: 'alcor-auth-check',
          reconnect: false,
          timeoutMs: 2000,
          nkeySeedFile: credentials.hostSeedFile(last.hostId),
        });
        await nc.close();
        break;
      } catch (err) {
        if (attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

/**
 * A size limit for the servers this repository starts itself, from the
 * environment (the small-limits test tier: `npm run test:limits`); undefined when unset.
 */
export function limitFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1024)
    throw new ConfigError(name, `${raw}: a whole number of bytes, at least 1024`);
  return n;
}

/** The image's program (deploy/docker/Dockerfile). */
const NATS_IN_IMAGE: NatsBinary = {
  path: '/usr/local/bin/nats-server',
  version: NATS_SERVER_VERSION,
};

export async function startLocalNats(options: LocalNatsOptions): Promise<LocalNats> {
  const binary = options.container ? NATS_IN_IMAGE : await ensureNatsServerBinary();
  const port = options.port ?? (await freePort());
  const monitorPort = await freePort();
  const storeDir = join(options.dir, 'jetstream');
  mkdirSync(storeDir, { recursive: true });
  await options.storeMount?.(storeDir);
  const logFile = join(options.dir, 'nats-server.log');
  const confPath = join(options.dir, 'nats.conf');
  const credentials = options.auth
    ? new NatsCredentials(options.credentialsDir ?? join(options.dir, 'credentials'))
    : undefined;
  const serverName = options.serverName ?? `alcor-${port}`;
  const maxPayload = options.maxPayload ?? limitFromEnv('ALCOR_NATS_MAX_PAYLOAD');
  const conf = renderNatsConfig({
    ...(credentials ? { authorization: relativeTo(options.dir, credentials.render()) } : {}),
    host: '127.0.0.1',
    port,
    monitorPort,
    storeDir,
    serverName,
    bucketCount: options.bucketCount,
    ...(options.syncInterval === undefined ? {} : { syncInterval: options.syncInterval }),
    ...(options.maxFileStore === undefined ? {} : { maxFileStore: options.maxFileStore }),
    ...(maxPayload === undefined ? {} : { maxPayload }),
    ...(options.streamMaxBufferedMsgs === undefined
      ? {}
      : { streamMaxBufferedMsgs: options.streamMaxBufferedMsgs }),
    ...(options.cluster ? { cluster: options.cluster } : {}),
    ...(options.tls
      ? { tls: { certFile: options.tls.certFile, keyFile: options.tls.keyFile } }
      : {}),
  });
  writeFileSync(confPath, conf + (options.extraConfig ?? ''));
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  const launch = async (): Promise<ManagedProcess> => {
    const proc = new ManagedProcess({
      name: 'nats-server',
      command: binary.path,
      args: ['-c', confPath],
      logFile,
      ...(options.cgroup ? { cgroup: options.cgroup } : {}),
      ...(options.container ? { container: options.container } : {}),
    });
    await proc.waitUntilReady(async () => {
      const res = await fetch(`${monitorUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
      return res.ok;
    }, options.readyTimeoutMs ?? 30_000);
    // Other processes (test suites, the demo) add hosts and signal a reload.
    if (credentials) recordPid(credentials.dir, serverName, proc.pid);
    return proc;
  };
  let proc = await launch();
  return {
    ...(credentials ? { credentials } : {}),
    url: `${options.tls ? 'tls' : 'nats'}://127.0.0.1:${port}`,
    port,
    ...(options.cluster ? { routePort: options.cluster.port } : {}),
    monitorUrl,
    storeDir,
    logFile,
    version: binary.version,
    ...(binary.warning === undefined ? {} : { warning: binary.warning }),
    get process() {
      return proc;
    },
    stop: () => proc.stop(),
    kill: () => proc.kill(),
    revive: async () => {
      if (proc.running) throw new Error(`nats-server ${serverName} is still running`);
      proc = await launch();
    },
  };
}

export interface LocalNatsCluster {
  /** Every node's client URL, comma-separated (what NATS_URL takes). */
  url: string;
  nodes: LocalNats[];
  credentials?: NatsCredentials;
  stop: () => Promise<void>;
}

/**
 * A JetStream cluster of `nodes` servers on this machine (streams then take
 * replicas up to that number), each with its own store; users shared by all.
 */
export async function startLocalNatsCluster(
  options: Omit<
    LocalNatsOptions,
    'cluster' | 'port' | 'credentialsDir' | 'serverName' | 'cgroup'
  > & {
    nodes: number;
    /** The cgroup v2 directory of node i (1, 2, …), if it runs in one. */
    cgroupOf?: (node: number) => string | undefined;
    /** Called with node i's store directory before it starts (LocalNatsOptions.storeMount). */
    storeMountOf?: (node: number, storeDir: string) => Promise<void>;
  },
): Promise<LocalNatsCluster> {
  const ports = await Promise.all(
    Array.from({ length: options.nodes }, async () => ({
      client: await freePort(),
      route: await freePort(),
    })),
  );
  const credentialsDir = join(options.dir, 'credentials');
  const results = await Promise.allSettled(
    ports.map((p, i) => {
      const dir = join(options.dir, `node${i + 1}`);
      mkdirSync(dir, { recursive: true });
      const cgroup = options.cgroupOf?.(i + 1);
      const mountOf = options.storeMountOf;
      return startLocalNats({
        ...options,
        dir,
        ...(cgroup ? { cgroup } : {}),
        ...(mountOf ? { storeMount: (storeDir: string) => mountOf(i + 1, storeDir) } : {}),
        port: p.client,
        serverName: `alcor-n${i + 1}-${p.client}`,
        ...(options.auth ? { credentialsDir } : {}),
        cluster: {
          name: 'alcor',
          port: p.route,
          routes: ports.filter((_, j) => j !== i).map((q) => q.route),
        },
      });
    }),
  );
  const nodes = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    throw failed.reason;
  }
  return {
    url: nodes.map((n) => n.url).join(','),
    nodes,
    ...(nodes[0]?.credentials ? { credentials: nodes[0].credentials } : {}),
    stop: async () => {
      await Promise.allSettled(nodes.map((n) => n.stop()));
    },
  };
}
