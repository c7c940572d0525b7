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

export function dockerEngineVisible(): boolean {
  if (process.env.ALCOR_PROVISION === 'local') return false;
  if (process.env.DOCKER_HOST) return true;
  return existsSync('/var/run/docker.sock');
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
  const container = await new RedisContainer('redis:7.0').start();
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
  const container = await new KafkaContainer('confluentinc/cp-kafka:7.9.0').withKraft().start();
  return {
    endpoint: `${container.getHost()}:${container.getMappedPort(9093)}`,
    version: `cp-kafka 7.9.0 (local provisioning runs ${KAFKA_VERSION})`,
    stop: async () => {
      await container.stop();
    },
  };
}
