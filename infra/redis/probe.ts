import { Redis } from 'ioredis';
import { ServerUnavailableError } from '../../shared/index.js';

/** Connects, PINGs and returns the server's version; a clear error naming Redis otherwise. */
export async function pingRedis(url: string, timeoutMs = 5000): Promise<string> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    const info = await client.info('server');
    return /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
  } catch (err) {
    throw new ServerUnavailableError(
      'redis',
      `cannot reach ${redactUrl(url)}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  } finally {
    client.disconnect();
  }
}

/** A URL without its password, for logs and tables. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}
