import { readFileSync } from 'node:fs';
import { ConfigError, ServerUnavailableError } from '../../shared/index.js';
import { createRedisClient, redisTlsOptions } from './connect.js';

export { redisTlsOptions } from './connect.js';

/** Connects, PINGs and returns the server's version; a clear error naming Redis otherwise. */
export async function pingRedis(
  url: string,
  timeoutMs = 5000,
  /** The CA of a `rediss://` server (default REDIS_CA_FILE). */
  caFile?: string,
): Promise<string> {
  const env = caFile === undefined ? process.env : { REDIS_CA_FILE: caFile };
  const client = createRedisClient(
    url,
    {
      ...redisTlsOptions(url, env),
      lazyConnect: true,
      connectTimeout: timeoutMs,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
    },
    env,
    { clusterRetryStrategy: () => null, enableOfflineQueue: false },
  );
  // The server's own answer (e.g. WRONGPASS) comes as an error event; the failed
  // call then only says the connection closed.
  let said: Error | undefined;
  client.on('error', (err: Error) => (said ??= err));
  try {
    await client.connect();
    await client.ping();
    const info = await client.info('server');
    return /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
  } catch (err) {
    const closed = /connection is closed/i.test((err as Error).message);
    throw new ServerUnavailableError(
      'redis',
      `cannot reach ${redactUrl(url)}: ${(closed && said ? said : (err as Error)).message}`,
      {
        cause: err,
      },
    );
  } finally {
    client.disconnect();
  }
}

/** A URL without its password, for logs and tables (one host or a cluster's several). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/]*):[^@/]+@/, '$1:***@');
}

/**
 * REDIS_URL, with the password from REDIS_PASSWORD_FILE when that is set (a file
 * only the service's user reads: a URL in the environment shows in `ps e` and in
 * container descriptions). Undefined when REDIS_URL is not set.
 */
export function redisUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const url = env.REDIS_URL;
  const file = env.REDIS_PASSWORD_FILE;
  if (!url || !file) return url;
  let password: string;
  try {
    password = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError('REDIS_PASSWORD_FILE', `cannot read ${file}: ${(err as Error).message}`);
  }
  const m = /^(rediss?:\/\/)(?:([^:@/]*)(?::[^@/]*)?@)?(.+)$/.exec(url);
  if (!m) throw new ConfigError('REDIS_URL', `is not a Redis URL: ${redactUrl(url)}`);
  return `${m[1]}${m[2] ?? ''}:${encodeURIComponent(password)}@${m[3]}`;
}
