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
import { ServerUnavailableError, type HostRecord } from '../../shared/index.js';
import { NatsCredentials } from '../nats/auth.js';
import { connectNats } from '../nats/connect.js';
import { renderNatsConfig } from '../nats/serverConfig.js';
import { cacheDir, cached } from './cache.js';
import { run, which } from './exec.js';
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
  monitorUrl: string;
  version: string;
  warning?: string;
  process: ManagedProcess;
  /** Set when the server runs with users per role (DESIGN §9). */
  credentials?: NatsCredentials;
  stop: () => Promise<void>;
}

export interface LocalNatsOptions {
  dir: string;
  bucketCount: number;
  syncInterval?: string;
  readyTimeoutMs?: number;
  /** Extra config appended verbatim (tests use it to break the server on purpose). */
  extraConfig?: string;
  port?: number;
  /**
   * Users per role and per host (infra/nats/auth.ts), their seeds in
   * `<dir>/credentials`; hosts are added later with {@link authorizeNatsHosts}.
   */
  auth?: boolean;
}

const PID_FILE = 'nats-server.pid';

/** nats-server resolves an include against the including file's directory. */
function relativeTo<T extends Record<string, string>>(dir: string, files: T): T {
  return Object.fromEntries(Object.entries(files).map(([k, f]) => [k, relative(dir, f)])) as T;
}

/**
 * Gives these hosts NATS users on a locally provisioned server with auth (its
 * credentials directory, ALCOR_NATS_CREDENTIALS): their seeds and permissions are
 * written, the server reloads, and this returns once the last host can connect.
 * On a server provisioned otherwise, operators render and reload the same file.
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
  const pid = Number(readFileSync(join(credentialsDir, PID_FILE), 'utf8'));
  process.kill(pid, 'SIGHUP');
  for (let attempt = 0; ; attempt++) {
    try {
      const nc = await connectNats(url, {
        name: 'alcor-auth-check',
        reconnect: false,
        timeoutMs: 2000,
        nkeySeedFile: credentials.hostSeedFile(last.hostId),
      });
      await nc.close();
      return;
    } catch (err) {
      if (attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function startLocalNats(options: LocalNatsOptions): Promise<LocalNats> {
  const binary = await ensureNatsServerBinary();
  const port = options.port ?? (await freePort());
  const monitorPort = await freePort();
  const storeDir = join(options.dir, 'jetstream');
  mkdirSync(storeDir, { recursive: true });
  const confPath = join(options.dir, 'nats.conf');
  const credentials = options.auth
    ? new NatsCredentials(join(options.dir, 'credentials'))
    : undefined;
  const conf = renderNatsConfig({
    ...(credentials ? { authorization: relativeTo(options.dir, credentials.render()) } : {}),
    host: '127.0.0.1',
    port,
    monitorPort,
    storeDir,
    serverName: `alcor-${port}`,
    bucketCount: options.bucketCount,
    ...(options.syncInterval === undefined ? {} : { syncInterval: options.syncInterval }),
  });
  writeFileSync(confPath, conf + (options.extraConfig ?? ''));
  const proc = new ManagedProcess({
    name: 'nats-server',
    command: binary.path,
    args: ['-c', confPath],
    logFile: join(options.dir, 'nats-server.log'),
  });
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  await proc.waitUntilReady(async () => {
    const res = await fetch(`${monitorUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  }, options.readyTimeoutMs ?? 30_000);
  // Other processes (test suites, the demo) add hosts and signal a reload.
  if (credentials) writeFileSync(join(credentials.dir, PID_FILE), String(proc.pid));
  return {
    ...(credentials ? { credentials } : {}),
    url: `nats://127.0.0.1:${port}`,
    monitorUrl,
    version: binary.version,
    ...(binary.warning === undefined ? {} : { warning: binary.warning }),
    process: proc,
    stop: () => proc.stop(),
  };
}
