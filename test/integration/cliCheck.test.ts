/**
 * `alcor check` loads each VPC as its owner does — its latest snapshot (KV
 * `vpc-snapshots`), then the EVENTS commits after it — and must say exactly what
 * the full fold from revision 0 says. Run as a user runs it (a child process)
 * against a real nats-server, a controller that snapshots every 3 commits, and
 * the hosts' agents: clean on a system where snapshots exist, a divergence found
 * (in what the snapshot holds and in what came after it), a snapshot that cannot
 * be read folded from revision 0 instead, and no snapshot bucket at all.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createJetStreamEventLog, createKvSnapshotStore } from '../../infra/index.js';
import { isSkipped, kvBuckets } from '../../shared/index.js';
import type { vpc } from '../../actors/index.js';
import { expectedFromLog, type CheckReport } from '../../services/cli/check.js';
import { expectedState, foldEventLog } from '../../services/nca/oracle.js';
import { readJsonCamel, startCliSystem, type CliSystem } from '../support/cli.js';
import { applyProgrammed } from '../support/controller.js';
import { eventually } from '../support/eventually.js';
import { unique } from '../support/names.js';
import { fleet, vpcWithPorts } from '../support/workload.js';

type Ctx = CliSystem;

const HOSTS = fleet(2, 3, 'chk');
const SNAPSHOT_EVERY = 3;
/** 7 commits: snapshots after the 3rd and 6th, one commit after the last. */
const LONG = unique('long');
/** 4 commits: a snapshot after the 3rd, one after it. */
const SHORT = unique('short');
/** 2 commits: no snapshot yet. */
const FRESH = unique('fresh');
/** 3 commits: a snapshot of the last one, nothing after it. */
const EXACT = unique('exact');
const PLAN: Array<[string, number]> = [
  [LONG, 5],
  [SHORT, 2],
  [FRESH, 0],
  [EXACT, 1],
];
const test = suite<Ctx>('alcor check: from snapshots, as the full fold says');

/** The revisions of a VPC's commits, in order. */
async function revisions(ctx: Ctx, vpcId: string): Promise<number[]> {
  const log = await createJetStreamEventLog(ctx.nats.nc);
  const out: number[] = [];
  for await (const e of log.read(vpcId, 0)) if (!isSkipped(e)) out.push(e.revision);
  return out;
}

const run = async (ctx: Ctx, args: string[]): Promise<{ code: number; report: CheckReport }> => {
  const r = await ctx.cli(['--json', 'check', ...args]);
  assert.ok(r.code === 0 || r.code === 4, `check ${args.join(' ')}: ${r.code} ${r.stderr}`);
  return { code: r.code, report: readJsonCamel<CheckReport>(r.stdout) };
};

/** The parts of two reports that must agree whichever way the VPCs were folded. */
const verdict = (r: CheckReport) => ({
  vpcs: r.vpcs,
  hosts: r.hosts,
  converged: r.converged,
  diverged: r.diverged,
  silent: r.silent,
  clean: r.clean,
});

test.before(async (ctx) => {
  Object.assign(
    ctx,
    await startCliSystem(HOSTS, 'chk', {
      snapshotEvery: SNAPSHOT_EVERY,
      // No passivation snapshot during the suite: the snapshots are the ones planned.
      idleMs: 600_000,
    }),
  );
  // One at a time, each waited for: every intent is a commit of its own.
  for (const [vpcId, ports] of PLAN) {
    const hosts = HOSTS.slice(0, ports).map((h) => h.hostId);
    for (const intent of vpcWithPorts(vpcId, hosts)) await applyProgrammed(ctx.nats.nc, [intent]);
  }
  // The snapshots the controller writes once each 3rd commit is out.
  const store = await createKvSnapshotStore(ctx.nats.nc);
  const want = new Map<string, number>();
  for (const [vpcId] of PLAN) {
    const revs = await revisions(ctx, vpcId);
    const at = Math.floor(revs.length / SNAPSHOT_EVERY) * SNAPSHOT_EVERY;
    if (at > 0) want.set(vpcId, revs[at - 1]!);
  }
  assert.is(want.size, 3, 'three VPCs are snapshotted');
  await eventually(
    async () => {
      for (const [vpcId, revision] of want)
        if ((await store.load(vpcId))?.revision !== revision) return undefined;
      return true;
    },
    { what: 'the snapshots of every third commit', timeoutMs: 20_000 },
  );
});

test.after(async (ctx) => {
  await ctx.stop?.();
});

test('clean on a system with snapshots: each VPC from its snapshot and the commits after it, as the full fold says', async (ctx) => {
  const fast = await run(ctx, []);
  const full = await run(ctx, ['--full']);
  assert.is(fast.code, 0, JSON.stringify(fast.report));
  assert.is(fast.report.clean, true);
  assert.is(fast.report.converged, HOSTS.length);
  assert.equal(verdict(fast.report), verdict(full.report));
  // LONG, SHORT and EXACT from their snapshots; FRESH has none.
  assert.equal(
    { ...fast.report.fold, ms: 0 },
    {
      mode: 'snapshots',
      fromSnapshot: 3,
      fromStart: 1,
      entries: 1 + 1 + 2 + 0,
      unusable: [],
      ms: 0,
    },
  );
  assert.equal(
    { ...full.report.fold, ms: 0 },
    { mode: 'full', fromSnapshot: 0, fromStart: 4, entries: 7 + 4 + 2 + 3, unusable: [], ms: 0 },
  );
  // What each host must hold, resource by resource: the same both ways, and the
  // same as the fold the oracle had before (one VPC after another, from revision 0).
  const fromSnapshots = await expectedFromLog(ctx.nats.nc);
  const fromStart = await expectedFromLog(ctx.nats.nc, { full: true });
  const before = expectedState(await foldEventLog(ctx.nats.nc));
  assert.ok(before.size === HOSTS.length - 1, `hosts with something to hold: ${before.size}`);
  assert.equal(fromSnapshots.expected, before);
  assert.equal(fromStart.expected, before);

  const text = await ctx.cli(['check']);
  assert.is(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    '4 VPC(s) loaded: 3 from a snapshot and the commits after it, 1 from revision 0',
  );
  assert.match(text.stdout, 'CLEAN');
});

test('a divergence is found both in what a snapshot holds and in a commit after it', async (ctx) => {
  const victim = HOSTS[0]!.hostId;
  const model = ctx.agents.hosts.get(victim)!.model.vpcs.get(LONG)!;
  const [snapshotRev] = [(await (await createKvSnapshotStore(ctx.nats.nc)).load(LONG))!.revision];
  const live = [...model.resources].filter(([, r]) => !r.deleted);
  // The newest resource came with the commit after the snapshot; the oldest with the snapshot.
  const newest = live.reduce((a, b) => (b[1].rev > a[1].rev ? b : a));
  const oldest = live.reduce((a, b) => (b[1].rev < a[1].rev ? b : a));
  assert.ok(newest[1].rev > snapshotRev, `${newest[0]} at ${newest[1].rev} after ${snapshotRev}`);
  assert.ok(oldest[1].rev <= snapshotRev, `${oldest[0]} at ${oldest[1].rev}`);
  for (const [key, entry] of [newest, oldest]) {
    model.resources.delete(key);
    try {
      const fast = await run(ctx, []);
      const full = await run(ctx, ['--full']);
      assert.is(fast.code, 4);
      assert.equal(
        fast.report.diverged.map((d) => [d.hostId, d.vpcId, d.missing, d.extra, d.different]),
        [[victim, LONG, [key], [], []]],
      );
      assert.equal(verdict(fast.report), verdict(full.report));
    } finally {
      model.resources.set(key, entry);
    }
  }
  // Positive control: put back, it is clean again.
  assert.is((await run(ctx, [])).code, 0);
});

test('the snapshot is what is read: one that disagrees with the log shows, and --full does not', async (ctx) => {
  const store = await createKvSnapshotStore(ctx.nats.nc);
  const original = (await store.load(SHORT))!;
  const snapshot = JSON.parse(original.text) as vpc.VpcSnapshot;
  assert.ok(snapshot.ports.length > 0);
  // A readable snapshot of the same revision that lost the VPC's first port.
  const lost = snapshot.ports[0]!;
  await store.kv.delete(SHORT);
  await store.save(
    SHORT,
    original.revision,
    JSON.stringify({ ...snapshot, ports: snapshot.ports.slice(1) }),
  );
  try {
    const fast = await run(ctx, ['--vpc', SHORT]);
    assert.is(fast.code, 4);
    const extra = fast.report.diverged.find((d) => d.hostId === lost.hostId);
    assert.ok(extra && extra.extra.length > 0, JSON.stringify(fast.report.diverged));
    assert.is((await run(ctx, ['--vpc', SHORT, '--full'])).code, 0);
  } finally {
    await store.kv.delete(SHORT);
    await store.save(SHORT, original.revision, original.text);
  }
  assert.is((await run(ctx, ['--vpc', SHORT])).code, 0);
});

test('a snapshot that cannot be read is folded from revision 0 instead, and still judged', async (ctx) => {
  const store = await createKvSnapshotStore(ctx.nats.nc);
  const saved = new Map<string, { revision: number; text: string }>();
  for (const vpcId of [LONG, SHORT, EXACT]) saved.set(vpcId, (await store.load(vpcId))!);
  const long = saved.get(LONG)!;
  // LONG: a chunk of the right length that is not JSON.
  await store.kv.put(
    `${LONG}.${long.revision}.0`,
    '#'.repeat(new TextEncoder().encode(long.text).length),
  );
  // SHORT: a manifest that is not JSON.
  await store.kv.put(SHORT, 'not a manifest');
  // EXACT: JSON of another format.
  const exact = saved.get(EXACT)!;
  await store.kv.delete(EXACT);
  await store.save(
    EXACT,
    exact.revision,
    JSON.stringify({ ...JSON.parse(exact.text), format: 99 }),
  );
  try {
    const r = await run(ctx, []);
    assert.is(r.code, 0, JSON.stringify(r.report));
    assert.is(r.report.clean, true);
    assert.equal(
      r.report.fold.unusable.map((u) => u.vpcId),
      [LONG, SHORT, EXACT].sort(),
    );
    assert.match(
      r.report.fold.unusable.find((u) => u.vpcId === SHORT)!.reason,
      'manifest is not JSON',
    );
    assert.match(r.report.fold.unusable.find((u) => u.vpcId === EXACT)!.reason, 'format 99');
    assert.equal([r.report.fold.fromSnapshot, r.report.fold.fromStart], [0, 4]);
    const text = await ctx.cli(['check']);
    assert.is(text.code, 0);
    assert.match(text.stdout, `warning: the snapshot of ${LONG} is unusable`);
    assert.match(text.stdout, 'folded from revision 0 instead');

    // Still judged: a host that lost a resource of LONG is named.
    const victim = HOSTS[1]!.hostId;
    const model = ctx.agents.hosts.get(victim)!.model.vpcs.get(LONG)!;
    const [key, entry] = [...model.resources].find(([, e]) => !e.deleted)!;
    model.resources.delete(key);
    try {
      const dirty = await run(ctx, []);
      assert.is(dirty.code, 4);
      assert.equal(
        dirty.report.diverged.map((d) => [d.hostId, d.vpcId, d.missing]),
        [[victim, LONG, [key]]],
      );
    } finally {
      model.resources.set(key, entry);
    }
  } finally {
    for (const [vpcId, s] of saved) {
      await store.kv.delete(vpcId);
      await store.save(vpcId, s.revision, s.text);
    }
  }
  const restored = await run(ctx, []);
  assert.equal([restored.code, restored.report.fold.fromSnapshot], [0, 3]);
});

test('no snapshot bucket at all: every VPC from revision 0, said once, still clean', async (ctx) => {
  await ctx.nats.jsm.streams.delete(`KV_${kvBuckets.vpcSnapshots}`);
  const r = await run(ctx, []);
  assert.is(r.code, 0, JSON.stringify(r.report));
  assert.equal([r.report.fold.fromSnapshot, r.report.fold.fromStart], [0, 4]);
  assert.equal(r.report.fold.unusable, []);
  assert.match(r.report.fold.snapshotsUnavailable ?? '', `KV ${kvBuckets.vpcSnapshots}`);
  const text = await ctx.cli(['check']);
  assert.match(text.stdout, 'warning: no snapshot read');
});

test.run();
