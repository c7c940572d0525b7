import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerUnavailableError } from '../../shared/index.js';
import {
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

Broken.run();
