/**
 * nats-server without Docker: a pinned release built once with `go install` and
 * cached, or — for development only, with a warning — Debian's older package.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServerUnavailableError } from '../../shared/index.js';
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
}

export async function startLocalNats(options: LocalNatsOptions): Promise<LocalNats> {
  const binary = await ensureNatsServerBinary();
  const port = options.port ?? (await freePort());
  const monitorPort = await freePort();
  const storeDir = join(options.dir, 'jetstream');
  mkdirSync(storeDir, { recursive: true });
  const confPath = join(options.dir, 'nats.conf');
  const conf = renderNatsConfig({
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
  return {
    url: `nats://127.0.0.1:${port}`,
    monitorUrl,
    version: binary.version,
    ...(binary.warning === undefined ? {} : { warning: binary.warning }),
    process: proc,
    stop: () => proc.stop(),
  };
}
