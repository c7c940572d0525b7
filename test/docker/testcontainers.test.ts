/**
 * The Docker way to servers (DESIGN §11, infra/docker.ts): the demo at CI size with
 * ALCOR_PROVISION=docker runs nats-server, Redis and two Kafka clusters as
 * containers of this repository's images through testcontainers, with TLS, ends
 * with its oracle clean, and leaves no container behind.
 */
import { spawnSync } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot } from '../../infra/index.js';
import { run } from '../../infra/local/exec.js';

const test = suite('testcontainers path');

const running = async (): Promise<string[]> =>
  (await run('docker', ['ps', '--format', '{{.Image}}'], { timeoutMs: 30_000 })).stdout
    .split('\n')
    .filter((image) => image.startsWith('alcor-southbound/'));

test('the demo runs its servers in Docker and ends RESULT: OK', async () => {
  const before = await running();
  const env: NodeJS.ProcessEnv = { ...process.env, ALCOR_PROVISION: 'docker' };
  for (const name of Object.keys(env))
    if (/^(NATS_|ALCOR_NATS_|REDIS_URL|KAFKA_)/.test(name)) delete env[name];
  const out = spawnSync(process.execPath, ['--import', 'tsx', 'services/demo/main.ts', '--once'], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
    timeout: 600_000,
  });
  const text = `${out.stdout}${out.stderr}`;
  process.stdout.write(text);
  assert.is(out.status, 0, 'the demo exits 0');
  for (const server of ['nats-server', 'redis-server', 'kafka cluster a', 'kafka cluster b'])
    assert.match(text, new RegExp(`✔ ${server}\\s.*\\(docker\\)`), `${server} ran in Docker`);
  // With TLS, verified with the checkout's local CA, as local processes are.
  assert.match(text, /✔ nats-server\s+\S+\s+tls:\/\//);
  assert.match(text, /✔ redis-server\s+\S+\s+rediss:\/\//);
  assert.match(text, /oracle: CLEAN — (\d+)\/\1 hosts/);
  assert.match(text, /RESULT: OK/);
  assert.equal(await running(), before, 'its containers are gone after the demo');
});

test('containers of a process that exits without stopping them are removed', async () => {
  const before = await running();
  const env: NodeJS.ProcessEnv = { ...process.env, ALCOR_PROVISION: 'docker' };
  for (const name of Object.keys(env))
    if (/^(NATS_|ALCOR_NATS_|REDIS_URL|KAFKA_)/.test(name)) delete env[name];
  const out = spawnSync(process.execPath, ['--import', 'tsx', 'test/docker/exitWithServersUp.ts'], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
    timeout: 180_000,
  });
  assert.is(out.status, 0, out.stderr);
  assert.match(out.stdout, /^up: docker tls:\/\//, 'its servers did run in Docker');
  assert.equal(await running(), before, 'none of its containers is left');
});

test.run();
