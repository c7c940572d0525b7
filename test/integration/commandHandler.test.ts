import * as assert from 'uvu/assert';
import {
  isSkipped,
  type EventCommit,
  type EventLog,
  type Recorded,
  type VpcIntent,
} from '../../shared/index.js';
import { createCommandHandler, createJetStreamEventLog } from '../../infra/index.js';
import { vpc } from '../../actors/index.js';

const { vpcDecider } = vpc;
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

/** The command for the i-th intent, with the place of the host it names (resolved at the edge). */
function command(intent: VpcIntent, i: number): vpc.VpcCommand {
  const hostId = 'hostId' in intent.spec ? intent.spec.hostId : undefined;
  const place = typeof hostId === 'string' ? lookupHost(hostId) : undefined;
  return {
    type: 'decide',
    input: { intent, cursor: i + 1, at: 't' },
    hosts: new Map(place && hostId ? [[hostId, place]] : []),
  };
}

/** Cuts `n` commands into groups of these sizes, round robin. */
function groups(n: number, sizes: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0, k = 0; i < n; k++) {
    const size = Math.min(sizes[k % sizes.length]!, n - i);
    out.push([i, i + size]);
    i += size;
  }
  return out;
}

Handler(
  'one owner, group commits: each intent once, in order, with the outcomes of a pure run',
  async ({ log }) => {
    const vpcId = unique('vpc');
    const list = intents(vpcId, 200);
    const handler = createCommandHandler({ log, decider: vpcDecider });
    let state = await handler.load(vpcId);
    const cut = groups(list.length, [1, 7, 20, 3, 1, 12]);
    for (const [from, to] of cut) {
      const r = await handler.handleGroup(
        vpcId,
        list.slice(from, to).map((intent, k) => command(intent, from + k)),
        state,
      );
      assert.is(r.commits.length, to - from);
      state = r.state;
      assert.is(state.revision, r.revision);
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
    // A group's commits share its revision: as many revisions as groups.
    assert.is(new Set(log_.map((r) => r.revision)).size, cut.length);
    assert.is(state.revision, log_.at(-1)!.revision);
    // The state decided in memory (folded at the pending revision, then restamped)
    // is the state the log folds to.
    const reloaded = await handler.load(vpcId);
    assert.equal(vpc.toSnapshot(reloaded), vpc.toSnapshot(state));
  },
);

Handler(
  'two owners racing with groups cut differently: every group lands whole or not at all',
  async ({ log }) => {
    const vpcId = unique('vpc');
    const list = intents(vpcId, 200);
    const [ha, hb] = [
      createCommandHandler({ log, decider: vpcDecider }),
      createCommandHandler({ log, decider: vpcDecider }),
    ];
    let [sa, sb] = [await ha.load(vpcId), await hb.load(vpcId)];
    // A zombie and its successor work the same intents at once, cut into groups of
    // different sizes; each decides from its own state and appends by compare-and-set.
    const run = async (
      h: typeof ha,
      getState: () => typeof sa,
      setState: (s: typeof sa) => void,
      sizes: number[],
    ): Promise<Array<string[]>> => {
      const appended: Array<string[]> = [];
      for (const [from, to] of groups(list.length, sizes)) {
        const r = await h.handleGroup(
          vpcId,
          list.slice(from, to).map((intent, k) => command(intent, from + k)),
          getState(),
        );
        setState(r.state);
        if (r.revision !== undefined)
          appended.push(r.commits.map((c) => (c as { intentId: string }).intentId));
      }
      return appended;
    };
    const [byA, byB] = await Promise.all([
      run(
        ha,
        () => sa,
        (s) => (sa = s),
        [7, 3, 11],
      ),
      run(
        hb,
        () => sb,
        (s) => (sb = s),
        [5, 13, 2],
      ),
    ]);
    const log_ = await readAll(log, vpcId);
    assert.equal(
      log_.map((r) => r.commit.intentId),
      list.map((i) => i.id),
      'once each, in order',
    );
    assert.equal(
      log_.map((r) => outcomeOf(r.commit)),
      pureOutcomes(vpcId, list),
    );
    // Every EVENTS message holds exactly a group one owner appended: whole, never a part.
    const messages = new Map<number, string[]>();
    for (const r of log_)
      messages.set(r.revision, [...(messages.get(r.revision) ?? []), r.commit.intentId]);
    const appended = new Set([...byA, ...byB].map((g) => g.join(',')));
    for (const ids of messages.values()) assert.ok(appended.has(ids.join(',')), ids.join(','));
    assert.is(messages.size, byA.length + byB.length);
    assert.is(sa.revision, sb.revision);
  },
);

Handler.run();
