/**
 * The scaled-out set-ups on Docker (infra/local/container.ts): with
 * ALCOR_PROVISION=docker, a three-node NATS cluster, three-broker Kafka clusters
 * and a Redis Cluster run as containers of this repository's images on this
 * machine's network; the demo ends with its oracle clean on them; a broker killed
 * is killed in the engine and comes back; nothing is left behind.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { provisionServers, repoRoot } from '../../infra/index.js';
import { probeKafka } from '../../infra/kafka/probe.js';
import { run } from '../../infra/local/exec.js';
import { eventually } from '../support/index.js';

const test = suite('scaled-out set-ups in Docker');

const running = async (): Promise<string[]> =>
  (await run('docker', ['ps', '--format', '{{.Image}}'], { timeoutMs: 30_000 })).stdout
    .split('\n')
    .filter((image) => image.startsWith('alcor-southbound/'));

/** The environment of a run that provisions its own servers, in Docker, scaled out. */
function scaledOutEnv(more: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env))
    if (/^(NATS_|ALCOR_NATS_|REDIS_URL|KAFKA_|ALCOR_REDIS_|ALCOR_KAFKA_)/.test(name))
      delete env[name];
  return {
    ...env,
    ALCOR_PROVISION: 'docker',
    ALCOR_NATS_NODES: '3',
    ALCOR_KAFKA_BROKERS_PER_CLUSTER: '3',
    ALCOR_REDIS_CLUSTER: '1',
    ...more,
  };
}

test('the demo on a NATS cluster, 3-broker Kafka clusters and a Redis Cluster, all containers', async () => {
  const before = await running();
  const out = spawnSync(process.execPath, ['--import', 'tsx', 'services/demo/main.ts', '--once'], {
    cwd: repoRoot,
    env: scaledOutEnv(),
    encoding: 'utf8',
    timeout: 900_000,
  });
  const text = `${out.stdout}${out.stderr}`;
  process.stdout.write(text);
  assert.is(out.status, 0, 'the demo exits 0');
  for (const server of [
    'nats-server cluster of 3',
    'redis cluster of 3 masters, 3 replicas',
    'kafka cluster a',
    'kafka cluster b',
  ])
    assert.match(text, new RegExp(`✔ ${server}\\s.*\\(docker\\)`), `${server} ran in Docker`);
  assert.match(text, /oracle: CLEAN — (\d+)\/\1 hosts/);
  assert.match(text, /RESULT: OK/);
  assert.equal(await running(), before, 'its containers are gone after the demo');
});

test('a broker killed is killed in the engine, and comes back', async () => {
  const before = await running();
  const servers = await provisionServers({ env: scaledOutEnv({ KAFKA_CLUSTERS: 'a' }) });
  try {
    const kafka = servers.local.kafka.a!;
    assert.is(servers.kafka.a!.source, 'docker');
    assert.is(kafka.nodes.length, 3);
    // Each node's process is the container's client, not a broker of this machine.
    for (const node of kafka.nodes)
      assert.is(readFileSync(`/proc/${node.process.pid}/comm`, 'utf8').trim(), 'docker');
    const kafkaImages = async () =>
      (await running()).filter((i) => i.startsWith('alcor-southbound/kafka')).length;
    const up = await kafkaImages();
    const sasl = kafka.users?.admin ?? null;
    const ssl = kafka.caFile ? { ca: [readFileSync(kafka.caFile, 'utf8')] } : null;
    const [first, ...others] = kafka.nodes;
    await first!.kill();
    assert.is(await kafkaImages(), up - 1, 'its container is gone');
    // The others answer meanwhile (once the client has left the lost one).
    await eventually(
      () => probeKafka('a', [...others.map((n) => n.broker)], 5_000, sasl, ssl).then(() => true),
      { timeoutMs: 60_000, what: 'the two other brokers answering' },
    );
    await first!.revive();
    assert.is(await kafkaImages(), up, 'a container again');
    await probeKafka('a', [first!.broker], 10_000, sasl, ssl);
  } finally {
    await servers.stop();
  }
  assert.equal(await running(), before, 'none of its containers is left');
});

test('an engine elsewhere is refused for the scaled-out set-ups, naming why', async () => {
  const err = await provisionServers({
    env: scaledOutEnv({ DOCKER_HOST: 'tcp://192.0.2.1:2375', KAFKA_CLUSTERS: 'a' }),
  }).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(err, 'refused');
  assert.match(err.message, /not this machine's/);
});

test.run();
