/**
 * Controller tests need a JetStream of their own: the controller owns buckets of
 * the fixed `intent.*.*` space, so on the shared server it would also take other
 * suites' intents. Each suite gets a fresh nats-server (same config as the
 * product's, ~0.1 s to start) and controllers booted in-process with `start()`.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import {
  DEFAULT_LAYOUT,
  connectNats,
  createLogger,
  ensureLayout,
  ManagedProcess,
  metricSamples,
  repoRoot,
  runDir,
  startLocalNats,
  type LayoutOptions,
  type Logger,
} from '../../infra/index.js';
import { DEFAULT_BUCKET_COUNT, subjects } from '../../shared/index.js';
import {
  start,
  type Controller,
  type ControllerConfigInput,
} from '../../services/controller/index.js';

export interface IsolatedNats {
  url: string;
  nc: NatsConnection;
  jsm: JetStreamManager;
  stop: () => Promise<void>;
}

export async function isolatedNats(
  layout: Partial<LayoutOptions> = {},
  serverOptions: {
    maxPayload?: number;
    streamMaxBufferedMsgs?: number;
    maxFileStore?: number;
  } = {},
): Promise<IsolatedNats> {
  const dir = runDir('alcor-ctl-test-');
  const server = await startLocalNats({ dir, bucketCount: DEFAULT_BUCKET_COUNT, ...serverOptions });
  const nc = await connectNats(server.url, { name: 'test', reconnect: false });
  const jsm = await jetstreamManager(nc);
  await ensureLayout(nc, jsm, { ...DEFAULT_LAYOUT, ...layout });
  return {
    url: server.url,
    nc,
    jsm,
    stop: async () => {
      await nc.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Warnings and errors of the services a test runs in-process, kept while TEST_LOG_LEVEL is unset. */
const recent: string[] = [];
const RECENT_LINES = 500;

/**
 * The services' logger in tests: TEST_LOG_LEVEL=<level> prints at that level;
 * unset, nothing is printed, but warnings and errors (kafkajs's aside) are kept in
 * memory so that a failing check can show what the services said (`recentLogs`).
 */
export const testLog: Logger = process.env.TEST_LOG_LEVEL
  ? createLogger({
      name: 'test',
      level: process.env.TEST_LOG_LEVEL as 'info',
      pretty: false,
    })
  : pino(
      { name: 'test', level: 'warn', base: { pid: process.pid } },
      {
        write(line: string) {
          if (line.includes('"logger":"kafkajs"')) return;
          recent.push(line.trimEnd());
          if (recent.length > RECENT_LINES * 2) recent.splice(0, recent.length - RECENT_LINES);
        },
      },
    );

/** The last warnings and errors testLog kept (only while TEST_LOG_LEVEL is unset). */
export function recentLogs(lines = 40, match?: RegExp): string[] {
  const kept = match ? recent.filter((l) => match.test(l)) : recent;
  return kept.slice(-lines);
}

export function startTestController(
  natsUrl: string,
  overrides: Partial<ControllerConfigInput> = {},
): Promise<Controller> {
  return start({
    instanceId: `ctl-${Math.random().toString(36).slice(2, 8)}`,
    natsUrl,
    buckets: Array.from({ length: DEFAULT_BUCKET_COUNT }, (_, i) => i),
    decisionTimeoutMs: 20_000,
    ...overrides,
    log: testLog,
  });
}

/** `n` client connections of their own (load from several publishers). */
export function clientConnections(url: string, n: number): Promise<NatsConnection[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      connectNats(url, { name: `client-${i}`, reconnect: false }),
    ),
  );
}

/** A service's main in a child process of its own, once it logged READY. */
export async function spawnService(
  name: string,
  main: string,
  natsUrl: string,
  env: Record<string, string> = {},
): Promise<ManagedProcess> {
  const dir = runDir(`alcor-${name}-proc-`);
  const proc = new ManagedProcess({
    name,
    command: process.execPath,
    args: ['--import', 'tsx', join(repoRoot, main)],
    cwd: repoRoot,
    logFile: join(dir, `${name}.log`),
    env: { ...process.env, NATS_URL: natsUrl, LOG_PRETTY: '0', LOG_LEVEL: 'info', ...env },
  });
  await proc.waitUntilReady(
    () => Promise.resolve(readFileSync(proc.logFile, 'utf8').includes('"msg":"READY"')),
    60_000,
  );
  return proc;
}

/** A controller in a child process of its own (`services/controller/main.ts`), for kill tests. */
export function spawnController(
  natsUrl: string,
  env: Record<string, string> = {},
): Promise<ManagedProcess> {
  return spawnService('controller', 'services/controller/main.ts', natsUrl, env);
}

/** The ops endpoint (…/metrics, /healthz, /readyz) a spawned service named on its READY line. */
export function opsUrl(proc: ManagedProcess): string {
  for (const line of readFileSync(proc.logFile, 'utf8').split('\n')) {
    if (!line.includes('"msg":"READY"')) continue;
    const { metricsUrl } = JSON.parse(line) as { metricsUrl?: string };
    if (metricsUrl) return metricsUrl.replace(/\/metrics$/, '');
  }
  throw new Error(`${proc.logFile} has no READY line with a metricsUrl`);
}

/** One sample of a Prometheus text exposition (sum over series matching all `labels`). */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const series = metricSamples(text, name).filter((s) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (series.length === 0) throw new Error(`no sample ${name} ${JSON.stringify(labels)}`);
  return series.reduce((sum, s) => sum + s.value, 0);
}

/**
 * Applies intents through the sync API with `Alcor-Wait: programmed`: the reply
 * comes once their hosts applied them (or the wait ended), one item per intent.
 */
export async function applyProgrammed<T = unknown>(
  nc: NatsConnection,
  intents: unknown[],
  timeoutMs = 60_000,
): Promise<T> {
  const h = headers();
  h.set('Alcor-Wait', 'programmed');
  const reply = await nc.request(
    subjects.applyIntents,
    new TextEncoder().encode(JSON.stringify(intents)),
    { timeout: timeoutMs, headers: h },
  );
  return reply.json<T>();
}
