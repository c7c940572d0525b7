/**
 * The demo's servers: provisions the real servers, declares the JetStream layout
 * and reports every server's health. The services and the workload are run.ts.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import {
  connectNats,
  ensureLayout,
  pingRedis,
  probeKafka,
  provisionServers,
  DEFAULT_LAYOUT,
  type Logger,
  type Servers,
} from '../../infra/index.js';

export interface DemoConfig {
  kafkaClusters?: string[];
  log: Logger;
}

export interface HealthRow {
  server: string;
  endpoint: string;
  version: string;
  source: string;
  healthy: boolean;
  detail: string;
}

export interface Demo {
  servers: Servers;
  health: HealthRow[];
  /** `NAME=value` endpoint lines for other tools (README, --keep-running). */
  endpoints: Record<string, string>;
  /** Stops the servers; `keepLogs` keeps the run folder with their logs (Servers.stop). */
  stop: (options?: { keepLogs?: boolean }) => Promise<void>;
}

async function checked(
  row: Omit<HealthRow, 'healthy' | 'detail'>,
  probe: () => Promise<string>,
): Promise<HealthRow> {
  try {
    return { ...row, healthy: true, detail: await probe() };
  } catch (err) {
    return {
      ...row,
      healthy: false,
      detail: (err as Error).message.split('\n')[0] ?? 'unknown error',
    };
  }
}

export async function start(config: DemoConfig): Promise<Demo> {
  const { log } = config;
  const servers = await provisionServers(
    config.kafkaClusters ? { kafkaClusters: config.kafkaClusters } : {},
  );
  log.info({ dir: servers.dir }, 'servers provisioned');
  // The demo's own connections are a service's (DESIGN §9): the servers' URLs and
  // credentials (the service's nkey seed, Kafka's SASL users) become this process's
  // environment; it picks other roles' seeds itself.
  Object.assign(process.env, servers.env());

  const natsRow = await checked(
    {
      server: servers.nats.name,
      endpoint: servers.nats.endpoint,
      version: servers.nats.version,
      source: servers.nats.source,
    },
    async () => {
      const nc = await connectNats(servers.nats.endpoint, { name: 'alcor-demo', reconnect: false });
      try {
        const jsm = await jetstreamManager(nc);
        const { streams } = await ensureLayout(nc, jsm, {
          ...DEFAULT_LAYOUT,
          replicas: servers.replicas,
        });
        return `JetStream ok; streams ${streams.map((s) => `${s.config.name}(${s.state.messages})`).join(' ')}`;
      } finally {
        await nc.close();
      }
    },
  );
  const redisRow = await checked(
    {
      server: servers.redis.name,
      endpoint: servers.redis.endpoint,
      version: servers.redis.version,
      source: servers.redis.source,
    },
    async () => `PING ok (server ${await pingRedis(servers.redis.url ?? servers.redis.endpoint)})`,
  );
  const kafkaRows = await Promise.all(
    Object.entries(servers.kafka).map(([id, k]) =>
      checked(
        { server: k.name, endpoint: k.endpoint, version: k.version, source: k.source },
        async () => {
          await probeKafka(id, k.brokers);
          return 'metadata ok';
        },
      ),
    ),
  );
  const health = [natsRow, redisRow, ...kafkaRows];
  for (const row of health)
    log.info({ ...row }, `${row.server} ${row.healthy ? 'healthy' : 'UNHEALTHY'}`);

  return {
    servers,
    health,
    endpoints: servers.env(),
    stop: (options) => servers.stop(options),
  };
}
