/**
 * The inspecting commands of `alcor` run as a user runs them (child processes)
 * against a real nats-server, a controller and the hosts' agents: status, watch,
 * vpc show with time travel, replay of a VPC and of a host, trace, and the
 * oracle (check) — with their output, their exit codes, and bad input: unknown
 * VPCs, hosts and intents, out-of-range revisions, malformed points and ids.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { putHosts, repoRoot, runDir, startLocalNats } from '../../infra/index.js';
import { DEFAULT_BUCKET_COUNT } from '../../shared/index.js';
import { readJson, readJsonCamel, startCliSystem, type CliSystem } from '../support/cli.js';
import { applyProgrammed } from '../support/controller.js';
import { eventually } from '../support/eventually.js';
import { unique } from '../support/names.js';
import { releaseTestServers, testServers } from '../support/servers.js';
import { fleet, vpcWithPorts } from '../support/workload.js';

type Ctx = CliSystem;

const HOSTS = fleet(1, 3, 'insp');
const VPC = unique('tenant');
const OTHER = unique('other');
const test = suite<Ctx>('alcor status, watch, vpc show, replay, trace, check');

/** Applies intents through the sync API and waits until their hosts applied them. */
const apply = (ctx: Ctx, intents: unknown[]): Promise<unknown> =>
  applyProgrammed(ctx.nats.nc, intents);

test.before(async (ctx) => {
  // With the Redis mapping: a restarted agent's resync finds its VPCs by host.
  const { redisUrl } = await testServers();
  Object.assign(ctx, await startCliSystem(HOSTS, 'insp', { redisUrl }));
  // Another VPC first: revision 1 is not the tenant's.
  await apply(ctx, [
    { id: `${OTHER}-vpc`, kind: 'vpc.create', vpcId: OTHER, spec: { cidr: '10.1.0.0/16' } },
  ]);
  // One at a time, each waited for: every intent has a revision of its own (intents
  // that arrive together are committed together, at one revision).
  for (const intent of [
    ...vpcWithPorts(
      VPC,
      HOSTS.map((h) => h.hostId),
    ),
    {
      id: `${VPC}-lost`,
      kind: 'port.create',
      vpcId: VPC,
      spec: { portId: 'lost', subnetId: 's1', hostId: 'h-nowhere' },
    },
  ])
    await apply(ctx, [intent]);
});

test.after(async (ctx) => {
  await ctx.stop?.();
  await releaseTestServers();
});

const cli = (ctx: Ctx, args: string[], stdin?: string) => ctx.cli(args, stdin);
const json = async <T>(ctx: Ctx, args: string[]): Promise<T> => {
  const r = await cli(ctx, ['--json', ...args]);
  assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return readJsonCamel<T>(r.stdout);
};

interface Timeline {
  entries: Array<{
    revision: number;
    intentId: string;
    outcome: string;
    error?: { code: string };
    goalStates: { hosts: number };
  }>;
}

test('status: size, decisions by outcome, rejected by reason; unknown or malformed VPC', async (ctx) => {
  const r = await cli(ctx, ['status', VPC]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, `VPC ${VPC}  active`);
  assert.match(r.stdout, '3 port(s)');
  assert.match(r.stdout, 'unknown_host 1');
  const s = await json<{
    intents: { decided: number; accepted: number; programmed: number; rejected: number };
    size: { hosts: number };
  }>(ctx, ['status', VPC]);
  assert.equal(
    { ...s.intents },
    { ...s.intents, decided: 6, accepted: 5, rejected: 1, programmed: 5 },
    'vpc, subnet, 3 ports accepted and programmed; the lost port refused',
  );
  assert.is(s.size.hosts, 3);

  const unknown = await cli(ctx, ['status', 'no-such-vpc']);
  assert.is(unknown.code, 3);
  assert.match(unknown.stderr, 'no VPC no-such-vpc in EVENTS');
  const bad = await cli(ctx, ['status', 'a.b']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, 'is not a VPC id');
});

test('vpc list: every VPC with its revision and commits; --prefix, -o wide, --no-headers', async (ctx) => {
  const list = await cli(ctx, ['-o', 'json', 'vpc', 'list']);
  assert.is(list.code, 0, list.stderr);
  const report = readJson<{
    vpcs: Array<{
      vpc_id: string;
      revision: number;
      commits: number;
      last_intent?: { intent_id: string };
    }>;
  }>(list.stdout);
  const tenant = report.vpcs.find((v) => v.vpc_id === VPC)!;
  const timeline = await json<Timeline>(ctx, ['replay', 'vpc', VPC]);
  assert.is(tenant.revision, timeline.entries.at(-1)!.revision, 'its last commit');
  assert.ok(tenant.commits >= timeline.entries.length - 1, `${tenant.commits} commits`);
  assert.is(tenant.last_intent?.intent_id, timeline.entries.at(-1)!.intentId);
  assert.ok(report.vpcs.some((v) => v.vpc_id === OTHER));
  const only = await cli(ctx, ['--no-headers', 'vpc', 'list', '--prefix', VPC]);
  assert.equal(
    only.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/)[0]),
    [VPC],
    'one row, no header or summary',
  );
  const wide = await cli(ctx, ['-o', 'wide', 'vpc', 'list', '--prefix', VPC]);
  assert.match(wide.stdout, /LAST INTENT\s+KIND\s+OUTCOME/);
  assert.match(wide.stdout, timeline.entries.at(-1)!.intentId);
});

test('vpc show: now, as of a revision and a time; out of range and malformed points', async (ctx) => {
  const now = await cli(ctx, ['vpc', 'show', VPC]);
  assert.is(now.code, 0, now.stderr);
  assert.match(now.stdout, '(latest)');
  for (const h of HOSTS) assert.match(now.stdout, h.hostId);

  const timeline = await json<Timeline>(ctx, ['replay', 'vpc', VPC]);
  const subnet = timeline.entries.find((e) => e.intentId === `${VPC}-subnet`)!;
  const then = await json<{ revision: number; subnets: unknown[]; ports: unknown[] }>(ctx, [
    'vpc',
    'show',
    VPC,
    '--at',
    String(subnet.revision),
  ]);
  assert.is(then.revision, subnet.revision);
  assert.is(then.subnets.length, 1, 'the subnet is there');
  assert.is(then.ports.length, 0, 'no port yet at that revision');
  const byTime = await json<{ ports: unknown[] }>(ctx, [
    'vpc',
    'show',
    VPC,
    '--at',
    new Date().toISOString(),
  ]);
  assert.is(byTime.ports.length, 3, 'as of now: every port');

  // A revision that is another VPC's: the tenant as of then, and the answer says so.
  const [elsewhere] = (await apply(ctx, [
    {
      id: unique('other-s2'),
      kind: 'subnet.create',
      vpcId: OTHER,
      spec: { subnetId: 's2', cidr: '10.1.2.0/24', gatewayIp: '10.1.2.1' },
    },
  ])) as Array<{ revision: number }>;
  const between = await cli(ctx, ['vpc', 'show', VPC, '--at', String(elsewhere!.revision)]);
  assert.is(between.code, 0, between.stderr);
  assert.match(between.stdout, `revision ${elsewhere!.revision} is not one of ${VPC}'s`);
  assert.not.match(now.stdout, 'is not one of', 'positive control: the latest says nothing');

  const past = await cli(ctx, ['vpc', 'show', VPC, '--at', '999999']);
  assert.is(past.code, 2);
  assert.match(past.stderr, `is past the last revision of EVENTS`);
  const before = await cli(ctx, ['vpc', 'show', VPC, '--at', '1']);
  assert.is(before.code, 2, 'revision 1 is the other VPC: the tenant did not exist yet');
  assert.match(before.stderr, 'did not exist yet at revision 1');
  const yesterday = await cli(ctx, ['vpc', 'show', VPC, '--at', '-1d']);
  assert.is(yesterday.code, 2);
  const garbage = await cli(ctx, ['vpc', 'show', VPC, '--at', 'soon']);
  assert.is(garbage.code, 2);
  assert.match(garbage.stderr, 'neither a revision');
  const unknown = await cli(ctx, ['vpc', 'show', 'ghost']);
  assert.is(unknown.code, 3);
});

test('replay vpc: every intent with its decision and goal states; a range', async (ctx) => {
  const t = await json<Timeline>(ctx, ['replay', 'vpc', VPC]);
  assert.equal(
    t.entries.map((e) => e.intentId),
    [`${VPC}-vpc`, `${VPC}-subnet`, `${VPC}-p0`, `${VPC}-p1`, `${VPC}-p2`, `${VPC}-lost`],
  );
  const lost = t.entries.at(-1)!;
  assert.is(lost.outcome, 'rejected');
  assert.is(lost.error?.code, 'unknown_host');
  assert.is(t.entries.find((e) => e.intentId === `${VPC}-p2`)!.goalStates.hosts, 3);
  const p1 = t.entries.find((e) => e.intentId === `${VPC}-p1`)!;
  const one = await json<Timeline>(ctx, [
    'replay',
    'vpc',
    VPC,
    '--from',
    String(p1.revision),
    '--to',
    String(p1.revision),
  ]);
  assert.equal(
    one.entries.map((e) => e.intentId),
    [`${VPC}-p1`],
  );
  const text = await cli(ctx, ['replay', 'vpc', VPC]);
  assert.match(text.stdout, 'unknown_host at spec.hostId');
  const past = await cli(ctx, ['replay', 'vpc', VPC, '--from', '999999']);
  assert.is(past.code, 2);
});

test('replay host: what was sent and the acks; unknown host, revision range refused', async (ctx) => {
  const host = HOSTS[0]!.hostId;
  const t = await json<{ entries: Array<{ what: string; vpcId: string; status?: string }> }>(ctx, [
    'replay',
    'host',
    host,
  ]);
  const mine = t.entries.filter((e) => e.vpcId === VPC);
  assert.ok(
    mine.some((e) => e.what === 'sent'),
    'goal states were sent',
  );
  assert.ok(
    mine.some((e) => e.what === 'ack' && e.status === 'applied'),
    'the host acked them',
  );
  const unknown = await cli(ctx, ['replay', 'host', 'h-nowhere']);
  assert.is(unknown.code, 3);
  assert.match(unknown.stderr, 'no host h-nowhere');
  const rev = await cli(ctx, ['replay', 'host', host, '--from', '3']);
  assert.is(rev.code, 2);
  assert.match(rev.stderr, 'takes times');
});

test('trace: stages with times, goal states and each host ack; rejected and unknown intents', async (ctx) => {
  type Trace = {
    outcome: string;
    stages: Array<{ stage: string; source: string; ms: number }>;
    goalStates: Array<{ ms?: number }>;
    hosts: Array<{ hostId: string; ack: string; ms?: number; kafka?: unknown[] }>;
    error?: { code: string };
  };
  const t = await json<Trace>(ctx, ['trace', `${VPC}-p2`, '--vpc', VPC]);
  assert.is(t.outcome, 'programmed');
  const stages = t.stages.map((s) => `${s.stage} ${s.source}`);
  for (const stage of [
    'received INTENTS',
    'decided EVENTS',
    'goal_states_stored GOALSTATES',
    'acked ACKS',
    'accepted STATUS',
    'programmed STATUS',
  ])
    assert.ok(stages.includes(stage), `${stage} in ${stages.join(', ')}`);
  // JetStream-bound hosts: no relay, no Kafka hop (test/integration/cliSouthbound.test.ts has them).
  assert.ok(!stages.some((s) => /^(relayed|kafka_produced) /.test(s)), stages.join(', '));
  assert.ok(t.hosts.every((h) => h.kafka === undefined));
  assert.ok(
    t.goalStates.length > 0 && t.goalStates.every((g) => g.ms !== undefined),
    'every goal state found in GOALSTATES',
  );
  assert.equal(
    t.hosts.map((h) => h.ack),
    ['applied', 'applied', 'applied'],
  );
  const noVpc = await json<Trace>(ctx, ['trace', `${VPC}-p2`]);
  assert.is(noVpc.outcome, 'programmed', 'found through STATUS without --vpc');
  const rejected = await json<Trace>(ctx, ['trace', `${VPC}-lost`, '--vpc', VPC]);
  assert.is(rejected.outcome, 'rejected');
  assert.is(rejected.error?.code, 'unknown_host');
  const text = await cli(ctx, ['trace', `${VPC}-p2`, '--vpc', VPC]);
  assert.match(text.stdout, 'hosts (3/3 applied)');
  assert.match(text.stdout, /goal states stored\s+GOALSTATES/);
  const unknown = await cli(ctx, ['trace', 'never-sent']);
  assert.is(unknown.code, 3);
  assert.match(unknown.stderr, 'no trace of intent never-sent');
});

test('check: clean, then a host that lost its state and a host without an agent', async (ctx) => {
  const clean = await cli(ctx, ['check']);
  assert.is(clean.code, 0, clean.stdout + clean.stderr);
  assert.match(clean.stdout, 'CLEAN');
  assert.match(clean.stdout, '3 host(s) converged');

  const victim = HOSTS[1]!.hostId;
  ctx.agents.hosts.get(victim)!.model.vpcs.clear();
  const dirty = await json<{
    clean: boolean;
    diverged: Array<{ hostId: string; missing: string[] }>;
  }>(ctx, ['check', '--vpc', VPC]).catch(() => undefined);
  assert.is(dirty, undefined, 'exit 4 makes the --json helper fail');
  const r = await cli(ctx, ['--json', 'check', '--vpc', VPC]);
  assert.is(r.code, 4);
  const report = readJsonCamel<{ diverged: Array<{ hostId: string; missing: string[] }> }>(
    r.stdout,
  );
  assert.equal(
    report.diverged.map((d) => d.hostId),
    [victim],
  );
  assert.ok(report.diverged[0]!.missing.length > 0);
  const other = await cli(ctx, ['check', '--host', HOSTS[0]!.hostId]);
  assert.is(other.code, 0, 'the other hosts are fine');

  await ctx.agents.restart(victim); // its agent resyncs
  await eventually(
    async () => (await cli(ctx, ['check', '--host', victim])).code === 0 || undefined,
    {
      what: 'the restarted agent converged',
    },
  );

  await putHosts(ctx.nats.nc, [{ ...HOSTS[0]!, hostId: 'insp-ghost', underlayIp: '10.9.9.9' }]);
  const silent = await cli(ctx, ['check']);
  assert.is(silent.code, 4);
  assert.match(silent.stdout, 'no agent answered for: insp-ghost');
  const unknownHost = await cli(ctx, ['check', '--host', 'nobody']);
  assert.is(unknownHost.code, 3);
});

test('hosts: every host SYNCED; one whose agent is gone goes STALE with its lag, and --stale finds it', async (ctx) => {
  interface Report {
    hosts: Array<{
      host_id: string;
      state: string;
      vpcs: Array<{
        vpc_id: string;
        applied?: number;
        latest: number;
        state: string;
        lag_ms: number;
      }>;
    }>;
    counts: Record<string, number>;
  }
  // Positive control: the hosts with agents acked what they were sent.
  const all = await cli(ctx, ['-o', 'json', 'hosts']);
  assert.is(all.code, 0, all.stdout + all.stderr);
  const synced = readJson<Report>(all.stdout);
  for (const h of HOSTS) {
    const row = synced.hosts.find((x) => x.host_id === h.hostId)!;
    assert.is(row.state, 'SYNCED', JSON.stringify(row));
    const tenant = row.vpcs.find((v) => v.vpc_id === VPC)!;
    assert.ok(tenant.applied! >= tenant.latest, JSON.stringify(tenant));
  }
  // A registered host without an agent: sent a port, never acks.
  const ghost = { ...HOSTS[0]!, hostId: 'insp-silent', underlayIp: '10.9.9.8' };
  await putHosts(ctx.nats.nc, [ghost]);
  const vpcId = unique('hosts');
  const placed = await cli(
    ctx,
    ['apply', '-f', '-'],
    JSON.stringify([
      { id: `${vpcId}-v`, kind: 'vpc.create', vpcId, spec: { cidr: '10.7.0.0/16' } },
      {
        id: `${vpcId}-s`,
        kind: 'subnet.create',
        vpcId,
        spec: { subnetId: 's', cidr: '10.7.1.0/24', gatewayIp: '10.7.1.1' },
      },
      {
        id: `${vpcId}-p`,
        kind: 'port.create',
        vpcId,
        spec: { portId: 'p', subnetId: 's', hostId: ghost.hostId },
      },
    ]),
  );
  assert.is(placed.code, 0, placed.stdout + placed.stderr);
  const stale = await cli(ctx, ['-o', 'json', 'hosts', '--stale']);
  assert.is(stale.code, 4, 'not all synced: exit 4');
  const behind = readJson<Report>(stale.stdout);
  assert.equal(
    behind.hosts.map((h) => [h.host_id, h.state]),
    [[ghost.hostId, 'STALE']],
  );
  const v = behind.hosts[0]!.vpcs.find((x) => x.vpc_id === vpcId)!;
  assert.is(v.applied, undefined);
  assert.ok(v.lag_ms >= 0 && v.latest > 0, JSON.stringify(v));
  // The table: one row per VPC for one host, and --no-headers drops the header.
  const one = await cli(ctx, ['--no-headers', 'hosts', '--host', ghost.hostId]);
  assert.is(one.code, 4);
  assert.match(
    one.stdout,
    new RegExp(`^insp-silent\\s+jetstream\\s+${vpcId}\\s+-\\s+\\d+\\s+STALE`),
  );
  assert.not.match(one.stdout, /HOST/);
  const yaml = await cli(ctx, ['-o', 'yaml', 'hosts', '--vpc', VPC]);
  assert.is(yaml.code, 0, yaml.stderr);
  assert.match(yaml.stdout, /host_id: /);
  assert.is((await cli(ctx, ['hosts', '--host', 'nobody'])).code, 3);
  assert.is((await cli(ctx, ['hosts', '--vpc', 'no-such-vpc'])).code, 3);
});

test('watch: prints statuses as they come; --count stops it; a bad --count is refused', async (ctx) => {
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'services/cli/bin.js'), 'watch', OTHER, '--count', '3', '--for', '20000'],
    { env: { ...process.env, NATS_URL: ctx.nats.url } },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await eventually(() => stderr.includes(`watching status.${OTHER}`) || undefined, {
    what: 'watch subscribed',
  });
  await apply(ctx, [
    {
      id: `${OTHER}-subnet`,
      kind: 'subnet.create',
      vpcId: OTHER,
      spec: { subnetId: 's', cidr: '10.1.1.0/24', gatewayIp: '10.1.1.1' },
    },
    { id: `${OTHER}-dup`, kind: 'vpc.create', vpcId: OTHER, spec: { cidr: '10.1.0.0/16' } },
  ]);
  assert.is(await exited, 0);
  assert.match(
    stdout,
    new RegExp(`accepted\\s+${OTHER}-subnet`),
    `stdout: ${stdout}\nstderr: ${stderr}`,
  );
  assert.match(stdout, new RegExp(`rejected\\s+${OTHER}-dup.*vpc_exists`));
  const bad = await cli(ctx, ['watch', OTHER, '--count', '0']);
  assert.is(bad.code, 2);
});

test('a reader that is gone (| head, | true) ends the output quietly: exit 0, no EPIPE', async (ctx) => {
  const args = ['--json', 'topology', 'show', '--hosts'];
  // Positive control: there is output to write.
  const full = await cli(ctx, args);
  assert.is(full.code, 0, full.stderr);
  assert.ok(full.stdout.length > 100);
  // `true` exits without reading: by the time the CLI has asked NATS and writes,
  // the pipe has no reader (EPIPE on every write).
  const quoted = [process.execPath, join(repoRoot, 'services/cli/bin.js'), ...args]
    .map((a) => `'${a}'`)
    .join(' ');
  const piped = spawnSync('bash', ['-c', `${quoted} | true; echo "status=\${PIPESTATUS[0]}"`], {
    env: { ...process.env, NATS_URL: ctx.nats.url },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.match(piped.stdout, /status=0/, piped.stderr);
  assert.not.match(piped.stderr, /EPIPE|Unhandled/);
});

test('an address where nothing answers: the 3 s connect timeout ends it with one line, exit 1', async (ctx) => {
  // 10.255.255.1 is not routed here: the connection attempt hangs rather than being
  // refused, and its socket outlived the CLI's own timeout by about 7 s.
  const began = Date.now();
  const r = await cli(ctx, ['--nats-url', 'nats://10.255.255.1:4222', 'status', 'x']);
  const took = Date.now() - began;
  assert.is(r.code, 1);
  assert.match(r.stderr, /^alcor: cannot reach NATS at nats:\/\/10\.255\.255\.1:4222 .*timeout/);
  assert.is(r.stderr.trim().split('\n').length, 1, 'one line');
  assert.ok(took < 7000, `ended ${took} ms after it began (the timeout is 3 s)`);
});

test('--version names the package version and Node', async (ctx) => {
  const r = await cli(ctx, ['--version']);
  assert.is(r.code, 0);
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    version: string;
  };
  assert.is(r.stdout.trim(), `alcor ${pkg.version} (node ${process.versions.node})`);
});

test('a NATS without this system (no streams yet): one line per command, exit 3', async (ctx) => {
  const dir = runDir('alcor-bare-nats-');
  const bare = await startLocalNats({ dir, bucketCount: DEFAULT_BUCKET_COUNT });
  try {
    for (const args of [
      ['status', VPC],
      ['placement'],
      ['check'],
      ['vpc', 'show', VPC],
      ['trace', 'some-intent'],
      ['replay', 'vpc', VPC],
      ['replay', 'host', HOSTS[0]!.hostId],
    ]) {
      // Positive control: against this system's NATS the same command finds its streams.
      const real = await cli(ctx, args);
      assert.ok(real.code !== 1, `${args.join(' ')}: ${real.stderr}`);
      assert.not.match(real.stderr, /has no stream|lacks this system|does not exist yet/);
      const r = await cli(ctx, ['--nats-url', bare.url, ...args]);
      assert.is(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
      assert.match(
        r.stderr,
        /^alcor: (the NATS at .* (has no stream|lacks this system's streams)|the topology registry \(KV hosts\) does not exist yet)/,
      );
      assert.is(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line`);
    }
  } finally {
    await bare.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
