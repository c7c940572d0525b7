/** redis-server without Docker: Debian's package, one process per run, no persistence. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServerUnavailableError } from '../../shared/index.js';
import { run, which } from './exec.js';
import { ManagedProcess } from './managedProcess.js';
import { freePort } from './ports.js';
import { pingRedis } from '../redis/probe.js';
import type { TlsFiles } from './tls.js';

export interface LocalRedis {
  url: string;
  version: string;
  /** The running process (a new one after {@link LocalRedis.revive}). */
  readonly process: ManagedProcess;
  stop: () => Promise<void>;
  /** A crash: SIGKILL (fault tests). Nothing is persisted: it comes back empty. */
  kill: () => Promise<void>;
  /** Starts it again on the same port and ACL, with no data. */
  revive: () => Promise<void>;
}

export interface RedisAclUser {
  username: string;
  password: string;
}

/**
 * The commands the application sends (infra/redis/hostMapping.ts and the probe),
 * and nothing more: its scripts (EVAL/EVALSHA) and what they call (Redis checks a
 * script's commands against the same list), its reads and writes, and the
 * connection's own (PING, INFO for the readiness check, QUIT). No keyspace-wide or
 * administrative command (FLUSH*, SWAPDB, SCRIPT, FUNCTION, CONFIG, KEYS, DEL…).
 */
export const REDIS_APP_COMMANDS = [
  'eval',
  'evalsha',
  'get',
  'set',
  'hget',
  'hset',
  'hmget',
  'sadd',
  'srem',
  'smembers',
  'ping',
  'info',
  'quit',
] as const;

/**
 * An ACL file (DESIGN §9): the default user off, and `user` allowed only the host
 * mapping's keys (`{vpc:…}` and `{host:…}`), no channels, and only the commands the
 * application uses.
 */
export function renderRedisAcl(user: RedisAclUser): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(user.username) || /[\s>]/.test(user.password))
    throw new ServerUnavailableError(
      'redis-server',
      'ACL user name or password has bad characters',
    );
  return [
    'user default off',
    `user ${user.username} on >${user.password} resetkeys ~{vpc:* ~{host:* resetchannels -@all ${REDIS_APP_COMMANDS.map((c) => `+${c}`).join(' ')}`,
    '',
  ].join('\n');
}

export async function startLocalRedis(options: {
  dir: string;
  readyTimeoutMs?: number;
  /** Turns the default user off and lets only this user in (the URL then carries it). */
  acl?: RedisAclUser;
  /** TLS only (no plain port) with these files; the URL is then `rediss://…`. */
  tls?: TlsFiles;
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
  const aclArgs: string[] = [];
  if (options.acl) {
    const aclFile = join(options.dir, 'users.acl');
    writeFileSync(aclFile, renderRedisAcl(options.acl), { mode: 0o600 });
    aclArgs.push('--aclfile', aclFile);
  }
  // With TLS, no plain port at all; clients are not asked for certificates (they
  // authenticate as the ACL user).
  const portArgs = options.tls
    ? [
        '--port', '0', '--tls-port', String(port),
        '--tls-cert-file', options.tls.certFile, '--tls-key-file', options.tls.keyFile,
        '--tls-ca-cert-file', options.tls.caFile, '--tls-auth-clients', 'no',
      ] // prettier-ignore
    : ['--port', String(port)];
  const launch = (): ManagedProcess =>
    new ManagedProcess({
      name: 'redis-server',
      command: binary,
      args: [
        ...portArgs,
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
        ...aclArgs,
      ],
      logFile: join(options.dir, 'redis-server.log'),
    });
  const scheme = options.tls ? 'rediss' : 'redis';
  const url = options.acl
    ? `${scheme}://${encodeURIComponent(options.acl.username)}:${encodeURIComponent(options.acl.password)}@127.0.0.1:${port}`
    : `${scheme}://127.0.0.1:${port}`;
  const ready = (p: ManagedProcess): Promise<void> =>
    p.waitUntilReady(async () => {
      await pingRedis(url, 1000, options.tls?.caFile);
      return true;
    }, options.readyTimeoutMs ?? 15_000);
  let proc = launch();
  await ready(proc);
  return {
    url,
    version,
    get process() {
      return proc;
    },
    stop: () => proc.stop(),
    kill: () => proc.kill(),
    revive: async () => {
      if (proc.running) throw new Error('redis-server is still running');
      proc = launch();
      await ready(proc);
    },
  };
}
