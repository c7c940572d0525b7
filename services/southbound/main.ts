/**
 * `node --import tsx services/southbound/main.ts` — one southbound module,
 * configured from the environment (NATS_URL, REDIS_URL, KAFKA_CLUSTERS and
 * KAFKA_<ID>_BROKERS, ALCOR_INSTANCE_ID, … see southboundConfigFromEnv).
 * Stops cleanly on SIGINT/SIGTERM: its relays stop and their partitions move.
 */
import { createLogger, onShutdown } from '../../infra/index.js';
import { southboundConfigFromEnv, start, type SouthboundModule } from './index.js';

const log = createLogger({ name: 'southbound' });
let module: SouthboundModule | undefined;
onShutdown(async () => {
  await module?.stop();
});

try {
  module = await start({ ...southboundConfigFromEnv(), log });
  log.info({ instanceId: module.instanceId }, 'READY');
} catch (err) {
  log.fatal({ err }, 'southbound module could not start');
  process.exit(1);
}
