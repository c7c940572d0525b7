/**
 * Structured logs (pino). JSON by default; pretty when writing to a terminal or
 * when LOG_PRETTY=1. Work that flows from an intent logs with `intentId` as the
 * correlation id: use `logger.child({ intentId })`.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/** The levels `--log-level` and LOG_LEVEL accept. */
export const LOG_LEVELS: readonly LevelWithSilent[] = [
  'trace',
  'debug',
  'info',
  'warn',
  'error',
  'fatal',
  'silent',
];

export interface LoggerOptions {
  name: string;
  level?: LevelWithSilent;
  pretty?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? (process.env.LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
  const pretty =
    options.pretty ??
    (process.env.LOG_PRETTY === '1' || (process.stdout.isTTY && process.env.LOG_PRETTY !== '0'));
  return pino({
    name: options.name,
    level,
    base: { service: options.name, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(pretty
      ? {
          transport: {
            target: 'pino-pretty',
            options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
          },
        }
      : {}),
  });
}
