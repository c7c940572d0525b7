import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { ServerUnavailableError } from '../../shared/index.js';
import {
  dockerEngineUsable,
  dockerImages,
  freePort,
  kafkaBrokersVar,
  provisionServers,
  startLocalNats,
  startLocalRedis,
} from '../../infra/index.js';
import { testServers, within } from '../support/index.js';

const Broken = suite('servers broken on purpose');

/** The environment of the running servers, with one entry replaced by `override`. */
async function envWith(override: Record<string, string>): Promise<NodeJS.ProcessEnv> {
  const s = await testServers();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NATS_URL: s.natsUrl,
    REDIS_URL: s.redisUrl,
  };
  env.KAFKA_CLUSTERS = Object.keys(s.kafka).join(',');
  for (const [id, brokers] of Object.entries(s.kafka)) env[kafkaBrokersVar(id)] = brokers.join(',');
  return { ...env, ...override };
}

async function failure(promise: Promise<unknown>): Promise<ServerUnavailableError> {
  try {
    await within(30_000, 'provisioning with a broken server', promise);
  } catch (err) {
    if (err instanceof ServerUnavailableError) return err;
    throw err;
  }
  throw new Error('expected a ServerUnavailableError');
}

Broken('a wrong NATS_URL port is an error naming nats and the URL', async () => {
  const url = `nats://127.0.0.1:${await freePort()}`;
  const err = await failure(provisionServers({ env: await envWith({ NATS_URL: url }) }));
  assert.is(err.server, 'nats');
  assert.is(err.code, 'server_unavailable');
  assert.match(err.message, url);
});

Broken('a wrong REDIS_URL port is an error naming redis and the URL', async () => {
  const url = `redis://127.0.0.1:${await freePort()}`;
  const err = await failure(provisionServers({ env: await envWith({ REDIS_URL: url }) }));
  assert.is(err.server, 'redis');
  assert.match(err.message, url);
});

Broken('a wrong Kafka broker port is an error naming that Kafka cluster', async () => {
  const broker = `127.0.0.1:${await freePort()}`;
  const env = await envWith({});
  const [id] = (env.KAFKA_CLUSTERS ?? '').split(',');
  const err = await failure(provisionServers({ env: { ...env, [kafkaBrokersVar(id!)]: broker } }));
  assert.is(err.server, `kafka cluster ${id!}`);
  assert.match(err.message, broker);
});

Broken('a nats-server that cannot start is an error with its log, not a hang', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'alcor-broken-'));
  try {
    const err = await failure(
      startLocalNats({ dir, bucketCount: 1024, extraConfig: '\nthis is { not valid\n' }),
    );
    assert.is(err.server, 'nats-server');
    assert.match(err.message, /exited .* before it was ready/);
    assert.match(err.message, 'nats-server.log');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Broken('a redis-server binary that exits at once is an error naming redis-server', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'alcor-broken-'));
  const saved = process.env.ALCOR_REDIS_SERVER_BIN;
  process.env.ALCOR_REDIS_SERVER_BIN = '/bin/false';
  try {
    const err = await failure(startLocalRedis({ dir }));
    assert.is(err.server, 'redis-server');
  } finally {
    if (saved === undefined) delete process.env.ALCOR_REDIS_SERVER_BIN;
    else process.env.ALCOR_REDIS_SERVER_BIN = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A stand-in for a Docker engine on a unix socket: `answer` says what each request
 * gets (undefined: the connection is dropped, as by a socket with nothing that
 * speaks HTTP behind it).
 */
async function fakeEngine(
  answer: (method: string, path: string) => { status: number; body: string } | undefined,
) {
  const dir = mkdtempSync(join(tmpdir(), 'alcor-docker-'));
  const socket = join(dir, 'docker.sock');
  const server = createServer((req, res) => {
    const a = answer(req.method ?? 'GET', req.url ?? '/');
    if (a) res.writeHead(a.status, { 'content-type': 'text/plain' }).end(a.body);
    else req.socket.destroy();
  });
  await new Promise<void>((r) => server.listen(socket, r));
  return {
    host: `unix://${socket}`,
    stop: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

Broken(
  'a Docker socket with no engine that answers: local processes, and one line saying why',
  async () => {
    const engine = await fakeEngine(() => undefined);
    try {
      // NATS from the provisioning (a local nats-server is quick), Redis as it runs, no Kafka.
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        REDIS_URL: (await testServers()).redisUrl,
        DOCKER_HOST: engine.host,
      };
      const servers = await within(
        60_000,
        'provisioning',
        provisionServers({ env, kafkaClusters: [] }),
      );
      try {
        assert.is(servers.nats.source, 'local');
        assert.match(servers.note ?? '', /^Docker not used: no Docker engine answers at unix:/);
        assert.match(servers.note ?? '', /ALCOR_PROVISION=local/);
      } finally {
        await servers.stop();
      }
      // Asked for explicitly, it is an error instead.
      const err = await failure(
        provisionServers({ env: { ...env, ALCOR_PROVISION: 'docker' }, kafkaClusters: [] }),
      );
      assert.is(err.server, 'docker');
      assert.match(err.message, /ALCOR_PROVISION=docker/);
    } finally {
      await engine.stop();
    }
  },
);

Broken(
  'an engine that answers but has no images and cannot pull them: says which image',
  async () => {
    const engine = await fakeEngine((method, path) => {
      if (path === '/_ping') return { status: 200, body: 'OK' };
      if (path.startsWith('/images/create'))
        return {
          status: 500,
          body: '{"message":"Get https://registry-1.docker.io/v2/: dial tcp: i/o timeout"}',
        };
      return { status: 404, body: '{"message":"No such image"}' };
    });
    try {
      const usable = await dockerEngineUsable({ DOCKER_HOST: engine.host }, 2000);
      assert.is(usable.ok, false);
      assert.match(
        usable.ok ? '' : usable.reason,
        /^image alcor-southbound\/nats:[^ ]+ is not on the engine .* cannot be pulled \(500 .*\): \.\/scripts\/docker-images\.sh builds it$/,
      );
    } finally {
      await engine.stop();
    }
  },
);

Broken('positive control: an engine that answers and has the images is used', async () => {
  const asked: string[] = [];
  const engine = await fakeEngine((method, path) => {
    asked.push(`${method} ${path}`);
    return path === '/_ping' ? { status: 200, body: 'OK' } : { status: 200, body: '{}' };
  });
  try {
    assert.equal(await dockerEngineUsable({ DOCKER_HOST: engine.host }, 2000), { ok: true });
    assert.equal(asked, [
      'GET /_ping',
      ...dockerImages().map((i) => `GET /images/${encodeURIComponent(i)}/json`),
    ]);
  } finally {
    await engine.stop();
  }
});

Broken.run();
