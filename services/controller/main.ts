/**
 * `npm run controller -- [--log-level L] [--metrics-port N]` — one controller
 * process, configured from the environment (NATS_URL, REDIS_URL, ALCOR_BUCKETS, …
 * see config.ts). Serves /metrics, /healthz, /readyz; stops cleanly on SIGINT/SIGTERM.
 */
import { runService } from '../../infra/index.js';
import { controllerConfigFromEnv, start } from './index.js';

await runService({
  name: 'controller',
  about:
    'A VPC owner: decides intents of the buckets placement gives it, serves alcor.intents.apply.\nEnvironment: NATS_URL, REDIS_URL, ALCOR_INSTANCE_ID, ALCOR_BUCKETS, ALCOR_* (docs/controller.md).',
  start: async (log, env) => {
    const controller = await start({ ...controllerConfigFromEnv(env), log });
    return {
      registry: controller.registry,
      readiness: controller.readiness,
      stop: controller.stop,
      describe: () => ({
        instanceId: controller.instanceId,
        incarnation: controller.incarnation(),
      }),
    };
  },
});
