import * as assert from 'uvu/assert';
import {
  isSkipped,
  type EventCommit,
  type EventLog,
  type Recorded,
  type VpcIntent,
} from '../../shared/index.js';
import { createCommandHandler, createJetStreamEventLog } from '../../infra/index.js';
import { vpcDecider } from '../../services/controller/vpcDecider.js';
import { makeTopology, VpcHarness } from '../support/domain.js';
import { natsSuite, unique } from '../support/index.js';

const Handler = natsSuite<{ log: EventLog }>(
  'command handler: read, fold, decide, append, retry (real JetStream)',
);

Handler.before(async (ctx) => {
  ctx.log = await createJetStreamEventLog(ctx.nc);
});

const hosts = makeTopology({ regions: 1, clustersPerRegion: 2, hostsPerCluster: 3 });
const places = new Map(
  hosts.map((h) => [h.hostId, { region: h.region, az: h.az, dc: h.dc, cluster: h.cluster }]),
);
const lookupHost = (id: string) => places.get(id);

/** A VPC's intents: create, a subnet, then ports created, moved and deleted, some refused. */
function intents(vpcId: string, count: number): VpcIntent[] {
  const out: VpcIntent[] = [
    { id: `${vpcId}-0`, kind: 'vpc.create', vpcId, spec: { cidr: '10.0.0.0/16' } },
    {
      id: `${vpcId}-1`,
      kind: 'subnet.create',
      vpcId,
      spec: { subnetId: 's', cidr: '10.0.0.0/20', gatewayIp: '10.0.0.1' },
    },
  ];
  for (let i = 2; i < count; i++) {
    const p = `p${i % 40}`;
    const host = hosts[i % hosts.length]!.hostId;
    const id = `${vpcId}-${i}`;
    if (i % 5 === 0) out.push({ id, kind: 'port.delete', vpcId, spec: { portId: p } });
    else if (i % 7 === 0)
      out.push({ id, kind: 'port.update', vpcId, spec: { portId: p, hostId: host } });
    else
      out.push({
        id,
        kind: 'port.create',
        vpcId,
        spec: { portId: p, subnetId: 's', hostId: host },
      });
  }
  return out;
}

async function readAll(log: EventLog, vpcId: string): Promise<Array<Recorded<EventCommit>>> {
  const out: Array<Recorded<EventCommit>> = [];
  for await (const r of log.read(vpcId, 0)) if (!isSkipped(r)) out.push(r);
  return out;
}

/** Outcome per intent of a pure run of the same intents (the judge). */
function pureOutcomes(vpcId: string, list: VpcIntent[]): string[] {
  const v = new VpcHarness(vpcId, hosts);
  return list.map((intent) => VpcHarness.outcome(v.send(intent)));
}

const outcomeOf = (commit: EventCommit): string => {
  const first = commit.events[0];
  return first?.type === 'IntentRejected' ? first.code : 'accepted';
};

Handler(
  'one owner: one commit per intent, in order, with the outcomes of a pure run',
  async ({ log }) => {
    const vpcId = unique('vpc');
    const list = intents(vpcId, 200);
    const handler = createCommandHandler({ log, decider: vpcDecider });
    let state = await handler.load(vpcId);
    for (const [i, intent] of list.entries()) {
      const r = await handler.handle(
        vpcId,
        { type: 'decide' as const, input: { intent, cursor: i + 1, at: 't' }, lookupHost },
        state,
      );
      assert.is(r.type, 'appended');
      state = r.state;
    }
    const log_ = await readAll(log, vpcId);
    assert.equal(
      log_.map((r) => r.commit.intentId),
      list.map((i) => i.id),
    );
    assert.equal(
      log_.map((r) => outcomeOf(r.commit)),
      pureOutcomes(vpcId, list),
    );
    assert.is(state.revision, log_.at(-1)!.revision);
    const reloaded = await handler.load(vpcId);
    assert.equal([...reloaded.ports.keys()].sort(), [...state.ports.keys()].sort());
    assert.is(reloaded.revision, state.revision);
  },
);

Handler(
  'two owners racing over the same intents: each intent is appended exactly once',
  async ({ log }) => {
    const vpcId = unique('vpc');
    const list = intents(vpcId, 200);
    const [ha, hb] = [
      createCommandHandler({ log, decider: vpcDecider }),
      createCommandHandler({ log, decider: vpcDecider }),
    ];
    let [sa, sb] = [await ha.load(vpcId), await hb.load(vpcId)];
    const pairs: string[] = [];
    // Lock-step: both owners (say a zombie and its successor) try every intent at once.
    for (const [i, intent] of list.entries()) {
      const command = {
        type: 'decide' as const,
        input: { intent, cursor: i + 1, at: 't' },
        lookupHost,
      };
      const [ra, rb] = await Promise.all([
        ha.handle(vpcId, command, sa),
        hb.handle(vpcId, command, sb),
      ]);
      sa = ra.state;
      sb = rb.state;
      const kind = (r: typeof ra) => (r.type === 'answered' ? r.answer.type : r.type);
      pairs.push([kind(ra), kind(rb)].sort().join('+'));
    }
    const log_ = await readAll(log, vpcId);
    assert.equal(
      log_.map((r) => r.commit.intentId),
      list.map((i) => i.id),
      'once each, in order',
    );
    assert.equal(
      log_.map((r) => r.commit.cursor),
      list.map((_, i) => i + 1),
    );
    assert.equal(
      log_.map((r) => outcomeOf(r.commit)),
      pureOutcomes(vpcId, list),
    );
    // Per intent one owner appended; the other found it decided (by the log or the decider).
    const counts = new Map<string, number>();
    for (const pair of pairs) counts.set(pair, (counts.get(pair) ?? 0) + 1);
    for (const pair of counts.keys())
      assert.ok(pair.startsWith('appended+') && !pair.endsWith('+appended'), pair);
    assert.is(sa.revision, sb.revision);
  },
);

Handler.run();
