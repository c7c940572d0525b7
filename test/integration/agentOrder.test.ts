/**
 * A delta that reaches an agent after a newer message of its VPC (a goal-state
 * publish retried after the next group's went out, a redelivery after the ack
 * wait) is not applied: the agent asks for the VPC's full state instead, and
 * counts it late. A broken agent that applies it (`applyLate`) is what the fault
 * suite's "order at the agents" check must catch: here it does, by its counter
 * and by the oracle.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { putHosts } from '../../infra/index.js';
import {
  bucketOf,
  streams,
  subjects,
  type GoalStateMessage,
  type HostRecord,
} from '../../shared/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import type { SimulatedHost } from '../../services/nca/hostAgent.js';
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
  hosts: HostRecord[];
  /** The first host's agent is sound, the second's applies late deltas (broken on purpose). */
  sound: Fleet;
  broken: Fleet;
  controller: Controller;
}

const test = suite<Ctx>('agents apply their VPC revisions in order');
const encoder = new TextEncoder();

test.before(async (ctx) => {
  const { redisUrl } = await testServers();
  ctx.nats = await isolatedNats();
  ctx.hosts = makeHosts(1, 2, unique('ord'));
  await putHosts(ctx.nats.nc, ctx.hosts);
  ctx.controller = await startTestController(ctx.nats.url, { redisUrl });
  const start = (hosts: HostRecord[], applyLate: boolean) =>
    startFleet({
      natsUrl: ctx.nats.url,
      kafka: {},
      hosts,
      logger: testLog,
      fleetId: unique('ordf'),
      trail: true,
      applyLate,
    });
  ctx.sound = await start([ctx.hosts[0]!], false);
  ctx.broken = await start([ctx.hosts[1]!], true);
});

test.after(async (ctx) => {
  await ctx.sound?.stop();
  await ctx.broken?.stop();
  await ctx.controller?.stop();
  await ctx.nats?.stop();
  await releaseTestServers();
});

test('a late delta is not applied but answered by a resync; a broken agent applying it is caught', async (ctx) => {
  const vpcId = unique('vord');
  const hostIds = ctx.hosts.map((h) => h.hostId);
  const applied = await applyProgrammed<Array<{ outcome?: string }>>(
    ctx.nats.nc,
    vpcWithPorts(vpcId, hostIds),
  );
  assert.ok(applied.every((i) => i.outcome === 'accepted'));
  // Another VPC's commit, then one of ours: the revision between is ours to fake.
  await applyProgrammed(ctx.nats.nc, [
    {
      id: unique('other'),
      kind: 'vpc.create',
      vpcId: unique('vother'),
      spec: { cidr: '10.1.0.0/16' },
    },
  ]);
  const more = await applyProgrammed<Array<{ outcome?: string; revision?: number }>>(ctx.nats.nc, [
    {
      id: unique('r'),
      kind: 'route.set',
      vpcId,
      spec: { destination: '10.9.0.0/24', nextHop: '10.0.1.1' },
    },
  ]);
  assert.is(more[0]?.outcome, 'accepted', JSON.stringify(more));

  const agents = [ctx.sound, ctx.broken].map((f) => [...f.hosts.values()][0]!);
  for (const agent of agents) {
    const vpc = agent.model.vpcs.get(vpcId);
    assert.ok(
      vpc && vpc.revision > vpc.floor + 1,
      `${agent.record.hostId} holds the VPC with deltas`,
    );
  }
  // A delta at a revision between the host's full and its latest, never delivered:
  // it deletes the host's own port.
  const late = (agent: (typeof agents)[number]): GoalStateMessage => {
    const vpc = agent.model.vpcs.get(vpcId)!;
    return {
      vpcId,
      bucket: bucketOf(vpcId),
      revision: vpc.revision - 1,
      mode: 'delta',
      target: agent.record.hostId,
      ops: [
        {
          op: 'delete',
          kind: 'port',
          key: `port:p${hostIds.indexOf(agent.record.hostId)}`,
          rev: vpc.revision - 1,
        },
      ],
    };
  };
  const before = agents.map((a) => ({ ...a.stats }));
  for (const agent of agents)
    ctx.nats.nc.publish(
      subjects.goalStateHost(agent.record, agent.record.hostId),
      encoder.encode(JSON.stringify(late(agent))),
    );
  await eventually(
    () => agents.every((a, i) => a.stats.outOfOrder > before[i]!.outOfOrder) || undefined,
    {
      timeoutMs: 10_000,
      what: 'both agents took the late delta in',
    },
  );
  await judgeRefused(ctx, agents, vpcId, before, 'appliedOutOfOrder');
});

test("a delta whose target's message before it never came is not applied but answered by a resync; a broken agent applying it is caught", async (ctx) => {
  const vpcId = unique('vgap');
  const hostIds = ctx.hosts.map((h) => h.hostId);
  await applyProgrammed(ctx.nats.nc, vpcWithPorts(vpcId, hostIds));
  const route = (destination: string) =>
    applyProgrammed<Array<{ outcome?: string; revision?: number }>>(ctx.nats.nc, [
      { id: unique('r'), kind: 'route.set', vpcId, spec: { destination, nextHop: '10.0.1.1' } },
    ]);
  const [first] = await route('10.9.0.0/24');
  const [second] = await route('10.8.0.0/24');
  assert.is(second?.outcome, 'accepted', JSON.stringify(second));
  // The positive control of the wire: the second route's multicast, as stored,
  // names the first's (the same target's message before it).
  const stored = await ctx.nats.jsm.streams.getMessage(streams.goalStates, {
    last_by_subj: subjects.goalStateMulticast(ctx.hosts[0]!, vpcId),
  });
  const multicast = stored?.json<GoalStateMessage>();
  assert.is(multicast?.revision, second?.revision);
  assert.is(multicast?.prev, first?.revision, 'the multicast names the one before it');

  const agents = [ctx.sound, ctx.broken].map((f) => [...f.hosts.values()][0]!);
  for (const agent of agents)
    assert.is(agent.stats.missedBefore, 0, `${agent.record.hostId}: nothing missed so far`);
  // A delta whose message before it (on the host's own line) never came: it deletes
  // the host's own port.
  const skipping = (agent: (typeof agents)[number]): GoalStateMessage => {
    const vpc = agent.model.vpcs.get(vpcId)!;
    return {
      vpcId,
      bucket: bucketOf(vpcId),
      revision: vpc.revision + 2,
      prev: vpc.revision + 1,
      mode: 'delta',
      target: agent.record.hostId,
      ops: [
        {
          op: 'delete',
          kind: 'port',
          key: `port:p${hostIds.indexOf(agent.record.hostId)}`,
          rev: vpc.revision + 2,
        },
      ],
    };
  };
  const before = agents.map((a) => ({ ...a.stats }));
  for (const agent of agents)
    ctx.nats.nc.publish(
      subjects.goalStateHost(agent.record, agent.record.hostId),
      encoder.encode(JSON.stringify(skipping(agent))),
    );
  await eventually(
    () => agents.every((a, i) => a.stats.missedBefore > before[i]!.missedBefore) || undefined,
    { timeoutMs: 10_000, what: 'both agents saw the message before it missing' },
  );
  await judgeRefused(ctx, agents, vpcId, before, 'appliedOverGap');
});

/**
 * The sound agent (first) did not apply the delta, asked for the VPC again and
 * kept its port; the broken one (second) applied it — its `counter` grew by one,
 * its port is gone — and the oracle finds it, and it alone.
 */
async function judgeRefused(
  ctx: Ctx,
  agents: SimulatedHost[],
  vpcId: string,
  before: SimulatedHost['stats'][],
  counter: 'appliedOutOfOrder' | 'appliedOverGap',
): Promise<void> {
  const [sound, broken] = agents;
  assert.is(sound!.stats[counter], before[0]![counter], `the sound agent: ${counter} unchanged`);
  await eventually(() => sound!.stats.resyncs > before[0]!.resyncs || undefined, {
    timeoutMs: 10_000,
    what: 'the sound agent asked for the VPC again',
  });
  assert.ok(sound!.model.vpcs.get(vpcId)!.resources.get('port:p0')?.deleted === false);
  assert.is(broken!.stats[counter], before[1]![counter] + 1);
  assert.ok(broken!.model.vpcs.get(vpcId)!.resources.get('port:p1')?.deleted !== false);
  const diff = diverging(
    await foldEventLog(ctx.nats.nc),
    agents.map((a) => a.model),
  );
  assert.equal(
    [...new Set(diff.map((d) => d.hostId))],
    [broken!.record.hostId],
    `the oracle finds the broken agent only: ${JSON.stringify(diff.slice(0, 2))}`,
  );
}

test.run();
