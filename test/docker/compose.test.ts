/**
 * The compose deployment (docker-compose.yml) brought up on a real Docker engine
 * with the images `./scripts/docker-images.sh` builds: its scenario job ends with
 * every intent programmed and the oracle clean, read from what the job printed and
 * from the services' published /metrics; every process runs as a non-root user and
 * reads only its own role's credentials; NATS speaks TLS verified with the
 * deployment's CA, refuses a connection without a key and takes one with the
 * client's (the positive control). Torn down at the end.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parse as parseYaml } from 'yaml';
import { connectNats, metricSamples, repoRoot } from '../../infra/index.js';
import { run } from '../../infra/local/exec.js';
import { ScenarioSchema } from '../../services/demo/scenario.js';
import { writeScenarioFiles } from '../../services/demo/run.js';

const test = suite('docker compose deployment');
const project = `alcortest${process.pid}`;

/** `docker compose` (the plugin) where there is one, else `docker-compose`. */
async function composeCommand(): Promise<[string, string[]]> {
  const plugin = await run('docker', ['compose', 'version'], { timeoutMs: 20_000 }).catch(
    () => undefined,
  );
  return plugin ? ['docker', ['compose']] : ['docker-compose', []];
}
let compose: (args: string[], timeoutMs?: number) => Promise<string>;
const docker = async (args: string[], timeoutMs = 60_000): Promise<string> =>
  (await run('docker', args, { timeoutMs })).stdout.trim();
const containerOf = async (service: string): Promise<string> =>
  (await compose(['ps', '-q', service])).trim();

/** The scenario the compose file runs, expanded here as its init job does. */
const scenario = ScenarioSchema.parse(
  parseYaml(readFileSync(join(repoRoot, 'deploy/compose/scenario.yaml'), 'utf8')),
);
const expected = writeScenarioFiles(scenario, mkdtempSync(join(tmpdir(), 'alcor-compose-')));
const intents = expected.expanded.vpcs.flatMap((v) => v.intents).length;
const hosts = expected.expanded.hosts.length;

const LONG_RUNNING = [
  'nats',
  'redis',
  'kafka-a',
  'kafka-b',
  'controller-1',
  'controller-2',
  'southbound-1',
  'southbound-2',
  'nca',
];
let scenarioLog = '';
let scenarioExit = -1;

test.before(async () => {
  const [command, prefix] = await composeCommand();
  compose = async (args, timeoutMs = 120_000) =>
    (await run(command, [...prefix, '-p', project, ...args], { cwd: repoRoot, timeoutMs })).stdout;
  await compose(['up', '-d'], 600_000);
  const id = await containerOf('scenario');
  // The job applies the intents, waits until they are programmed, runs the oracle.
  const deadline = Date.now() + 300_000;
  for (;;) {
    const [status, code] = (
      await docker(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', id])
    ).split(' ');
    if (status === 'exited') {
      scenarioExit = Number(code);
      break;
    }
    if (Date.now() > deadline) throw new Error('the scenario job did not end within 300 s');
    await new Promise((r) => setTimeout(r, 1000));
  }
  scenarioLog = (await run('docker', ['logs', id], { timeoutMs: 30_000 })).stdout;
});

test.after(async () => {
  if (!compose) return;
  if (scenarioExit !== 0) {
    // What the services said, for the failure.
    for (const s of ['controller-1', 'southbound-1', 'nca'])
      process.stdout.write(await compose(['logs', '--tail', '30', s]).catch(() => ''));
  }
  await compose(['down', '-v', '--remove-orphans'], 300_000).catch((err: Error) =>
    process.stdout.write(`compose down: ${err.message}\n`),
  );
});

test('the scenario job programs every intent and the oracle is clean', () => {
  process.stdout.write(scenarioLog);
  assert.is(scenarioExit, 0, 'the scenario job exits 0');
  assert.match(
    scenarioLog,
    `${intents} intents — ${intents} accepted, 0 rejected, 0 pending`,
    'every intent of the scenario accepted',
  );
  assert.match(scenarioLog, `programmed: ${intents}, incomplete: 0, still pending: 0`);
  assert.match(scenarioLog, `${hosts} host(s) converged, 0 diverged, 0 did not answer`);
  assert.match(scenarioLog, 'RESULT: OK');
});

test('the published /metrics agree: decisions counted by the controllers, hosts by the fleet', async () => {
  const text = async (port: number): Promise<string> =>
    (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const accepted = (t: string): number =>
    metricSamples(t, 'alcor_intents_decided_total')
      .filter((s) => s.labels.outcome === 'accepted')
      .reduce((n, s) => n + s.value, 0);
  assert.is(accepted(await text(9471)) + accepted(await text(9472)), intents);
  const fleet = metricSamples(await text(9491), 'alcor_nca_hosts').reduce((n, s) => n + s.value, 0);
  assert.is(fleet, hosts);
});

test('every process runs as user alcor (10001), healthy', async () => {
  for (const service of LONG_RUNNING) {
    const id = await containerOf(service);
    assert.is(await docker(['exec', id, 'id', '-u']), '10001', `${service} runs as 10001`);
    assert.is(
      await docker(['inspect', '-f', '{{.State.Health.Status}}', id]),
      'healthy',
      `${service} is healthy`,
    );
  }
});

test("each process sees only its own role's credentials", async () => {
  const has = async (service: string, path: string): Promise<boolean> =>
    docker(['exec', await containerOf(service), 'test', '-r', path]).then(
      () => true,
      () => false,
    );
  assert.ok(await has('controller-1', '/secrets/controller/controller.nk'), 'positive control');
  assert.not.ok(await has('nca', '/secrets/controller/controller.nk'));
  assert.not.ok(await has('controller-1', '/secrets/southbound/kafka-a/southbound.password'));
  assert.ok(await has('southbound-1', '/secrets/southbound/kafka-a/southbound.password'));
  assert.not.ok(await has('southbound-1', '/secrets/operator/kafka-a/admin.password'));
  assert.not.ok(await has('nats', '/secrets/operator/client.nk'), 'no seed on the server');
});

test("NATS speaks TLS only, verified with the deployment's CA; refuses a connection without a key and takes the client's", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'alcor-compose-seed-'));
  const scenarioJob = await containerOf('scenario');
  for (const file of ['client.nk', 'ca.crt'])
    await docker(['cp', `${scenarioJob}:/secrets/operator/${file}`, dir]);
  const caFile = join(dir, 'ca.crt');
  const url = 'tls://127.0.0.1:4222';
  const attempt = (options: { nkeySeedFile?: string; caFile?: string }): Promise<string> =>
    connectNats(url, { name: 'compose-test', reconnect: false, nkeySeedFile: '', ...options }).then(
      async (nc) => {
        await nc.flush();
        await nc.close();
        return 'ok';
      },
      (err: Error) => err.message,
    );
  assert.is(await attempt({ nkeySeedFile: join(dir, 'client.nk'), caFile }), 'ok');
  assert.match(await attempt({ caFile }), /auth/i, 'no key: refused');
  assert.match(
    await attempt({
      nkeySeedFile: join(dir, 'client.nk'),
      caFile: '/etc/ssl/certs/ca-certificates.crt',
    }),
    /certificate/i,
    'a client trusting other CAs refuses the server',
  );
});

test.run();
