/**
 * `npm run southbound -- [--log-level L] [--metrics-port N]` — one southbound
 * module, configured from the environment (NATS_URL, REDIS_URL, KAFKA_CLUSTERS and
 * KAFKA_<ID>_BROKERS, ALCOR_INSTANCE_ID, … see southboundConfigFromEnv). Serves
 * /metrics, /healthz, /readyz. Stops cleanly on SIGINT/SIGTERM: its relays stop
 * and their partitions move.
 */
import { runService } from '../../infra/index.js';
import { southboundConfigFromEnv, start } from './index.js';

await runService({
  name: 'southbound',
  about:
    'Relays goal states of the topology partitions placement gives it to Kafka.\nEnvironment: NATS_URL, REDIS_URL, KAFKA_CLUSTERS, KAFKA_<ID>_BROKERS, ALCOR_* (docs/southbound.md).',
  start: async (log, env) => {
    const module = await start({ ...southboundConfigFromEnv(env), log });
    return {
      registry: module.registry,
      readiness: module.readiness,
      stop: module.stop,
      describe: () => ({ instanceId: module.instanceId }),
    };
  },
});
