/**
 * Real servers for integration tests. `npm test` (test/run.ts) provisions them once
 * per run and passes their URLs in the environment; a test file run alone
 * provisions its own (the children are killed when the process exits).
 */
import { provisionServers, serversFromEnv, type Servers } from '../../infra/index.js';

export interface TestServers {
  natsUrl: string;
  redisUrl: string;
  kafka: Record<string, string[]>;
}

let pending: Promise<TestServers> | undefined;
let owned: Servers | undefined;

export function testServers(): Promise<TestServers> {
  pending ??= (async () => {
    if (process.env.NATS_URL) return serversFromEnv();
    owned = await provisionServers();
    const env = owned.env();
    // This process's own connections use the servers' credentials, as under the runner.
    for (const name of ['NATS_NKEY_SEED_FILE', 'ALCOR_NATS_CREDENTIALS'])
      if (env[name]) process.env[name] = env[name];
    return serversFromEnv({ ...process.env, ...env });
  })();
  return pending;
}

/** Stops servers this process started itself (no-op under the runner). */
export async function releaseTestServers(): Promise<void> {
  await owned?.stop();
  owned = undefined;
  pending = undefined;
}
