/**
 * The entry point every service process shares: flags (`--log-level`,
 * `--metrics-port`, `--help`), the pino logger, the ops endpoint (/metrics,
 * /healthz, /readyz), a `READY` log line naming the ops URL, and a clean stop on
 * SIGINT/SIGTERM. A bad flag or setting exits 2 with usage; a server that does not
 * answer at start (its first connection) is waited for, backing off, while /readyz
 * says so; any other failed start exits 1.
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import type { LevelWithSilent } from 'pino';
import { ConfigError, ServerUnavailableError } from '../shared/index.js';
import { LOG_LEVELS, createLogger, type Logger } from './logger.js';
import { onShutdown } from './local/shutdown.js';
import { Registry, startOpsServer, type ReadinessChecks } from './ops.js';

export interface RunningService {
  registry: Registry;
  readiness: () => ReadinessChecks | Promise<ReadinessChecks>;
  stop: () => Promise<void>;
  /** Fields of the READY line. */
  describe?: () => Record<string, unknown>;
}

const LEVELS: readonly string[] = LOG_LEVELS;

export async function runService(options: {
  name: string;
  /** What the service is and which environment variables it reads. */
  about: string;
  start: (log: Logger, env: NodeJS.ProcessEnv) => Promise<RunningService>;
}): Promise<void> {
  const usage = `Usage: ${options.name} [options]

${options.about}

Options:
  --log-level <level>   ${LEVELS.join('|')} (default: LOG_LEVEL or info)
  --metrics-port <n>    port of /metrics, /healthz, /readyz
                        (default: ALCOR_METRICS_PORT, or 0 = any free port)
  --metrics-host <ip>   address they listen on: 0.0.0.0 for a scraper on another
                        machine (default: ALCOR_METRICS_HOST, or 127.0.0.1)
  -h, --help            this text
`;
  const fail = (message: string): never => {
    process.stderr.write(`${options.name}: ${message}\n\n${usage}`);
    process.exit(2);
  };
  let values: {
    'log-level'?: string;
    'metrics-port'?: string;
    'metrics-host'?: string;
    help?: boolean;
  } = {};
  try {
    values = parseArgs({
      options: {
        'log-level': { type: 'string' },
        'metrics-port': { type: 'string' },
        'metrics-host': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  const level = values['log-level'] ?? process.env.LOG_LEVEL ?? 'info';
  if (!LEVELS.includes(level)) fail(`--log-level ${level}: one of ${LEVELS.join(', ')}`);
  const portText = values['metrics-port'] ?? process.env.ALCOR_METRICS_PORT ?? '0';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535)
    fail(`--metrics-port / ALCOR_METRICS_PORT ${portText}: a port number from 0 to 65535`);
  const host = values['metrics-host'] ?? process.env.ALCOR_METRICS_HOST ?? '127.0.0.1';
  if (isIP(host) === 0 && host !== 'localhost')
    fail(`--metrics-host / ALCOR_METRICS_HOST ${host}: an IP address (0.0.0.0: every interface)`);

  const log = createLogger({ name: options.name, level: level as LevelWithSilent });
  let service: RunningService | undefined;
  let ops: Awaited<ReturnType<typeof startOpsServer>> | undefined;
  let stopping = false;
  /** Why the service is not up yet (for /readyz while it waits for its servers). */
  let waiting = 'starting';
  onShutdown(async () => {
    stopping = true;
    await service?.stop();
    await ops?.stop();
    log.info('stopped');
  });
  // The ops endpoint first: /healthz answers and /readyz says why not ready while
  // the service waits for its servers.
  const empty = new Registry();
  try {
    ops = await startOpsServer({
      port,
      host,
      registry: {
        get contentType() {
          return (service?.registry ?? empty).contentType;
        },
        metrics: () => (service?.registry ?? empty).metrics(),
      },
      readiness: () => service?.readiness() ?? { started: waiting },
      logger: log,
    });
  } catch (err) {
    log.fatal({ err, port, host }, `${options.name}: cannot serve /metrics`);
    process.exit(1);
  }
  // A server that does not answer yet (started after us, restarting) is waited
  // for, backing off; a bad setting is not.
  for (let attempt = 0; !stopping; attempt++) {
    try {
      service = await options.start(log, process.env);
      break;
    } catch (err) {
      if (err instanceof ConfigError) {
        log.fatal({ variable: err.field, err }, `${options.name}: bad setting`);
        process.exit(2);
      }
      if (!(err instanceof ServerUnavailableError)) {
        log.fatal({ err }, `${options.name} could not start`);
        process.exit(1);
      }
      const delayMs = Math.min(START_RETRY_MAX_MS, START_RETRY_MS * 2 ** attempt);
      waiting = `waiting for ${err.server}: ${err.message}`;
      log.warn(
        { err, attempt, delayMs },
        `${options.name}: ${err.server} not reachable yet; trying again`,
      );
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
  if (service) log.info({ metricsUrl: `${ops.url}/metrics`, ...service.describe?.() }, 'READY');
}

/** Backoff while a server does not answer at start: 0.5 s doubling to 15 s. */
const START_RETRY_MS = 500;
const START_RETRY_MAX_MS = 15_000;
