/**
 * The second way to real servers (DESIGN §11): a Docker engine through
 * testcontainers. Only tried when an engine is visible; the client library is
 * imported lazily so machines without Docker never load it.
 */
import { existsSync } from 'node:fs';
import { DEFAULT_BUCKET_COUNT } from '../shared/index.js';
import { renderNatsConfig } from './nats/serverConfig.js';
import { NATS_SERVER_VERSION } from './local/natsServer.js';
import { KAFKA_VERSION } from './local/kafkaServer.js';

export function dockerEngineVisible(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.ALCOR_PROVISION === 'local') return false;
  if (env.DOCKER_HOST) return true;
  return existsSync('/var/run/docker.sock');
}

/** The images the Docker path runs (each server's). */
export function dockerImages(): string[] {
  return [`nats:${NATS_SERVER_VERSION.replace(/^v/, '')}-alpine`, REDIS_IMAGE, KAFKA_IMAGE];
}

const REDIS_IMAGE = 'redis:7.0';
const KAFKA_IMAGE = 'confluentinc/cp-kafka:7.9.0';

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
        reason: `image ${image} is not on the engine at ${where} and cannot be pulled (${failed})`,
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
  stop: () => Promise<void>;
}

export async function startDockerNats(
  bucketCount = DEFAULT_BUCKET_COUNT,
): Promise<StartedDockerServer> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const conf = renderNatsConfig({
    host: '0.0.0.0',
    port: 4222,
    monitorPort: 8222,
    storeDir: '/data/jetstream',
    serverName: 'alcor-nats',
    bucketCount,
  });
  const version = NATS_SERVER_VERSION.replace(/^v/, '');
  const container = await new GenericContainer(`nats:${version}-alpine`)
    .withCopyContentToContainer([{ content: conf, target: '/etc/nats/alcor.conf' }])
    .withCommand(['-c', '/etc/nats/alcor.conf'])
    .withExposedPorts(4222, 8222)
    .withWaitStrategy(Wait.forHttp('/healthz', 8222))
    .start();
  return {
    endpoint: `nats://${container.getHost()}:${container.getMappedPort(4222)}`,
    version: NATS_SERVER_VERSION,
    stop: async () => {
      await container.stop();
    },
  };
}

export async function startDockerRedis(): Promise<StartedDockerServer> {
  const { RedisContainer } = await import('@testcontainers/redis');
  const container = await new RedisContainer(REDIS_IMAGE).start();
  return {
    endpoint: container.getConnectionUrl(),
    version: '7.0',
    stop: async () => {
      await container.stop();
    },
  };
}

export async function startDockerKafka(): Promise<StartedDockerServer> {
  const { KafkaContainer } = await import('@testcontainers/kafka');
  const container = await new KafkaContainer(KAFKA_IMAGE).withKraft().start();
  return {
    endpoint: `${container.getHost()}:${container.getMappedPort(9093)}`,
    version: `cp-kafka 7.9.0 (local provisioning runs ${KAFKA_VERSION})`,
    stop: async () => {
      await container.stop();
    },
  };
}
