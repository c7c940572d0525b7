/**
 * `alcor apply -f` run as a user runs it (a child process) against a real
 * nats-server, a controller and the hosts' agents: JSON, YAML and stdin, waiting
 * for decisions or for `programmed`, exit codes that say whether everything took,
 * and bad files and flags refused with what is wrong.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readJson, runCli, startCliSystem, type CliSystem } from '../support/cli.js';
import { isolatedNats } from '../support/controller.js';
import { unique } from '../support/names.js';
import { releaseTestServers } from '../support/servers.js';
import { fleet, vpcWithPorts } from '../support/workload.js';

interface Ctx extends CliSystem {
  dir: string;
}

const HOSTS = fleet(1, 3, 'cli');
const test = suite<Ctx>('alcor apply');

test.before(async (ctx) => {
  Object.assign(ctx, await startCliSystem(HOSTS, 'cli'));
  ctx.dir = mkdtempSync(join(tmpdir(), 'alcor-apply-'));
});

test.after(async (ctx) => {
  await ctx.stop?.();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
  await releaseTestServers();
});

const cli = (ctx: Ctx, args: string[], stdin?: string) => ctx.cli(args, stdin);

function file(ctx: Ctx, name: string, content: string): string {
  const path = join(ctx.dir, name);
  writeFileSync(path, content);
  return path;
}

/** A VPC, its subnet and a port on the second host, under ids of their own. */
const vpcIntents = (vpcId: string) =>
  vpcWithPorts(vpcId, [HOSTS[1]!.hostId]).map((i) => ({ ...i, id: unique('i') }));

test('a YAML list with --wait programmed: per-intent answers, exit 4 for the one refused', async (ctx) => {
  const vpcId = unique('vpc');
  const good = vpcIntents(vpcId);
  const dup = { ...good[2]!, id: unique('i') };
  const yaml = [...good, dup]
    .map(
      (i) =>
        `- id: ${i.id}\n  kind: ${i.kind}\n  vpcId: ${i.vpcId}\n  spec: ${JSON.stringify(i.spec)}`,
    )
    .join('\n');
  const r = await cli(ctx, [
    '--json',
    'apply',
    '-f',
    file(ctx, 'intents.yaml', yaml),
    '--wait',
    'programmed',
  ]);
  assert.is(r.code, 4, r.stderr);
  const report = readJson<{
    intents: number;
    accepted: number;
    rejected: number;
    rejected_by: Record<string, number>;
    programmed: { programmed: number };
    items: Array<{ id: string; outcome: string }>;
  }>(r.stdout);
  assert.equal(
    [report.intents, report.accepted, report.rejected, report.programmed.programmed],
    [4, 3, 1, 3],
  );
  assert.equal(report.rejected_by, { port_exists: 1 });
  assert.equal(
    report.items.map((i) => i.id),
    [...good, dup].map((i) => i.id),
    'answers in file order',
  );
  // The readable form names the refused intent and why.
  const human = await cli(ctx, ['apply', '-f', file(ctx, 'again.yaml', yaml)]);
  assert.is(human.code, 4);
  assert.match(human.stdout, '4 intents — 3 accepted, 1 rejected');
  assert.match(human.stdout, 'port_exists');
  assert.match(human.stdout, dup.id);
});

test('stdin, {intents: [...]} form, all good: exit 0, a one-line summary', async (ctx) => {
  const vpcId = unique('vpc');
  const intents = vpcIntents(vpcId);
  const r = await cli(
    ctx,
    ['apply', '-f', '-', '--wait', 'programmed'],
    JSON.stringify({ intents }),
  );
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, '3 intents — 3 accepted, 0 rejected, 0 pending');
  assert.match(r.stdout, 'programmed: 3, incomplete: 0, still pending: 0');
  assert.not.match(r.stdout, 'unchanged', 'positive control: new intents are not unchanged');
  // The same file again: answered again, nothing new recorded — and said so.
  const again = await cli(ctx, ['apply', '-f', '-'], JSON.stringify({ intents }));
  assert.is(again.code, 0, again.stderr + again.stdout);
  assert.match(again.stdout, '3 intents — 3 accepted, 0 rejected, 0 pending; all unchanged');
  const json = readJson<{ unchanged: number; items: Array<{ unchanged?: boolean }> }>(
    (await cli(ctx, ['-o', 'json', 'apply', '-f', '-'], JSON.stringify(intents))).stdout,
  );
  assert.is(json.unchanged, 3);
  assert.ok(json.items.every((i) => i.unchanged === true));
  // One new intent among them: only the others are unchanged.
  const more = [
    ...intents,
    {
      id: `${vpcId}-route`,
      kind: 'route.set',
      vpcId,
      spec: { destination: '0.0.0.0/0', nextHop: '10.0.1.1' },
    },
  ];
  const mixed = await cli(ctx, ['apply', '-f', '-'], JSON.stringify(more));
  assert.match(mixed.stdout, '4 intents — 4 accepted, 0 rejected, 0 pending; 3 unchanged');
});

test('more than one batch: 2,500 intents answered whole, in order', async (ctx) => {
  const vpcId = unique('vpc');
  const intents = [
    vpcIntents(vpcId)[0]!,
    {
      id: unique('i'),
      kind: 'subnet.create',
      vpcId,
      spec: { subnetId: 's1', cidr: '10.0.0.0/20', gatewayIp: '10.0.0.1' },
    },
    ...Array.from({ length: 2_498 }, (_, n) => ({
      id: `${vpcId}-p${n}`,
      kind: 'port.create',
      vpcId,
      spec: { portId: `p${n}`, subnetId: 's1', hostId: HOSTS[n % 3]!.hostId },
    })),
  ];
  const r = await cli(ctx, [
    '--json',
    'apply',
    '-f',
    file(ctx, 'many.json', JSON.stringify(intents)),
  ]);
  const report = readJson<{
    accepted: number;
    pending: number;
    rejected_by: Record<string, number>;
    items: Array<{ id: string; revision: number }>;
  }>(r.stdout);
  assert.equal([r.code, report.rejected_by, report.pending], [0, {}, 0], r.stderr);
  assert.is(report.accepted, 2_500);
  const revisions = report.items.map((i) => i.revision);
  assert.equal(
    revisions,
    [...revisions].sort((a, b) => a - b),
    'decided in file order',
  );
});

test('bad files and flags: refused with what is wrong, nothing sent', async (ctx) => {
  const cases: Array<[string[], number, string]> = [
    [['apply', '-f', file(ctx, 'bad.json', '[{"id": ')], 2, 'invalid_syntax'],
    [['apply', '-f', file(ctx, 'bad.yaml', 'a: [1, 2')], 2, 'not YAML at line'],
    [['apply', '-f', join(ctx.dir, 'absent.yaml')], 3, 'ENOENT'],
    [['apply', '-f', file(ctx, 'scalar.json', '42')], 2, 'must hold an intent'],
    [['apply', '-f', file(ctx, 'notlist.json', '{"intents": 5}')], 2, 'intents: must be a list'],
    [['apply', '-f', file(ctx, 'empty.json', '[]')], 2, 'holds no intents'],
    [['apply', '-f', file(ctx, 'w.json', '[]'), '--wait', 'forever'], 2, 'Allowed choices'],
    [
      ['apply', '-f', file(ctx, 'm.json', '[]'), '--wait', 'programmed', '--wait-ms', '0'],
      2,
      'from 1 to 3600000',
    ],
    [['apply'], 2, "required option '-f, --file <file>'"],
  ];
  for (const [args, code, message] of cases) {
    const r = await cli(ctx, args);
    assert.is(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
  // Items the server refuses one by one are answered, not a crash.
  const r = await cli(ctx, [
    '--json',
    'apply',
    '-f',
    file(ctx, 'items.json', JSON.stringify([{ id: 'x y' }, 'text', { kind: 'vpc.create' }])),
  ]);
  assert.is(r.code, 4, r.stderr);
  const report = readJson<{ rejected: number }>(r.stdout);
  assert.is(report.rejected, 3);
});

test('no controller serving: says so and what to do', async () => {
  const other = await isolatedNats();
  try {
    const r = await runCli(['apply', '-f', '-'], { NATS_URL: other.url }, '[{"id":"a"}]');
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, 'no controller is serving');
  } finally {
    await other.stop();
  }
});

test.run();
