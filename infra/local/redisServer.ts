/**
 * redis-server without Docker: Debian's package, no persistence; one server, or a
 * Redis Cluster of several.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ServerUnavailableError } from '../../shared/index.js';
import { run, which } from './exec.js';
import { runHereOrIn, type ContainerSpec } from './container.js';
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
 * Redis Cluster commands the application's client needs besides: the slot map
 * (ioredis asks for it at start and after a MOVED), and ASKING for a slot being
 * migrated.
 */
const REDIS_CLUSTER_APP_COMMANDS = ['cluster|slots', 'cluster|info', 'asking'] as const;

/** The users a Redis Cluster's nodes need besides the application's. */
export interface RedisClusterUsers {
  /** Replicas authenticate to their masters as this user (replication only). */
  replica: RedisAclUser;
  /** Forms the cluster and is the operator's (every command). */
  admin: RedisAclUser;
}

/**
 * An ACL file (DESIGN §9): the default user off, and `user` allowed only the host
 * mapping's keys (`{vpc:…}` and `{host:…}`), no channels, and only the commands the
 * application uses. A cluster's nodes also let its replicas replicate, its admin
 * administer, and the application read the slot map.
 */
export function renderRedisAcl(user: RedisAclUser, cluster?: RedisClusterUsers): string {
  const users = [user, ...(cluster ? [cluster.replica, cluster.admin] : [])];
  if (users.some((u) => !/^[A-Za-z0-9_-]{1,64}$/.test(u.username) || /[\s>]/.test(u.password)))
    throw new ServerUnavailableError(
      'redis-server',
      'ACL user name or password has bad characters',
    );
  const commands = [...REDIS_APP_COMMANDS, ...(cluster ? REDIS_CLUSTER_APP_COMMANDS : [])];
  return [
    'user default off',
    `user ${user.username} on >${user.password} resetkeys ~{vpc:* ~{host:* resetchannels -@all ${commands.map((c) => `+${c}`).join(' ')}`,
    ...(cluster
      ? [
          `user ${cluster.replica.username} on >${cluster.replica.password} resetkeys resetchannels -@all +psync +replconf +ping`,
          `user ${cluster.admin.username} on >${cluster.admin.password} ~* &* +@all`,
        ]
      : []),
    '',
  ].join('\n');
}

/** The redis-server binary and its version; a clear error when there is none. */
async function redisBinary(): Promise<{ binary: string; version: string }> {
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
  return { binary, version: /v=([\d.]+)/.exec(stdout)?.[1] ?? stdout.trim() };
}

/** One redis-server's command line: its port (TLS only with `tls`), no persistence. */
function nodeArgs(o: { port: number; dir: string; tls?: TlsFiles; aclFile?: string }): string[] {
  // With TLS, no plain port at all; clients are not asked for certificates (they
  // authenticate as the ACL user).
  const portArgs = o.tls
    ? [
        '--port', '0', '--tls-port', String(o.port),
        '--tls-cert-file', o.tls.certFile, '--tls-key-file', o.tls.keyFile,
        '--tls-ca-cert-file', o.tls.caFile, '--tls-auth-clients', 'no',
      ] // prettier-ignore
    : ['--port', String(o.port)];
  return [
    ...portArgs,
    '--bind', '127.0.0.1', '--dir', o.dir, '--save', '', '--appendonly', 'no',
    '--protected-mode', 'no',
    ...(o.aclFile ? ['--aclfile', o.aclFile] : []),
  ]; // prettier-ignore
}

/** A URL for the nodes: the user's credentials, then each host:port. */
function redisUrl(tls: boolean, ports: readonly number[], user?: RedisAclUser): string {
  const auth = user
    ? `${encodeURIComponent(user.username)}:${encodeURIComponent(user.password)}@`
    : '';
  return `${tls ? 'rediss' : 'redis'}://${auth}${ports.map((p) => `127.0.0.1:${p}`).join(',')}`;
}

export async function startLocalRedis(options: {
  dir: string;
  readyTimeoutMs?: number;
  /** Turns the default user off and lets only this user in (the URL then carries it). */
  acl?: RedisAclUser;
  /** TLS only (no plain port) with these files; the URL is then `rediss://…`. */
  tls?: TlsFiles;
}): Promise<LocalRedis> {
  const { binary, version } = await redisBinary();
  const port = await freePort();
  let aclFile: string | undefined;
  if (options.acl) {
    aclFile = join(options.dir, 'users.acl');
    writeFileSync(aclFile, renderRedisAcl(options.acl), { mode: 0o600 });
  }
  const launch = (): ManagedProcess =>
    new ManagedProcess({
      name: 'redis-server',
      command: binary,
      args: nodeArgs({
        port,
        dir: options.dir,
        ...(options.tls ? { tls: options.tls } : {}),
        ...(aclFile ? { aclFile } : {}),
      }),
      logFile: join(options.dir, 'redis-server.log'),
    });
  const url = redisUrl(Boolean(options.tls), [port], options.acl);
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

export interface LocalRedisNode {
  port: number;
  readonly process: ManagedProcess;
  /** Its role now, as it says (ROLE). */
  role: () => Promise<'master' | 'slave' | 'unknown'>;
  /** A crash: SIGKILL. Nothing is persisted: it comes back empty and resyncs. */
  kill: () => Promise<void>;
  /** Starts it again: same port and cluster identity (nodes.conf), no data. */
  revive: () => Promise<void>;
}

/** A Redis Cluster on this machine; as a whole, what a single server's handle is. */
export interface LocalRedisCluster extends LocalRedis {
  nodes: LocalRedisNode[];
}

/**
 * A Redis Cluster of `masters` masters with `replicasPerMaster` replicas each
 * (cluster-node-timeout 2 s: a master's replica takes over a few seconds after it
 * is lost). The URL names every node with the application's user.
 */
export async function startLocalRedisCluster(options: {
  dir: string;
  acl: RedisAclUser;
  tls?: TlsFiles;
  masters?: number;
  replicasPerMaster?: number;
  readyTimeoutMs?: number;
  /** Runs every node in a container of this image (its redis-server, redis-cli) instead of here. */
  container?: ContainerSpec;
}): Promise<LocalRedisCluster> {
  const { container } = options;
  const { binary, version } = container
    ? { binary: 'redis-server', version: undefined }
    : await redisBinary();
  const cli = container
    ? 'redis-cli'
    : (process.env.ALCOR_REDIS_CLI_BIN ?? (await which('redis-cli')));
  if (!cli)
    throw new ServerUnavailableError(
      'redis-cli',
      'no redis-cli to form the cluster: install redis-tools',
    );
  const masters = options.masters ?? 3;
  const count = masters * (1 + (options.replicasPerMaster ?? 1));
  const secret = () => randomBytes(18).toString('base64url');
  const users: RedisClusterUsers = {
    replica: { username: 'replica', password: secret() },
    admin: { username: 'admin', password: secret() },
  };
  const aclFile = join(options.dir, 'users.acl');
  writeFileSync(aclFile, renderRedisAcl(options.acl, users), { mode: 0o600 });
  const ports: Array<{ port: number; bus: number }> = [];
  for (let i = 0; i < count; i++) ports.push({ port: await freePort(), bus: await freePort() });
  const tlsArgs = options.tls ? ['--tls-cluster', 'yes', '--tls-replication', 'yes'] : [];
  const spawners = ports.map(({ port, bus }, i) => {
    const dir = join(options.dir, `node-${i + 1}`);
    mkdirSync(dir, { recursive: true });
    return () =>
      new ManagedProcess({
        name: `redis-server ${port}`,
        command: binary,
        args: [
          ...nodeArgs({ port, dir, aclFile, ...(options.tls ? { tls: options.tls } : {}) }),
          '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'),
          '--cluster-node-timeout', '2000', '--cluster-port', String(bus),
          '--masteruser', users.replica.username, '--masterauth', users.replica.password,
          '--repl-diskless-sync-delay', '0',
          ...tlsArgs,
        ], // prettier-ignore
        logFile: join(dir, 'redis-server.log'),
        ...(container ? { container } : {}),
      });
  });
  const tls = options.tls ? { tls: { ca: readFileSync(options.tls.caFile) } } : {};
  /** Asks one node as the admin. */
  const ask = async (port: number, ...command: string[]): Promise<unknown> => {
    const client = new Redis({
      host: '127.0.0.1',
      port,
      ...users.admin,
      ...tls,
      lazyConnect: true,
      connectTimeout: 1000,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await client.call(command[0]!, ...command.slice(1));
    } finally {
      client.disconnect();
    }
  };
  const readyTimeout = options.readyTimeoutMs ?? 30_000;
  const up = (proc: ManagedProcess, port: number) =>
    proc.waitUntilReady(async () => (await ask(port, 'PING')) === 'PONG', readyTimeout);
  const procs = spawners.map((spawn) => spawn());
  await Promise.all(procs.map((p, i) => up(p, ports[i]!.port)));
  await runHereOrIn(
    container,
    cli,
    [
      '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p.port}`),
      '--cluster-replicas', String(options.replicasPerMaster ?? 1), '--cluster-yes',
      '--user', users.admin.username, '--pass', users.admin.password, '--no-auth-warning',
      ...(options.tls ? ['--tls', '--cacert', options.tls.caFile] : []),
    ], // prettier-ignore
    { timeoutMs: 60_000 },
  ).catch((err: unknown) => {
    throw new ServerUnavailableError('redis cluster', `not formed: ${(err as Error).message}`, {
      cause: err,
    });
  });
  /**
   * Every node says the cluster is ok (all slots served), and every replica has
   * its master's data (one that never synced cannot be promoted).
   */
  const clusterOk = () =>
    procs[0]!.waitUntilReady(async () => {
      for (const { port } of ports) {
        const info = String(await ask(port, 'CLUSTER', 'INFO').catch(() => ''));
        if (!/cluster_state:ok/.test(info)) return false;
        const replication = String(await ask(port, 'INFO', 'replication').catch(() => ''));
        if (/role:slave/.test(replication) && !/master_link_status:up/.test(replication))
          return false;
      }
      return true;
    }, readyTimeout);
  await clusterOk();
  const url = redisUrl(
    Boolean(options.tls),
    ports.map((p) => p.port),
    options.acl,
  );
  const nodes: LocalRedisNode[] = ports.map(({ port }, i) => ({
    port,
    get process() {
      return procs[i]!;
    },
    role: async () => {
      const role = (await ask(port, 'ROLE').catch(() => [])) as unknown[];
      return role[0] === 'master' || role[0] === 'slave' ? role[0] : 'unknown';
    },
    kill: () => procs[i]!.kill(),
    revive: async () => {
      if (procs[i]!.running) throw new Error(`redis-server ${port} is still running`);
      const proc = spawners[i]!();
      procs[i] = proc;
      await up(proc, port);
    },
  }));
  // The image's server says its version itself.
  const info = container ? String(await ask(ports[0]!.port, 'INFO', 'server')) : '';
  return {
    url,
    version: version ?? /redis_version:([\d.]+)/.exec(info)?.[1] ?? 'unknown',
    nodes,
    get process() {
      return procs[0]!;
    },
    stop: async () => {
      await Promise.all(procs.map((p) => p.stop()));
    },
    kill: async () => {
      await Promise.all(procs.map((p) => p.kill()));
    },
    revive: async () => {
      await Promise.all(nodes.filter((n) => !n.process.running).map((n) => n.revive()));
      await clusterOk();
    },
  };
}
