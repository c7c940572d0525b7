/**
 * The second way to real servers (DESIGN §11): a Docker engine through
 * testcontainers. Only tried when an engine is visible; the client library is
 * imported lazily so machines without Docker never load it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type * as Testcontainers from 'testcontainers';
import { DEFAULT_BUCKET_COUNT } from '../shared/index.js';
import { renderNatsConfig } from './nats/serverConfig.js';
import { NATS_SERVER_VERSION } from './local/natsServer.js';
import { KAFKA_VERSION } from './local/kafkaServer.js';
import { freePort } from './local/ports.js';
import { renderKafkaBrokerConfig } from './kafka/brokerConfig.js';
import type { TlsFiles } from './local/tls.js';

export function dockerEngineVisible(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.ALCOR_PROVISION === 'local') return false;
  if (env.DOCKER_HOST) return true;
  return existsSync('/var/run/docker.sock');
}

/**
 * The images the Docker path runs: this repository's own, built locally by
 * `./scripts/docker-images.sh` (deploy/docker/Dockerfile; no registry has them).
 */
const IMAGES = {
  nats: `alcor-southbound/nats:${NATS_SERVER_VERSION.replace(/^v/, '')}`,
  redis: 'alcor-southbound/redis:7.0',
  kafka: `alcor-southbound/kafka:${KAFKA_VERSION}`,
} as const;

export function dockerImages(): string[] {
  return Object.values(IMAGES);
}

/** The image of one kind of server. */
export function dockerImage(kind: keyof typeof IMAGES): string {
  return IMAGES[kind];
}

/**
 * Why this engine cannot run the scaled-out set-ups, if it cannot: their servers
 * run as containers on this machine's network and see the run's folders
 * (infra/local/container.ts), so the engine must be this machine's.
 */
export function dockerEngineNotLocal(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const host = env.DOCKER_HOST;
  if (host && !host.startsWith('unix://'))
    return `the scaled-out set-ups run containers on this machine's network, and the engine at DOCKER_HOST=${host} is not this machine's`;
  return undefined;
}

/** Whether the visible engine can run the servers, and if not, why (one line). */
export type DockerUsable = { ok: true } | { ok: false; reason: string };

/**
 * A visible engine may still not serve: no daemon behind the socket, an API this
 * client does not speak, images neither present nor obtainable (no registry
 * reachable). Asks the engine (GET /_ping, then each image, pulling one that is
 * absent) within `timeoutMs` each.
 */
export async function dockerEngineUsable(
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 5_000,
): Promise<DockerUsable> {
  const where = env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  const socketPath = where.startsWith('unix://') ? where.slice('unix://'.length) : undefined;
  const base = socketPath ? 'http://docker' : where.replace(/^tcp:/, 'http:');
  const call = (method: string, path: string, wait = timeoutMs) =>
    dockerRequest(socketPath, `${base}${path}`, method, wait);
  const ping = await call('GET', '/_ping').catch((err: Error) => err);
  if (ping instanceof Error)
    return { ok: false, reason: `no Docker engine answers at ${where} (${ping.message})` };
  if (ping.status !== 200 || ping.body.trim() !== 'OK')
    return {
      ok: false,
      reason: `the engine at ${where} does not answer the Docker API (GET /_ping: ${ping.status} ${ping.body.slice(0, 80).trim()})`,
    };
  for (const image of dockerImages()) {
    const found = await call('GET', `/images/${encodeURIComponent(image)}/json`).catch(
      (err: Error) => err,
    );
    if (!(found instanceof Error) && found.status === 200) continue;
    const [name, tag] = image.split(':') as [string, string];
    const pulled = await call(
      'POST',
      `/images/create?fromImage=${encodeURIComponent(name)}&tag=${encodeURIComponent(tag)}`,
      timeoutMs * 6,
    ).catch((err: Error) => err);
    const failed =
      pulled instanceof Error
        ? pulled.message
        : pulled.status !== 200 || /"error"/.test(pulled.body)
          ? `${pulled.status} ${(/"error":"([^"]*)"/.exec(pulled.body)?.[1] ?? pulled.body).slice(0, 120)}`
          : undefined;
    if (failed)
      return {
        ok: false,
        reason: `image ${image} is not on the engine at ${where} and cannot be pulled (${failed}): ./scripts/docker-images.sh builds it`,
      };
  }
  return { ok: true };
}

/** One HTTP request to the engine (over its unix socket, or TCP). */
async function dockerRequest(
  socketPath: string | undefined,
  url: string,
  method: string,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, ...(socketPath ? { socketPath } : {}), timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 65_536) body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface StartedDockerServer {
  endpoint: string;
  version: string;
  /** Whether it speaks TLS (with the certificate it was given). */
  tls: boolean;
  stop: () => Promise<void>;
}

/**
 * testcontainers' reaper (Ryuk) is an image from a registry: where none is
 * reachable it cannot start, so it is off unless the environment says otherwise.
 * The containers are then stopped by the provisioning's own stop, and those still
 * running when this process exits (a test file that never stops its servers, a
 * crash) are removed by {@link reapOnExit}.
 */
async function testcontainers(): Promise<typeof Testcontainers> {
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
  return import('testcontainers');
}

const running = new Set<string>();
let reaperInstalled = false;

/** Remembers a container to remove at this process's exit unless stopped before. */
function reapOnExit(id: string): () => void {
  if (process.env.TESTCONTAINERS_RYUK_DISABLED === 'true' && !reaperInstalled) {
    reaperInstalled = true;
    // 'exit' allows only synchronous work: one `docker rm -f` for all of them.
    process.on('exit', () => {
      if (running.size > 0)
        spawnSync('docker', ['rm', '-f', ...running], { stdio: 'ignore', timeout: 20_000 });
    });
  }
  running.add(id);
  return () => running.delete(id);
}

/** Starts a container and wraps it as a server: stop() stops it, exit removes it. */
async function started(
  container: Testcontainers.GenericContainer,
  describe: (c: Testcontainers.StartedTestContainer) => Omit<StartedDockerServer, 'stop'>,
): Promise<StartedDockerServer> {
  const c = await container.start();
  const forget = reapOnExit(c.getId());
  return {
    ...describe(c),
    stop: async () => {
      await c.stop();
      forget();
    },
  };
}

/** The TLS files as the containers see them (copied in, readable by their user). */
const IN_CONTAINER = {
  caFile: '/etc/alcor/ca.crt',
  certFile: '/etc/alcor/server.crt',
  keyFile: '/etc/alcor/server.key',
  keyAndCertFile: '/etc/alcor/server.pem',
} as const;

function tlsCopies(tls: TlsFiles): Array<{ source: string; target: string; mode: number }> {
  return (['caFile', 'certFile', 'keyFile', 'keyAndCertFile'] as const).map((k) => ({
    source: tls[k],
    target: IN_CONTAINER[k],
    mode: 0o644,
  }));
}

export async function startDockerNats(
  bucketCount = DEFAULT_BUCKET_COUNT,
  /** TLS on the client port (a certificate for localhost: what the mapped port is). */
  tls?: TlsFiles,
): Promise<StartedDockerServer> {
  const { GenericContainer, Wait } = await testcontainers();
  const conf = renderNatsConfig({
    host: '0.0.0.0',
    port: 4222,
    monitorPort: 8222,
    storeDir: '/var/lib/nats/jetstream',
    serverName: 'alcor-nats',
    bucketCount,
    ...(tls ? { tls: { certFile: IN_CONTAINER.certFile, keyFile: IN_CONTAINER.keyFile } } : {}),
  });
  return started(
    new GenericContainer(IMAGES.nats)
      .withCopyContentToContainer([{ content: conf, target: '/etc/alcor/nats.conf', mode: 0o644 }])
      .withCopyFilesToContainer(tls ? tlsCopies(tls) : [])
      .withCommand(['-c', '/etc/alcor/nats.conf'])
      .withExposedPorts(4222, 8222)
      .withWaitStrategy(Wait.forHealthCheck()),
    (c) => ({
      endpoint: `${tls ? 'tls' : 'nats'}://${c.getHost()}:${c.getMappedPort(4222)}`,
      version: NATS_SERVER_VERSION,
      tls: tls !== undefined,
    }),
  );
}

export async function startDockerRedis(tls?: TlsFiles): Promise<StartedDockerServer> {
  const { GenericContainer, Wait } = await testcontainers();
  const ports = tls
    ? [
        '--port', '0', '--tls-port', '6379',
        '--tls-cert-file', IN_CONTAINER.certFile, '--tls-key-file', IN_CONTAINER.keyFile,
        '--tls-ca-cert-file', IN_CONTAINER.caFile, '--tls-auth-clients', 'no',
      ] // prettier-ignore
    : [];
  return started(
    new GenericContainer(IMAGES.redis)
      .withCopyFilesToContainer(tls ? tlsCopies(tls) : [])
      .withCommand([...ports, '--save', '', '--appendonly', 'no', '--protected-mode', 'no'])
      .withExposedPorts(6379)
      // The image's health check speaks plain text: with TLS, the server's own word.
      .withWaitStrategy(
        tls ? Wait.forLogMessage(/Ready to accept connections/) : Wait.forHealthCheck(),
      ),
    (c) => ({
      endpoint: `${tls ? 'rediss' : 'redis'}://${c.getHost()}:${c.getMappedPort(6379)}`,
      version: '7.0',
      tls: tls !== undefined,
    }),
  );
}

/**
 * A single-node KRaft cluster. The broker listens inside the container on the same
 * port it is published on, so that the address it advertises works from here.
 */
export async function startDockerKafka(tls?: TlsFiles): Promise<StartedDockerServer> {
  const { GenericContainer, Wait } = await testcontainers();
  const port = await freePort();
  const props = renderKafkaBrokerConfig({
    listenHost: '0.0.0.0',
    advertised: `127.0.0.1:${port}`,
    port,
    controllerPort: 9093,
    dataDir: '/var/lib/kafka/data',
    ...(tls
      ? { tls: { keyAndCertFile: IN_CONTAINER.keyAndCertFile, caFile: IN_CONTAINER.caFile } }
      : {}),
  });
  return started(
    new GenericContainer(IMAGES.kafka)
      .withCopyContentToContainer([
        { content: props, target: '/etc/alcor/server.properties', mode: 0o644 },
      ])
      .withCopyFilesToContainer(tls ? tlsCopies(tls) : [])
      .withCommand(['/etc/alcor/server.properties'])
      .withExposedPorts({ container: port, host: port })
      .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
      .withStartupTimeout(120_000),
    () => ({ endpoint: `127.0.0.1:${port}`, version: KAFKA_VERSION, tls: tls !== undefined }),
  );
}
