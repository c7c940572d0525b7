/**
 * Real servers for integration tests. `npm test` (test/run.ts) provisions them once
 * per run and passes their URLs in the environment; a test file run alone
 * provisions its own (the children are killed when the process exits).
 */
import {
  detachManagedProcesses,
  localTlsFiles,
  provisionServers,
  serversFromEnv,
  type Servers,
  type TlsFiles,
} from '../../infra/index.js';

export interface TestServers {
  natsUrl: string;
  redisUrl: string;
  kafka: Record<string, string[]>;
}

let pending: Promise<TestServers> | undefined;
let owned: Servers | undefined;
let adopted: Record<string, string> = {};

export function testServers(): Promise<TestServers> {
  pending ??= (async () => {
    if (process.env.NATS_URL) return serversFromEnv();
    owned = await provisionServers();
    // Nothing stops them when the file's tests are done: they must not hold the
    // process open (they are killed at its exit).
    detachManagedProcesses();
    // This process's own connections use the servers and their credentials (NATS
    // seeds, Kafka SASL users), as under the runner.
    adopted = owned.env();
    Object.assign(process.env, adopted);
    return serversFromEnv();
  })();
  return pending;
}

/** Stops servers this process started itself (no-op under the runner). */
export async function releaseTestServers(): Promise<void> {
  await owned?.stop();
  for (const name of Object.keys(adopted)) delete process.env[name];
  adopted = {};
  owned = undefined;
  pending = undefined;
}

/**
 * The TLS files of the run's servers (the checkout's local CA and its certificate
 * for 127.0.0.1), for a suite starting a server of its own that the run's clients
 * must trust; undefined when the run's servers speak plain text (ALCOR_TLS=off) or
 * come from elsewhere.
 */
export async function suiteTls(): Promise<TlsFiles | undefined> {
  const { natsUrl } = await testServers();
  return natsUrl.startsWith('tls://') && process.env.ALCOR_TLS !== 'off'
    ? localTlsFiles()
    : undefined;
}
