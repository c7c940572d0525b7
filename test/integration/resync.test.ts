/**
 * A restarted agent's full resync while some buckets have no owner (issue 9): a
 * controller going down and the next one taking its buckets later, as in a
 * handover. Each answer says which buckets it covers; the agent asks again for
 * the rest until an owner answers for them. (Before, a full resync ended at the
 * first answered round, and a VPC in a bucket between owners stayed missing on
 * that host until the VPC's next intent.) Also: the `buckets` field's bad input.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { putHosts } from '../../infra/index.js';
import {
  bucketOf,
  subjects,
  type GoalStateOp,
  type HostRecord,
  type ResyncReply,
} from '../../shared/index.js';
import { nca } from '../../actors/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import { diverging, foldEventLog } from '../../services/nca/oracle.js';
import type { Controller } from '../../services/controller/index.js';
import { eventually } from '../support/eventually.js';
import {
  applyProgrammed,
  isolatedNats,
  startTestController,
  testLog,
  type IsolatedNats,
} from '../support/controller.js';
import { releaseTestServers, testServers } from '../support/servers.js';
import { unique } from '../support/names.js';
import { fleet as makeHosts, vpcWithPorts } from '../support/workload.js';

interface Ctx {
  nats: IsolatedNats;
  redisUrl: string;
  hosts: HostRecord[];
  agents: Fleet;
  controllers: Controller[];
}

const test = suite<Ctx>('resync while buckets change owners');
const encoder = new TextEncoder();
const LOW = Array.from({ length: 512 }, (_, i) => i);
const HIGH = LOW.map((b) => b + 512);

/** `n` VPC ids whose buckets are in `[from, to)`. */
function vpcsIn(tag: string, from: number, to: number, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const id = `${tag}-${i}`;
    const b = bucketOf(id);
    if (b >= from && b < to) out.push(id);
  }
  return out;
}

async function applyAll(ctx: Ctx, intents: unknown[]): Promise<void> {
  const items = await applyProgrammed<
    Array<{ outcome?: string; programmed?: { outcome: string } }>
  >(ctx.nats.nc, intents);
  const not = items.filter(
    (i) => i.outcome !== 'accepted' || i.programmed?.outcome !== 'programmed',
  );
  assert.equal(not, [], 'every intent accepted and programmed');
}

async function resyncRequest(ctx: Ctx, hostId: string, body: unknown) {
  const msg = await ctx.nats.nc.request(
    subjects.resync(hostId),
    encoder.encode(typeof body === 'string' ? body : JSON.stringify(body)),
    { timeout: 5000 },
  );
  return msg.json<Partial<ResyncReply> & { error?: { code: string; path?: string } }>();
}

test.before(async (ctx) => {
  ctx.redisUrl = (await testServers()).redisUrl;
  ctx.nats = await isolatedNats();
  ctx.hosts = makeHosts(1, 2, unique('rs'));
  await putHosts(ctx.nats.nc, ctx.hosts);
  ctx.controllers = [await startTestController(ctx.nats.url, { redisUrl: ctx.redisUrl })];
  ctx.agents = await startFleet({
    natsUrl: ctx.nats.url,
    kafka: {},
    hosts: ctx.hosts,
    logger: testLog,
    fleetId: unique('rsf'),
  });
});

test.after(async (ctx) => {
  await ctx.agents?.stop();
  await Promise.all((ctx.controllers ?? []).map((c) => c.stop()));
  await ctx.nats?.stop();
  await releaseTestServers();
});

test('a full resync asks again for the buckets no owner answered, until one does', async (ctx) => {
  const tag = unique('rv');
  const low = vpcsIn(tag, 0, 512, 3);
  const high = vpcsIn(tag, 512, 1024, 3);
  const hostIds = ctx.hosts.map((h) => h.hostId);
  await applyAll(
    ctx,
    [...low, ...high].flatMap((v) => vpcWithPorts(v, hostIds)),
  );
  const victim = ctx.agents.hosts.get(hostIds[0]!)!;
  assert.equal([...victim.model.vpcs.keys()].sort(), [...low, ...high].sort());

  // The only controller goes; one owning the low half comes, and the high half's
  // owner only later.
  await ctx.controllers.pop()!.stop();
  ctx.controllers.push(
    await startTestController(ctx.nats.url, { redisUrl: ctx.redisUrl, buckets: LOW }),
  );
  const other = hostIds[1]!;
  await eventually(
    async () =>
      (await resyncRequest(ctx, other, { hostId: other, buckets: '0-1023' })).buckets === '0-511' ||
      undefined,
    { timeoutMs: 15_000, what: 'the low half owned, the high half by nobody' },
  );
  // Full resyncs: the follow-ups of the VPCs it joins again (asked by name once
  // their multicasts are subscribed) are counted apart.
  const fullResyncs = () => victim.stats.resyncs - victim.stats.resyncsOnJoin;
  const before = fullResyncs();
  const repeated = victim.stats.resyncsRepeated;
  const resyncing = ctx.agents.restart(victim.record.hostId);
  await eventually(() => low.every((v) => victim.model.vpcs.has(v)) || undefined, {
    timeoutMs: 15_000,
    what: 'the low half back from its owner',
  });
  assert.ok(
    high.every((v) => !victim.model.vpcs.has(v)),
    'the high half has no owner yet: nothing of it came back',
  );
  ctx.controllers.push(
    await startTestController(ctx.nats.url, { redisUrl: ctx.redisUrl, buckets: HIGH }),
  );
  await resyncing;
  assert.is(fullResyncs(), before + 1, 'one resync, asked again inside it');
  assert.ok(victim.stats.resyncsRepeated > repeated, 'rounds asked again are counted');
  assert.equal(
    [...victim.model.vpcs.keys()].sort(),
    [...low, ...high].sort(),
    'every VPC back once the high half has an owner',
  );
  const diff = diverging(
    await foldEventLog(ctx.nats.nc),
    [...ctx.agents.hosts.values()].map((h) => h.model),
  );
  assert.is(diff.length, 0, `oracle: ${JSON.stringify(diff.slice(0, 2))}`);
});

test('a VPC named that its owner has no full of for the host is answered, not asked again', async (ctx) => {
  const host = ctx.agents.hosts.get(ctx.hosts[1]!.hostId)!;
  const repeated = host.stats.resyncsRepeated;
  const nowhere = unique('nowhere');
  assert.is(await host.resync([nowhere]), 0, 'no full state sent');
  assert.is(host.stats.resyncsRepeated, repeated, 'the owner answered for its bucket: one round');
  assert.not.ok(host.model.vpcs.has(nowhere));
});

test('each answer names the asked buckets its controller owns', async (ctx) => {
  const hostId = ctx.hosts[1]!.hostId;
  const answers: Array<Partial<ResyncReply>> = [];
  const it = await ctx.nats.nc.requestMany(
    subjects.resync(hostId),
    encoder.encode(JSON.stringify({ hostId, buckets: '500-515' })),
    { strategy: 'count', maxMessages: 2, maxWait: 5000 },
  );
  for await (const m of it) answers.push(m.json<Partial<ResyncReply>>());
  assert.equal(answers.map((a) => a.buckets).sort(), ['500-511', '512-515']);
  assert.ok(answers.every((a) => a.bucketCount === 1024));
});

test('bad buckets in a resync request are refused with a code and the field', async (ctx) => {
  const hostId = ctx.hosts[1]!.hostId;
  const cases: Array<[unknown, string]> = [
    [{ hostId, buckets: '0-99999' }, 'out_of_range'],
    [{ hostId, buckets: '5-2' }, 'out_of_range'],
    [{ hostId, buckets: 'all' }, 'invalid_value'],
    [{ hostId, buckets: '1,,2' }, 'invalid_value'],
    [{ hostId, buckets: [1, 2] }, 'invalid_type'],
    [{ hostId, buckets: '1,'.repeat(5000) + '1' }, 'too_long'],
  ];
  for (const [body, code] of cases) {
    const answer = await resyncRequest(ctx, hostId, body);
    assert.is(answer.error?.code, code, JSON.stringify(body).slice(0, 60));
    assert.is(answer.error?.path, 'buckets');
  }
  const fine = await resyncRequest(ctx, hostId, { hostId, buckets: '0' });
  assert.is(fine.error, undefined, 'a good request after the bad ones is answered');
});

test('a full resync drops a VPC the host left while the messages saying so were lost', async (ctx) => {
  const [victimId, otherId] = ctx.hosts.map((h) => h.hostId) as [string, string];
  const vx = unique('left');
  // A VPC on the other host only; the victim is given a stale copy of it, as if
  // it had held it and missed the deltas that took it away (Kafka records
  // deleted unread).
  await applyAll(ctx, vpcWithPorts(vx, [otherId]));
  const other = ctx.agents.hosts.get(otherId)!;
  const ops = [...nca.liveResources(other.model, vx)].map(([key, r]) => ({
    op: 'upsert',
    kind: r.kind,
    key,
    rev: r.rev,
    value: r.value,
  })) as GoalStateOp[];
  const victim = ctx.agents.hosts.get(victimId)!;
  nca.apply(victim.model, {
    vpcId: vx,
    bucket: bucketOf(vx),
    revision: 1,
    mode: 'full',
    target: victimId,
    ops,
  });
  assert.ok(nca.hostsVpc(victim.model, vx), 'the victim holds the stale copy');
  const models = () => [...ctx.agents.hosts.values()].map((h) => h.model);
  const before = diverging(await foldEventLog(ctx.nats.nc), models());
  assert.ok(
    before.some((d) => d.hostId === victimId && d.vpcId === vx),
    'the oracle sees it (the check can fail)',
  );
  await victim.resync();
  assert.not.ok(nca.hostsVpc(victim.model, vx), 'gone after a full resync');
  const after = diverging(await foldEventLog(ctx.nats.nc), models());
  assert.is(after.length, 0, `oracle: ${JSON.stringify(after.slice(0, 2))}`);
});

test('a storm of resyncs: a paced owner tells those it cannot answer in time when to ask again, and every host still gets everything', async (ctx) => {
  const hostIds = ctx.hosts.map((h) => h.hostId);
  const tag = unique('storm');
  const vpcs = [...vpcsIn(tag, 0, 512, 3), ...vpcsIn(tag, 512, 1024, 3)];
  await applyAll(
    ctx,
    vpcs.flatMap((v) => vpcWithPorts(v, hostIds)),
  );
  // One owner of every bucket, answering one resync at a time.
  await Promise.all(ctx.controllers.splice(0).map((c) => c.stop()));
  const paced = await startTestController(ctx.nats.url, {
    redisUrl: ctx.redisUrl,
    resyncConcurrency: 1,
  });
  ctx.controllers.push(paced);
  const other = hostIds[1]!;
  await eventually(
    async () =>
      (await resyncRequest(ctx, other, { hostId: other, buckets: '0-1023' })).buckets ===
        '0-1023' || undefined,
    { timeoutMs: 15_000, what: 'the paced owner answers for every bucket' },
  );
  // A burst of the other host's requests, and the victim's right behind them: it
  // waits past what the owner lets a request wait, and is told to ask again.
  const advice: number[] = [];
  /** Deferred answers that claimed a bucket or sent something. */
  const wrong: string[] = [];
  const burst = Promise.all(
    Array.from({ length: 1000 }, async () => {
      const it = await ctx.nats.nc.requestMany(subjects.resync(other), encoder.encode(''), {
        strategy: 'timer',
        maxWait: 1500,
      });
      for await (const m of it) {
        const r = m.json<Partial<ResyncReply>>();
        if (r.retryAfterMs === undefined) continue;
        advice.push(r.retryAfterMs);
        if (r.buckets !== '' || r.vpcs?.length !== 0) wrong.push(JSON.stringify(r));
      }
    }),
  );
  const victim = ctx.agents.hosts.get(hostIds[0]!)!;
  const deferrals = victim.stats.resyncsDeferred;
  await ctx.agents.restart(victim.record.hostId);
  await burst;
  assert.ok(paced.metrics.resyncDeferred > 0, 'the owner deferred some');
  assert.equal(wrong, [], 'a deferred answer claims no bucket and sent nothing');
  assert.ok(advice.length > 0 && advice.every((ms) => ms >= 250 && ms <= 10_000), 'advice given');
  assert.ok(victim.stats.resyncsDeferred > deferrals, 'the victim was told to wait, and waited');
  assert.equal(
    [...victim.model.vpcs.keys()].filter((v) => vpcs.includes(v)).sort(),
    [...vpcs].sort(),
    'every VPC back all the same',
  );
  const diff = diverging(
    await foldEventLog(ctx.nats.nc),
    [...ctx.agents.hosts.values()].map((h) => h.model),
  );
  assert.is(diff.length, 0, `oracle: ${JSON.stringify(diff.slice(0, 2))}`);
});

test.run();
