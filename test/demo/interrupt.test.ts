/**
 * The demo interrupted (Ctrl-C) once its services are up, run as a user runs it:
 * it stops the services cleanly, keeps the run folder with every log (the
 * servers' data goes), says where it is on stderr and exits 130. The smallest
 * scenario that starts every kind of service: one of each, one Kafka cluster.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot } from '../../infra/index.js';
import { eventually, within } from '../support/eventually.js';

const SCENARIO = `seed: 1
topology: { regions: [r1], clusters: 1, hosts: 2, bindings: [jetstream] }
workload:
  { vpcs: 1, subnets: 1, securityGroups: 1, ports: 1, clustersPerVpc: 1, routes: 0,
    migrate: 0, delete: 0, mistakes: 0 }
`;
const SERVICE_LOGS = ['controller-1.log', 'southbound-1.log', 'nca.log'];

test('Ctrl-C once the services are up keeps the run folder and its logs, prints where, exits 130', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'alcor-demo-interrupt-'));
  const scenario = join(scratch, 'scenario.yaml');
  writeFileSync(scenario, SCENARIO);
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'services/demo/main.ts',
      ...['--scenario', scenario, '--controllers', '1', '--southbounds', '1'],
      ...['--rate', '1', '--log-level', 'info'],
    ],
    {
      cwd: repoRoot,
      env: { ...process.env, ALCOR_PROVISION: process.env.ALCOR_PROVISION ?? 'local' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let dir: string | undefined;
  try {
    // "services ready in … (logs in <run folder>)": the services are up.
    dir = await eventually(() => /services ready in .*\(logs in (.+)\)\n/.exec(stdout)?.[1], {
      timeoutMs: 240_000,
      intervalMs: 100,
      what: `the services ready line; stdout:\n${stdout}\nstderr:\n${stderr}`,
    });
    child.kill('SIGINT');
    const { code } = await within(90_000, 'the demo stopping after SIGINT', exited);

    assert.is(code, 130, `exit code; stderr:\n${stderr}`);
    assert.ok(stderr.includes(`demo: run folder: ${dir}\n`), `the folder on stderr:\n${stderr}`);
    assert.ok(existsSync(dir), `${dir} exists`);
    const listed = /demo: {3}logs: (.+)\n/.exec(stderr)?.[1]?.split(', ') ?? [];
    for (const log of [...SERVICE_LOGS, join('nats', 'nats-server.log')]) {
      assert.ok(existsSync(join(dir, log)), `${log} kept`);
      assert.ok(listed.includes(log), `${log} listed in ${JSON.stringify(listed)}`);
    }
    // Each service stopped cleanly (SIGTERM, its shutdown ran), not killed at exit.
    for (const log of SERVICE_LOGS)
      assert.match(readFileSync(join(dir, log), 'utf8'), /"msg":"stopped"/, `${log}: stopped`);
    // The servers' data went with them; the workload's files stay.
    assert.not.ok(existsSync(join(dir, 'nats', 'jetstream')), 'JetStream store removed');
    assert.ok(existsSync(join(dir, 'intents.json')), 'intents.json kept');
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await within(60_000, 'the demo stopping after SIGTERM', exited).catch(() =>
        child.kill('SIGKILL'),
      );
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  }
});

test.run();
