/**
 * The main job as a user runs it, and docs/runbook.md exactly as written on it:
 * the demo at CI size with --keep-running (the runbook's first command), its
 * summary checked; then every `npx alcor` line of the runbook's `sh` blocks, in
 * the order it gives them, through bash from the repository, each ending 0; then
 * Ctrl-C: the demo's contexts are gone, the run folder and its logs are kept.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot, runDir } from '../../infra/index.js';
import { eventually, within } from '../support/eventually.js';

const DEMO = './scripts/demo.sh --once --keep-running';

interface Ctx {
  config: string;
  output: () => string;
  exited: Promise<number | null>;
  kill: (signal: NodeJS.Signals) => void;
}

const runbook = suite<Ctx>('docs/runbook.md, as written, on the running demo');

runbook.before(async (ctx) => {
  const text = readFileSync(join(repoRoot, 'docs/runbook.md'), 'utf8');
  assert.ok(text.includes(DEMO), `the runbook starts the demo with ${DEMO}`);
  ctx.config = runDir('alcor-runbook-config-');
  // The demo as the runbook starts it (scripts/demo.sh is setup, then this).
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'services/demo/main.ts', '--once', '--keep-running'],
    {
      cwd: repoRoot,
      env: { ...process.env, ALCOR_CONFIG_DIR: ctx.config },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (out += b.toString('utf8')));
  ctx.output = () => out;
  ctx.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  ctx.kill = (signal) => child.kill(signal);
  let ended = false;
  void ctx.exited.then(() => (ended = true));
  await eventually(
    () => {
      if (ended) throw new Error(`the demo ended before READY:\n${out.slice(-4000)}`);
      return /^READY$/m.test(out) || undefined;
    },
    { timeoutMs: 600_000, intervalMs: 250, what: 'the demo READY' },
  );
});

runbook.after((ctx) => {
  ctx.kill('SIGKILL'); // only if a test failed before its Ctrl-C
  rmSync(ctx.config, { recursive: true, force: true });
});

runbook('the demo at CI size: every intent programmed, the oracle clean, RESULT OK', (ctx) => {
  const text = ctx.output();
  const programmed = /programmed: (\d+)\/(\d+) accepted intents \((\d+) incomplete/.exec(text);
  assert.ok(programmed && programmed[1] === programmed[2] && Number(programmed[2]) > 0, text);
  assert.match(text, /oracle: CLEAN — (\d+)\/\1 hosts/);
  // Three hosts behind ACA bridges (one per binding), their test ACAs checked in Alcor's schema.
  assert.match(text, /ACAs: CLEAN — 3\/3 test ACAs/);
  assert.match(text, /aca\/kafka:a +1 hosts/);
  assert.match(text, /refused with the expected reason: (\d+)\/\1\b/);
  assert.match(text, 'RESULT: OK');
  assert.match(text, /^ALCOR_CONTEXT=demo$/m);
  assert.match(text, /^ALCOR_CONTEXT=demo-admin$/m);
});

/** The `npx alcor` lines of the runbook's `sh` blocks, in order. */
function runbookCommands(): string[] {
  const text = readFileSync(join(repoRoot, 'docs/runbook.md'), 'utf8');
  const blocks = [...text.matchAll(/^ *```sh\n([\s\S]*?)^ *```$/gm)].map((m) => m[1]!);
  return blocks
    .flatMap((b) => b.split('\n'))
    .map((l) => l.trim())
    .filter((l) => l.startsWith('npx alcor '));
}

runbook('every alcor command of the runbook runs as written and ends 0', (ctx) => {
  const commands = runbookCommands();
  assert.ok(commands.length >= 15, `${commands.length} commands`);
  assert.is(
    commands[0],
    commands.find((c) => c.startsWith('npx alcor context use demo')),
  );
  const env = {
    ...process.env,
    ALCOR_CONFIG_DIR: ctx.config,
    // As in a fresh terminal: only the context says where the demo is.
    NATS_URL: '',
    NATS_NKEY_SEED_FILE: '',
    NATS_CA_FILE: '',
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
  };
  const seen: Record<string, string> = {};
  for (const command of commands) {
    const r = spawnSync('bash', ['-c', command], {
      cwd: repoRoot,
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.is(r.status, 0, `${command}\n${r.stdout}\n${r.stderr}`);
    assert.ok(r.stdout.trim().length > 0, `${command}: printed nothing`);
    seen[command] = r.stdout;
  }
  const out = (prefix: string): string =>
    Object.entries(seen).find(([c]) => c.startsWith(prefix))?.[1] ?? '';
  // The story holds on the demo: p2 of vpc-0007 is bound on h-c4-3, a Kafka-bound host.
  assert.match(out('npx alcor vpc show vpc-0007 '), /p2\s.*h-c4-3/);
  assert.match(out('npx alcor trace vpc-0007-007'), 'h-c4-3');
  assert.match(out('npx alcor context show'), '(context demo (selected))');
  assert.match(out('npx alcor hosts '), / 0 stale, 0 failed/);
});

runbook(
  'Ctrl-C: the demo stops, its contexts go, the run folder and its logs stay',
  async (ctx) => {
    ctx.kill('SIGINT');
    const code = await within(120_000, 'the demo stopping after Ctrl-C', ctx.exited);
    assert.is(code, 130, ctx.output().slice(-2000));
    const dir = /run folder: (.+)$/m.exec(ctx.output())?.[1];
    assert.ok(dir, 'the run folder is named');
    for (const log of ['controller-1.log', 'southbound-1.log', 'nca.log'])
      assert.ok(existsSync(join(dir, log)), `${log} kept`);
    assert.not.ok(existsSync(join(dir, 'alcor.env')), 'the endpoints of stopped servers go');
    assert.not.ok(existsSync(join(ctx.config, 'context', 'demo.json')), 'context demo removed');
    assert.not.ok(existsSync(join(ctx.config, 'context', 'demo-admin.json')));
    if (dir.includes('alcor-')) rmSync(dir, { recursive: true, force: true });
  },
);

runbook.run();
