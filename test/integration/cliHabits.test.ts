/**
 * The CLI's habits, checked on the real binary: every command's help has
 * examples and shows the global flags, no command's own flag hides a global
 * one, and the completion script it prints completes in a real bash.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli } from '../support/cli.js';

/** Every command path, from the help of each level. */
async function commandPaths(path: string[] = []): Promise<string[][]> {
  const help = await runCli([...path, '--help']);
  assert.is(help.code, 0, `${path.join(' ')} --help: ${help.stderr}`);
  const commands = help.stdout.split('\nCommands:\n')[1]?.split('\n\n')[0] ?? '';
  const names = commands
    .split('\n')
    .map((l) => /^ {2}([a-z][a-z-]*)/.exec(l)?.[1])
    .filter((n): n is string => !!n && n !== 'help');
  const out: string[][] = [];
  for (const n of names) out.push([...path, n], ...(await commandPaths([...path, n])));
  return out;
}

test('every command has examples in its help, and shows the global flags', async () => {
  const paths = await commandPaths();
  assert.ok(paths.length >= 25, `${paths.length} commands found`);
  for (const p of paths) {
    const help = await runCli([...p, '--help']);
    assert.match(help.stdout, /\nExamples:\n {2}alcor /, `${p.join(' ')} --help has examples`);
    assert.match(help.stdout, /Global Options:[\s\S]*-o, --output <format>/, p.join(' '));
  }
});

test("no command's own flag shadows a global one (it would take the value meant for it)", async () => {
  const script = (await runCli(['completion', 'bash'])).stdout;
  const levels = [...script.matchAll(/^ {4}"([^"]*)"\) words="([^"]*)" ;;$/gm)].map((m) => ({
    path: m[1]!,
    words: m[2]!.split(' '),
  }));
  const globals = levels.find((l) => l.path === '')!.words.filter((w) => w.startsWith('-'));
  assert.ok(globals.includes('--output') && globals.includes('-o'), 'positive control');
  for (const l of levels.filter((x) => x.path !== ''))
    for (const w of l.words)
      if (w !== '--help')
        assert.not.ok(globals.includes(w), `alcor ${l.path} ${w} is also a global flag`);
});

test('the bash completion completes commands, subcommands, flags and -o values', async () => {
  const script = (await runCli(['completion', 'bash'])).stdout;
  const complete = (line: string): string[] => {
    const words = line.split(' ');
    const r = spawnSync(
      'bash',
      [
        '-c',
        `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _alcor_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      { encoding: 'utf8' },
    );
    assert.is(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean).sort();
  };
  assert.equal(complete('alcor ho'), ['hosts']);
  assert.ok(['list', 'show'].every((c) => complete('alcor vpc ').includes(c)));
  assert.equal(complete('alcor --context prod hosts --st'), ['--stale']);
  assert.equal(complete('alcor -o y'), ['yaml']);
  assert.equal(complete('alcor zzz'), [], 'nothing for what is not a command');
  const zsh = await runCli(['completion', 'zsh']);
  assert.match(zsh.stdout, /^autoload -U \+X bashcompinit && bashcompinit/);
  assert.is((await runCli(['completion', 'fish'])).code, 2, 'an unknown shell is a usage error');
});

test('a connection takes each part from flags, --context, the environment, the selected context, in that order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'alcor-contexts-'));
  const seed = join(dir, 'b.nk');
  writeFileSync(seed, 'not read until a command connects');
  const env = { ALCOR_CONFIG_DIR: dir, NATS_URL: '', NATS_NKEY_SEED_FILE: '', NATS_CA_FILE: '' };
  const show = async (args: string[], extra: Record<string, string> = {}) => {
    const r = await runCli([...args, '-o', 'json', 'context', 'show'], { ...env, ...extra });
    assert.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { url: string; nkey?: string; from: Record<string, string> };
  };
  // Positive control: nothing saved, nothing set — the default.
  assert.equal((await show([])).from, { url: 'default', auth: 'none', ca: 'none' });
  for (const args of [
    ['context', 'add', 'a', '--nats-url', 'nats://a.example:1', '--select'],
    ['context', 'add', 'b', '--nats-url', 'nats://b.example:2', '--nkey', seed],
  ])
    assert.is((await runCli(args, env)).code, 0);
  const selected = await show([]);
  assert.equal([selected.url, selected.from.url], ['nats://a.example:1', 'context a (selected)']);
  const fromEnv = await show([], { NATS_URL: 'nats://env.example:3' });
  assert.equal([fromEnv.url, fromEnv.from.url], ['nats://env.example:3', 'environment']);
  const named = await show(['--context', 'b'], { NATS_URL: 'nats://env.example:3' });
  assert.equal([named.url, named.nkey, named.from.auth], ['nats://b.example:2', seed, 'context b']);
  const mixed = await show(['--context', 'b', '--nats-url', 'nats://flag.example:4']);
  assert.equal(
    [mixed.url, mixed.from.url, mixed.from.auth],
    ['nats://flag.example:4', 'flag', 'context b'],
  );
  assert.is((await runCli(['--context', 'nope', 'context', 'show'], env)).code, 3);
  assert.is((await runCli(['context', 'add', 'x y', '--nats-url', 'nats://x:1'], env)).code, 2);
  rmSync(dir, { recursive: true, force: true });
});

test('--version, and an unknown command or flag is a usage error (exit 2)', async () => {
  assert.match((await runCli(['--version'])).stdout, /^alcor \d+\.\d+\.\d+ \(node /);
  assert.is((await runCli(['frobnicate'])).code, 2);
  assert.is((await runCli(['hosts', '--frob'])).code, 2);
  assert.is((await runCli(['-o', 'xml', 'hosts'])).code, 2);
});

test.run();
