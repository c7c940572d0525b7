/**
 * `alcor topology load|show` against a real nats-server, run as a user runs it
 * (a child process): files checked whole, bad ones refused with the field named
 * and nothing written, the registry read back.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kvm } from '@nats-io/kv';
import { kvBuckets, type HostRecord } from '../../shared/index.js';
import { isolatedNats, type IsolatedNats } from '../support/controller.js';
import { readJson, runCli } from '../support/cli.js';
import { releaseTestServers } from '../support/servers.js';

const test = suite<{ nats: IsolatedNats; dir: string }>('alcor topology');

test.before(async (ctx) => {
  ctx.nats = await isolatedNats();
  ctx.dir = mkdtempSync(join(tmpdir(), 'alcor-topology-'));
});

test.after(async (ctx) => {
  await ctx.nats?.stop();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
  await releaseTestServers();
});

const host = (i: number, binding: HostRecord['binding'] = { type: 'jetstream' }): HostRecord => ({
  hostId: `t-h${i}`,
  region: 'r1',
  az: 'az1',
  dc: 'dc1',
  cluster: `c${i % 2}`,
  underlayIp: `10.7.0.${i}`,
  binding,
});

function file(ctx: { dir: string }, name: string, content: string): string {
  const path = join(ctx.dir, name);
  writeFileSync(path, content);
  return path;
}

async function registered(ctx: { nats: IsolatedNats }): Promise<string[]> {
  const kv = await new Kvm(ctx.nats.nc).open(kvBuckets.hosts);
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  return keys.sort();
}

const cli = (ctx: { nats: IsolatedNats }, ...args: string[]) =>
  runCli(args, { NATS_URL: ctx.nats.url });

test('show before any load: not found, with what to do', async (ctx) => {
  const r = await cli(ctx, 'topology', 'show');
  assert.is(r.code, 3, r.stderr);
  assert.match(r.stderr, 'alcor topology load -f');
});

test('load a JSON file, then a YAML one that moves a host to Kafka; show reads it back', async (ctx) => {
  const hosts = [1, 2, 3, 4].map((i) => host(i));
  const json = file(ctx, 'hosts.json', JSON.stringify({ hosts }));
  const first = await cli(ctx, '--json', 'topology', 'load', '-f', json);
  assert.is(first.code, 0, first.stderr);
  assert.equal(readJson(first.stdout), {
    file: json,
    hosts: 4,
    added: 4,
    changed: 0,
    unchanged: 0,
    pruned: 0,
  });
  assert.equal(await registered(ctx), ['t-h1', 't-h2', 't-h3', 't-h4']);

  const yaml = file(
    ctx,
    'hosts.yaml',
    [
      '# the same hosts, t-h2 now on Kafka cluster a',
      ...[1, 2, 3, 4].map((i) =>
        [
          `- hostId: t-h${i}`,
          '  region: r1',
          '  az: az1',
          '  dc: dc1',
          `  cluster: c${i % 2}`,
          `  underlayIp: 10.7.0.${i}`,
          i === 2 ? '  binding: {type: kafka, cluster: a}' : '  binding: {type: jetstream}',
        ].join('\n'),
      ),
    ].join('\n'),
  );
  const second = await cli(ctx, 'topology', 'load', '--file', yaml);
  assert.is(second.code, 0, second.stderr);
  assert.match(second.stdout, '4 hosts — 0 added, 1 changed, 3 unchanged');

  const shown = await cli(ctx, '--json', 'topology', 'show', '--hosts');
  assert.is(shown.code, 0, shown.stderr);
  const report = readJson<{
    hosts: number;
    bindings: Record<string, number>;
    clusters: Array<{ cluster: string; hosts: number }>;
    list: Array<Omit<HostRecord, 'hostId'> & { host_id: string }>;
  }>(shown.stdout);
  assert.is(report.hosts, 4);
  assert.equal(report.bindings, { jetstream: 3, 'kafka:a': 1 });
  assert.equal(
    report.clusters.map((c) => [c.cluster, c.hosts]),
    [
      ['r1.az1.dc1.c0', 2],
      ['r1.az1.dc1.c1', 2],
    ],
  );
  assert.equal(report.list.find((h) => h.host_id === 't-h2')?.binding, {
    type: 'kafka',
    cluster: 'a',
  });
  const text = await cli(ctx, 'topology', 'show');
  assert.match(text.stdout, '4 hosts in 2 clusters; jetstream 3, kafka:a 1');
});

test('bad files are refused with the place of the fault, and write nothing', async (ctx) => {
  const before = await registered(ctx);
  const cases: Array<[string, string, number, string]> = [
    ['missing.json', '', 3, 'cannot read it (ENOENT)'],
    ['broken.json', '{"hosts": [', 2, 'not JSON'],
    ['broken.yaml', 'hosts:\n  - hostId: a\n   region: [', 2, 'not YAML at line'],
    // 20,000 levels: the YAML composer's recursion used to abort the process.
    [
      'deep.yaml',
      `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
      2,
      'nested deeper than 64 levels (too_deep)',
    ],
    // The field's path said once.
    ['noregion.yaml', 'hosts:\n  - hostId: a\n', 2, 'noregion.yaml: hosts.0.region: required'],
    [
      'badbinding.yaml',
      JSON.stringify({ hosts: [host(10), { ...host(11), binding: { type: 'mqtt' } }] }),
      2,
      'hosts.1.binding.type',
    ],
    ['empty.json', '{"hosts": []}', 2, '(too_few)'],
    [
      'twice.json',
      JSON.stringify([host(12), { ...host(12), underlayIp: '10.7.1.1' }]),
      2,
      '1.hostId: t-h12 is also entry 0 (duplicate_value)',
    ],
    [
      'takenip.json',
      JSON.stringify([{ ...host(13), underlayIp: '10.7.0.1' }]),
      2,
      'is the underlay IP of registered host t-h1',
    ],
  ];
  for (const [name, content, code, says] of cases) {
    const path = name === 'missing.json' ? join(ctx.dir, name) : file(ctx, name, content);
    const r = await cli(ctx, 'topology', 'load', '-f', path);
    assert.is(r.code, code, `${name}: ${r.stderr}`);
    assert.match(r.stderr, says, name);
  }
  const usage = await cli(ctx, 'topology', 'load');
  assert.is(usage.code, 2, 'no --file is a usage error');
  assert.equal(await registered(ctx), before, 'nothing written by any bad file');
});

test('--prune deletes the hosts the file no longer lists', async (ctx) => {
  const path = file(ctx, 'two.json', JSON.stringify([host(1), host(3)]));
  const r = await cli(ctx, '--json', 'topology', 'load', '-f', path, '--prune');
  assert.is(r.code, 0, r.stderr);
  assert.is(readJson<{ pruned: number }>(r.stdout).pruned, 2);
  assert.equal(await registered(ctx), ['t-h1', 't-h3']);
});

test('NATS unreachable: exit 1 and what to do', async (ctx) => {
  const path = file(ctx, 'one.json', JSON.stringify([host(1)]));
  const r = await runCli(['topology', 'load', '-f', path], { NATS_URL: 'nats://127.0.0.1:1' });
  assert.is(r.code, 1);
  assert.match(r.stderr, 'cannot reach NATS');
});

test.run();
