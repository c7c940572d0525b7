/**
 * `node --import tsx services/controller/main.ts` — one controller process,
 * configured from the environment (NATS_URL, ALCOR_BUCKETS, … see config.ts).
 * Stops cleanly on SIGINT/SIGTERM.
 */
import { createLogger, onShutdown } from '../../infra/index.js';
import { controllerConfigFromEnv, start, type Controller } from './index.js';

const log = createLogger({ name: 'controller' });
let controller: Controller | undefined;
onShutdown(async () => {
  await controller?.stop();
});

try {
  controller = await start({ ...controllerConfigFromEnv(), log });
  log.info({ incarnation: controller.incarnation() }, 'READY');
} catch (err) {
  log.fatal({ err }, 'controller could not start');
  process.exit(1);
}
