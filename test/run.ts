/**
 * The test command (README, .ci/run): static checks, unit tests, then integration
 * tests against real servers provisioned once for the run. Every suite process is
 * bounded in time. Ends with the line `N passed, N failed`.
 *
 *   tsx test/run.ts [--only checks|unit|integration|fault|fuzz|demo|docker] [--keep-data]
 *
 * `--only docker` is the Docker tier (./scripts/test-docker.sh), not part of the
 * default run.
 *
 * The fault suite (test/fault, short version) and the bad-input fuzzer (test/fuzz)
 * run on servers of their own: they kill and restart them.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensurePromtool } from '../infra/local/promtool.js';
import {
  describeServers,
  onShutdown,
  provisionServers,
  repoRoot,
  type Servers,
} from '../infra/index.js';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    'keep-data': { type: 'boolean', default: false },
  },
});

interface Tally {
  name: string;
  passed: number;
  failed: number;
  skipped: number;
  note?: string;
}

const tallies: Tally[] = [];
const bin = (name: string): string => join(repoRoot, 'node_modules', '.bin', name);
// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');

interface Outcome {
  code: number | null;
  output: string;
  timedOut: boolean;
}

function runProcess(
  command: string,
  argv: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs: number; doneMarker?: RegExp; echo?: boolean },
): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(command, argv, {
      cwd: repoRoot,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let timedOut = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      output += text;
      if (options.echo !== false) process.stdout.write(text);
      // uvu never forces an exit: if a suite leaves a handle open after its totals,
      // give it a moment and then end it (the totals are already known).
      if (options.doneMarker && !graceTimer && options.doneMarker.test(stripAnsi(output))) {
        graceTimer = setTimeout(() => {
          output +=
            '\n[runner] suite process did not exit 15 s after its totals (open handles); killed\n';
          child.kill('SIGKILL');
        }, 15_000);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, output: `${output}\n${err.message}`, timedOut: false });
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (graceTimer) clearTimeout(graceTimer);
      resolve({ code, output, timedOut });
    });
  });
}

async function check(name: string, command: string, argv: string[]): Promise<void> {
  const started = Date.now();
  const out = await runProcess(command, argv, { timeoutMs: 600_000, echo: false });
  const ok = out.code === 0 && !out.timedOut;
  if (!ok) process.stdout.write(out.output);
  console.log(`${ok ? '✔' : '✘'} ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  tallies.push({ name, passed: ok ? 1 : 0, failed: ok ? 0 : 1, skipped: 0 });
}

function testDirs(dir: string): boolean {
  const full = join(repoRoot, 'test', dir);
  return (
    existsSync(full) &&
    readdirSync(full, { recursive: true }).some((f) => String(f).endsWith('.test.ts'))
  );
}

async function uvu(
  name: string,
  dir: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<void> {
  console.log(`\n── ${name} (test/${dir}) ──`);
  if (!testDirs(dir)) {
    tallies.push({
      name,
      passed: 0,
      failed: 1,
      skipped: 0,
      note: 'no test files: a suite that ran nothing fails',
    });
    console.log(`✘ ${name}: no test files`);
    return;
  }
  const out = await runProcess(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'node_modules', 'uvu', 'bin.js'),
      join('test', dir),
      '\\.test\\.ts$',
      '--no-color',
    ],
    { env: { ...env, FORCE_COLOR: '0' }, timeoutMs, doneMarker: /Duration:/ },
  );
  const text = stripAnsi(out.output);
  const total = Number(/Total:\s+(\d+)/.exec(text)?.[1] ?? NaN);
  const passed = Number(/Passed:\s+(\d+)/.exec(text)?.[1] ?? NaN);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(text)?.[1] ?? 0);
  if (Number.isNaN(total) || Number.isNaN(passed)) {
    const why = out.timedOut
      ? `timed out after ${timeoutMs / 1000} s`
      : `exited ${String(out.code)} before printing totals`;
    tallies.push({ name, passed: 0, failed: 1, skipped: 0, note: why });
    console.log(`✘ ${name}: ${why}`);
    return;
  }
  const failed = total - passed;
  const tally: Tally = { name, passed, failed, skipped };
  if (total === 0) {
    tally.failed = 1;
    tally.note = 'ran no test';
  } else if (out.timedOut) {
    tally.failed += 1;
    tally.note = 'timed out';
  }
  tallies.push(tally);
}

let servers: Servers | undefined;
let keepData = args['keep-data'] ?? false;
onShutdown(async () => {
  await servers?.stop({ keepData: true });
});

const only = args.only;
// The servers of this command are local processes (its tests kill and restart them,
// and check the users and ACLs local provisioning sets up); the Docker way to them
// is the Docker tier's (`--only docker`, ./scripts/test-docker.sh). ALCOR_PROVISION
// set by the caller wins.
process.env.ALCOR_PROVISION ??= 'local';
const started = Date.now();
try {
  if (!only || only === 'checks') {
    console.log('── static checks ──');
    await check('typecheck (tsc --noEmit)', bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']);
    await check('lint (eslint, type-aware, layering rules)', bin('eslint'), [
      '.',
      '--max-warnings',
      '0',
    ]);
    await check('format (prettier --check)', bin('prettier'), [
      '--check',
      '.',
      '--log-level',
      'warn',
    ]);
    // docker-compose.yml as compose reads it (the plugin, or docker-compose).
    const plugin = await runProcess('docker', ['compose', 'version'], {
      timeoutMs: 20_000,
      echo: false,
    });
    const standalone =
      plugin.code === 0
        ? undefined
        : await runProcess('docker-compose', ['version'], { timeoutMs: 20_000, echo: false });
    if (plugin.code === 0) {
      await check('docker compose config', 'docker', ['compose', 'config', '--quiet']);
    } else if (standalone?.code === 0) {
      await check('docker compose config', 'docker-compose', ['config', '--quiet']);
    } else {
      console.log('- docker compose config: skipped (no docker compose on this machine)');
      tallies.push({
        name: 'docker compose config',
        passed: 0,
        failed: 0,
        skipped: 1,
        note: 'no docker compose',
      });
    }
    // The systemd units (deploy/systemd), as systemd reads them: any complaint fails.
    const analyze = await runProcess('systemd-analyze', ['--version'], {
      timeoutMs: 20_000,
      echo: false,
    });
    if (analyze.code === 0) {
      const started = Date.now();
      const dir = mkdtempSync(join(tmpdir(), 'alcor-units-'));
      const complaints: string[] = [];
      for (const unit of readdirSync(join(repoRoot, 'deploy/systemd'))) {
        // A template is checked as one instance of it.
        const file = join(dir, unit.replace('@.service', '@check.service'));
        copyFileSync(join(repoRoot, 'deploy/systemd', unit), file);
        const out = await runProcess('systemd-analyze', ['verify', file], {
          timeoutMs: 60_000,
          echo: false,
        });
        if (out.code !== 0 || out.output.trim() !== '')
          complaints.push(`${unit}: ${out.output.trim() || `exit ${out.code}`}`);
      }
      rmSync(dir, { recursive: true, force: true });
      const ok = complaints.length === 0;
      if (!ok) console.log(complaints.join('\n'));
      console.log(
        `${ok ? '✔' : '✘'} systemd units (systemd-analyze verify) (${((Date.now() - started) / 1000).toFixed(1)} s)`,
      );
      tallies.push({ name: 'systemd units', passed: ok ? 1 : 0, failed: ok ? 0 : 1, skipped: 0 });
    } else {
      console.log('- systemd units: skipped (no systemd-analyze on this machine)');
      tallies.push({
        name: 'systemd units',
        passed: 0,
        failed: 0,
        skipped: 1,
        note: 'no systemd-analyze',
      });
    }
    // The alert rules (deploy/prometheus) as Prometheus reads them.
    const promtool = await ensurePromtool().catch((err: unknown) => {
      console.log(`✘ promtool could not be built: ${(err as Error).message}`);
      tallies.push({ name: 'promtool build', passed: 0, failed: 1, skipped: 0 });
      return null;
    });
    if (promtool)
      await check('alert rules (promtool check rules)', promtool, [
        'check',
        'rules',
        'deploy/prometheus/alerts.yml',
      ]);
    else if (promtool === undefined) {
      console.log('- alert rules (promtool): skipped (no Go toolchain to build promtool)');
      tallies.push({
        name: 'alert rules (promtool)',
        passed: 0,
        failed: 0,
        skipped: 1,
        note: 'no Go toolchain',
      });
    }
  }
  if (!only || only === 'unit') {
    await uvu('unit', 'unit', process.env, 600_000);
  }
  if (!only || only === 'integration') {
    console.log('\n── provisioning real servers ──');
    const t0 = Date.now();
    try {
      servers = await provisionServers();
      for (const line of describeServers(servers)) console.log(`  ${line}`);
      console.log(
        `  ready in ${((Date.now() - t0) / 1000).toFixed(1)} s; data and logs in ${servers.dir}`,
      );
      await uvu(
        'integration',
        'integration',
        { ...process.env, ...servers.env(), ALCOR_TEST_SERVERS_DIR: servers.dir },
        1_800_000,
      );
    } catch (err) {
      console.log(`✘ provisioning failed: ${(err as Error).message}`);
      tallies.push({ name: 'provisioning', passed: 0, failed: 1, skipped: 0 });
    }
  }
} finally {
  const failedAny = tallies.some((t) => t.failed > 0);
  keepData ||= failedAny;
  await servers?.stop({ keepData });
  if (servers && keepData) console.log(`server data and logs kept in ${servers.dir}`);
}

/** This environment without the servers in it: for what provisions its own. */
function ownServersEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(NATS_|ALCOR_NATS_|REDIS_URL|KAFKA_)/.test(name)) delete env[name];
  }
  return env;
}

// Faults and bad input, each on a system of its own (servers and service processes).
// The Docker tier (only when asked: it needs a Docker engine and the images of
// ./scripts/docker-images.sh): the compose deployment and the testcontainers path.
if (only === 'docker') {
  await uvu('docker', 'docker', ownServersEnv(), 1_800_000);
}

if (!only || only === 'fault') await uvu('fault (short)', 'fault', ownServersEnv(), 1_500_000);
if (!only || only === 'fuzz') await uvu('bad input (fuzz)', 'fuzz', ownServersEnv(), 900_000);

// The main job as a user runs it, on servers of its own (test/demo): interrupted
// early, and at CI size with --keep-running, its summary checked, the runbook's
// walkthrough run on it as written, then stopped with Ctrl-C.
if (!only || only === 'demo') await uvu('demo and the runbook', 'demo', ownServersEnv(), 1_200_000);

console.log('\n── summary ──');
for (const t of tallies) {
  console.log(
    `  ${t.name}: ${t.passed} passed, ${t.failed} failed${t.skipped ? `, ${t.skipped} skipped` : ''}${t.note ? ` (${t.note})` : ''}`,
  );
}
const passed = tallies.reduce((n, t) => n + t.passed, 0);
const failed = tallies.reduce((n, t) => n + t.failed, 0) + (tallies.length === 0 ? 1 : 0);
const skipped = tallies.reduce((n, t) => n + t.skipped, 0);
console.log(`  took ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
