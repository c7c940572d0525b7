/** redis-server without Docker: Debian's package, one process per run, no persistence. */
import { join } from 'node:path';
import { ServerUnavailableError } from '../../shared/index.js';
import { run, which } from './exec.js';
import { ManagedProcess } from './managedProcess.js';
import { freePort } from './ports.js';
import { pingRedis } from '../redis/probe.js';

export interface LocalRedis {
  url: string;
  version: string;
  process: ManagedProcess;
  stop: () => Promise<void>;
}

export async function startLocalRedis(options: {
  dir: string;
  readyTimeoutMs?: number;
}): Promise<LocalRedis> {
  const binary = process.env.ALCOR_REDIS_SERVER_BIN ?? (await which('redis-server'));
  if (!binary) {
    throw new ServerUnavailableError(
      'redis-server',
      "no binary: run `apt-get install redis-server` (the README's commands do), or set REDIS_URL",
    );
  }
  const { stdout } = await run(binary, ['--version'], { timeoutMs: 10_000 }).catch(
    (err: unknown) => {
      throw new ServerUnavailableError(
        'redis-server',
        `${binary} does not run: ${(err as Error).message}`,
        { cause: err },
      );
    },
  );
  const version = /v=([\d.]+)/.exec(stdout)?.[1] ?? stdout.trim();
  const port = await freePort();
  const proc = new ManagedProcess({
    name: 'redis-server',
    command: binary,
    args: [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      options.dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
    ],
    logFile: join(options.dir, 'redis-server.log'),
  });
  const url = `redis://127.0.0.1:${port}`;
  await proc.waitUntilReady(async () => {
    await pingRedis(url, 1000);
    return true;
  }, options.readyTimeoutMs ?? 15_000);
  return { url, version, process: proc, stop: () => proc.stop() };
}
