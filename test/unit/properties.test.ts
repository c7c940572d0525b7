/**
 * Invariants that are the spec (issue 3), checked on random intent sequences over
 * random topologies. Seeded (FC_SEED to vary), so CI is reproducible.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  clusterKey,
  type GoalStateMessage,
  type HostRecord,
  type VpcIntent,
} from '../../shared/index.js';
import { nca, vpc } from '../../actors/index.js';
import { fold, makeTopology, VpcHarness, type Step } from '../support/domain.js';

const seed = Number(process.env.FC_SEED ?? 20261124);
const numRuns = Number(process.env.FC_RUNS ?? 150);

const SUBNETS = ['10.0.0.0/28', '10.0.1.0/27', '10.0.2.0/26', '10.0.3.0/24'];
const ROUTES = ['0.0.0.0/0', '192.168.0.0/16', '172.16.0.0/12'];

type Draft = (hosts: string[]) => Omit<VpcIntent, 'id' | 'vpcId'>;

const pick = <T>(xs: readonly T[]) => fc.nat({ max: 1000 }).map((n) => xs[n % xs.length]!);
const portId = fc.nat({ max: 24 }).map((n) => `p${n}`);
const subnet = fc.nat({ max: SUBNETS.length - 1 });
const groupId = fc.nat({ max: 3 }).map((n) => `g${n}`);
const groups = fc.uniqueArray(groupId, { maxLength: 3 });
const hostIndex = fc.nat({ max: 1000 });

const draft: fc.Arbitrary<Draft> = fc.oneof(
  {
    weight: 1,
    arbitrary: subnet.map((i): Draft => () => ({
      kind: 'subnet.create',
      spec: {
        subnetId: `s${i}`,
        cidr: SUBNETS[i]!,
        gatewayIp: SUBNETS[i]!.replace(/0\/\d+$/, '1'),
      },
    })),
  },
  {
    weight: 1,
    arbitrary: subnet.map((i): Draft => () => ({
      kind: 'subnet.delete',
      spec: { subnetId: `s${i}` },
    })),
  },
  {
    weight: 8,
    arbitrary: fc
      .tuple(portId, subnet, hostIndex, groups)
      .map(([p, s, h, g]): Draft => (hosts) => ({
        kind: 'port.create',
        spec: {
          portId: p,
          subnetId: `s${s}`,
          hostId: hosts[h % hosts.length]!,
          securityGroupIds: g,
        },
      })),
  },
  {
    weight: 4,
    arbitrary: fc
      .tuple(portId, fc.option(hostIndex), fc.option(groups))
      .map(([p, h, g]): Draft => (hosts) => ({
        kind: 'port.update',
        spec: {
          portId: p,
          ...(h === null && g === null ? { hostId: hosts[0]! } : {}),
          ...(h === null ? {} : { hostId: hosts[h % hosts.length]! }),
          ...(g === null ? {} : { securityGroupIds: g }),
        },
      })),
  },
  {
    weight: 3,
    arbitrary: portId.map((p): Draft => () => ({ kind: 'port.delete', spec: { portId: p } })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(groupId, fc.boolean(), fc.nat({ max: 65535 }), fc.option(groupId))
      .map(([g, create, port, remote]): Draft => () => ({
        kind: create ? 'sg.create' : 'sg.update',
        spec: {
          sgId: g,
          rules: [
            {
              direction: 'ingress',
              protocol: 'tcp',
              portMin: 1 + (port % 1000),
              portMax: 1 + (port % 1000),
            },
            ...(remote === null
              ? []
              : [
                  { direction: 'egress' as const, protocol: 'any' as const, remoteGroupId: remote },
                ]),
          ],
        },
      })),
  },
  {
    weight: 1,
    arbitrary: groupId.map((g): Draft => () => ({ kind: 'sg.delete', spec: { sgId: g } })),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(pick(ROUTES), subnet).map(([d, s]): Draft => () => ({
      kind: 'route.set',
      spec: { destination: d, nextHop: SUBNETS[s]!.replace(/0\/\d+$/, '9') },
    })),
  },
  {
    weight: 1,
    arbitrary: pick(ROUTES).map((d): Draft => () => ({
      kind: 'route.delete',
      spec: { destination: d },
    })),
  },
  { weight: 1, arbitrary: fc.constant<Draft>(() => ({ kind: 'vpc.delete', spec: {} })) },
);

const scenario = fc.record({
  topology: fc.record({
    regions: fc.integer({ min: 1, max: 2 }),
    clustersPerRegion: fc.integer({ min: 1, max: 3 }),
    hostsPerCluster: fc.integer({ min: 1, max: 4 }),
  }),
  drafts: fc.array(draft, { minLength: 20, maxLength: 120, size: 'max' }),
  step: fc.integer({ min: 1, max: 3 }),
});

interface Run {
  harness: VpcHarness;
  hosts: HostRecord[];
  steps: Step[];
}

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function play(s: Scenario): Run {
  const hosts = makeTopology(s.topology);
  const harness = new VpcHarness('vpc-p', hosts, 3, () => s.step);
  const ids = hosts.map((h) => h.hostId);
  // Prelude: a VPC with its subnets and two groups, so most drafted intents can apply.
  const steps = [harness.do('vpc.create', { cidr: '10.0.0.0/16' })];
  SUBNETS.forEach((cidr, i) =>
    steps.push(
      harness.do('subnet.create', {
        subnetId: `s${i}`,
        cidr,
        gatewayIp: cidr.replace(/0\/\d+$/, '1'),
      }),
    ),
  );
  for (const sgId of ['g0', 'g1'])
    steps.push(
      harness.do('sg.create', { sgId, rules: [{ direction: 'ingress', protocol: 'icmp' }] }),
    );
  for (const d of s.drafts) {
    const { kind, spec } = d(ids);
    steps.push(harness.do(kind, spec));
  }
  return { harness, hosts, steps };
}

/** Who receives a message: its host, or the cluster's hosts that host the VPC after the commit. */
function recipients(run: Run, state: vpc.VpcState, m: GoalStateMessage): string[] {
  if (run.hosts.some((h) => h.hostId === m.target)) return [m.target];
  return [...(state.clusters.get(m.target)?.hosts ?? [])];
}

const expected = (state: vpc.VpcState, hostId: string) =>
  new Map(
    vpc
      .hostResources(state, hostId)
      .map((op) => [
        op.key,
        { kind: op.kind, rev: op.rev, value: op.op === 'upsert' ? op.value : null },
      ]),
  );

/** Replays the run, delivering each message to its recipients; returns per-host message lists. */
/**
 * Folds the run's history from scratch and projects every commit, calling `visit`
 * with the hosts of the VPC before the commit, the state after it, and its messages.
 */
function replay(
  run: Run,
  visit: (
    hostedBefore: ReadonlySet<string>,
    state: vpc.VpcState,
    messages: vpc.ProjectedMessage[],
  ) => void,
): void {
  let state = vpc.initialState(run.harness.vpcId);
  for (const recorded of run.harness.history) {
    const hostedBefore = new Set(state.hosts.keys());
    state = vpc.evolve(state, recorded);
    visit(hostedBefore, state, vpc.project(state, recorded, 3));
  }
}

function deliveries(run: Run): Map<string, GoalStateMessage[]> {
  const byHost = new Map<string, GoalStateMessage[]>(run.hosts.map((h) => [h.hostId, []]));
  replay(run, (_, state, messages) => {
    for (const p of messages) {
      for (const hostId of recipients(run, state, p.message)) byHost.get(hostId)!.push(p.message);
    }
  });
  return byHost;
}

/**
 * A host's model after applying `messages` in the given order; after each, the
 * live count it keeps must be what its resources say (hostsVpc reads only the count).
 */
function modelOf(hostId: string, messages: readonly GoalStateMessage[]): nca.HostModel {
  const model = nca.emptyHostModel(hostId);
  for (const m of messages) {
    nca.apply(model, m);
    const live = nca.liveResources(model, m.vpcId).size;
    assert.is(model.vpcs.get(m.vpcId)?.live, live, `live count of ${hostId} after r${m.revision}`);
    assert.is(nca.hostsVpc(model, m.vpcId), live > 0);
  }
  return model;
}

const Props = suite('properties of the decider, projection and apply');

Props('the scenarios exercise what the properties judge (a guard against vacuous runs)', () => {
  const seen = {
    accepted: 0,
    unicast: 0,
    multicast: 0,
    joins: 0,
    leaves: 0,
    migrations: 0,
    groupUpdates: 0,
    routes: 0,
  };
  fc.assert(
    fc.property(scenario, (s) => {
      for (const step of play(s).steps) {
        if (VpcHarness.outcome(step) !== 'accepted') continue;
        seen.accepted += 1;
        if (step.intent.kind === 'port.update' && 'hostId' in step.intent.spec)
          seen.migrations += 1;
        if (step.intent.kind === 'sg.update' && step.messages.length > 0) seen.groupUpdates += 1;
        if (step.intent.kind === 'route.set' && step.messages.length > 0) seen.routes += 1;
        for (const m of step.messages) {
          if (m.subject.startsWith('gsm.')) seen.multicast += 1;
          else if (m.message.mode === 'delta') seen.unicast += 1;
          else if (m.message.ops.length === 0) seen.leaves += 1;
          else seen.joins += 1;
        }
      }
    }),
    { seed, numRuns },
  );
  for (const [what, count] of Object.entries(seen))
    assert.ok(count >= numRuns / 3, `${what}: only ${count} over ${numRuns} runs`);
});

/** Every host's model, built from its messages in `order`, equals the projection of the final state. */
function assertConverges(
  run: Run,
  order: (messages: GoalStateMessage[]) => GoalStateMessage[],
): void {
  const final = run.harness.state;
  for (const [hostId, messages] of deliveries(run)) {
    const model = modelOf(hostId, order(messages));
    assert.equal(nca.liveResources(model, final.vpcId), expected(final, hostId), `host ${hostId}`);
  }
}

Props(
  'delta ≡ full: every host ends with exactly the full state projected from the final VPC state',
  () => {
    fc.assert(
      fc.property(scenario, (s) => assertConverges(play(s), (messages) => messages)),
      { seed, numRuns },
    );
  },
);

Props(
  'applying any delivered message again, or an older one after newer ones, changes nothing',
  () => {
    fc.assert(
      fc.property(scenario, fc.array(fc.nat(), { maxLength: 20 }), (s, picks) => {
        const run = play(s);
        for (const [hostId, messages] of deliveries(run)) {
          if (messages.length === 0) continue;
          const model = modelOf(hostId, messages);
          const before = JSON.stringify([...nca.liveResources(model, run.harness.vpcId)]);
          for (const n of picks) {
            const result = nca.apply(model, messages[n % messages.length]!);
            assert.is(result.changed, 0);
          }
          assert.is(JSON.stringify([...nca.liveResources(model, run.harness.vpcId)]), before);
        }
      }),
      { seed, numRuns },
    );
  },
);

Props(
  'delivery order does not matter: any shuffle of a host’s messages converges to the same state',
  () => {
    fc.assert(
      fc.property(scenario, fc.integer(), (s, shuffleSeed) => {
        let x = shuffleSeed >>> 0 || 1;
        const rand = (): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0), x / 2 ** 32);
        assertConverges(play(s), (messages) => [...messages].sort(() => rand() - 0.5));
      }),
      { seed, numRuns },
    );
  },
);

/**
 * The run's commits cut into consecutive groups of 1–`most` (cut by `cuts`), each
 * group sharing one revision as a group commit does; per host, the messages the
 * groups send it (group semantics: vpc.groupMessages at the group's end).
 */
function groupDeliveries(run: Run, cuts: readonly number[], most: number) {
  const byHost = new Map<string, GoalStateMessage[]>(run.hosts.map((h) => [h.hostId, []]));
  const history = run.harness.history;
  let state = vpc.initialState(run.harness.vpcId);
  let groups = 0;
  for (let i = 0, g = 0; i < history.length; g++) {
    const size = 1 + ((cuts[g % Math.max(1, cuts.length)] ?? 0) % most);
    const group = history.slice(i, i + size);
    i += group.length;
    const revision = group.at(-1)!.revision;
    const affected = new Set<string>();
    const perCommit = group.map(({ commit }) => {
      state = vpc.evolve(state, { revision, commit });
      const projected = vpc.project(state, { revision, commit }, 3);
      for (const h of vpc.affectedHosts(state, projected)) affected.add(h);
      return projected;
    });
    const messages = vpc.groupMessages(state, perCommit, revision, 3);
    // `programmed` waits for an ack from each host a commit of the group affects.
    const reached = new Set(messages.flatMap(({ message }) => recipients(run, state, message)));
    for (const h of affected)
      assert.ok(reached.has(h), `r${revision}: ${h} affected, sent nothing`);
    if (group.length > 1) groups += 1;
    for (const { message } of messages) {
      const targets = new Set(messages.map((m) => m.message.target));
      assert.is(targets.size, messages.length, 'one message per target and revision');
      for (const hostId of recipients(run, state, message)) byHost.get(hostId)!.push(message);
    }
  }
  return { byHost, groups, final: state };
}

Props(
  'group commits: whatever the grouping and delivery order, every host ends with the full state projected from the final VPC state',
  () => {
    let groups = 0;
    fc.assert(
      fc.property(
        scenario,
        fc.array(fc.nat(), { minLength: 1, maxLength: 30 }),
        fc.integer(),
        (s, cuts, shuffleSeed) => {
          const run = play(s);
          const delivered = groupDeliveries(run, cuts, 12);
          groups += delivered.groups;
          let x = shuffleSeed >>> 0 || 1;
          const rand = (): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0), x / 2 ** 32);
          // Grouped, the commits carry their group's revision: the final state's revs differ.
          const final = delivered.final;
          for (const [hostId, messages] of delivered.byHost) {
            for (const order of [messages, [...messages].sort(() => rand() - 0.5)]) {
              const model = modelOf(hostId, order);
              assert.equal(
                nca.liveResources(model, final.vpcId),
                expected(final, hostId),
                `host ${hostId}`,
              );
            }
          }
        },
      ),
      { seed, numRuns },
    );
    assert.ok(groups >= numRuns, `only ${groups} groups of several commits over ${numRuns} runs`);
  },
);

Props(
  'needed = delivered: a message reaches only hosts of the VPC, and group rules only hosts with member ports',
  () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const run = play(s);
        replay(run, (hostedBefore, state, messages) => {
          for (const { message } of messages) {
            const to = recipients(run, state, message);
            assert.ok(to.length > 0, `message to ${message.target} reaches nobody`);
            for (const hostId of to) {
              const hosts = state.hosts.has(hostId);
              const leaving =
                message.mode === 'full' &&
                message.ops.length === 0 &&
                hostedBefore.has(hostId) &&
                !hosts;
              assert.ok(hosts || leaving, `host ${hostId} got ${message.vpcId} without hosting it`);
              for (const op of message.ops) {
                if (op.kind !== 'sg' || op.op !== 'upsert') continue;
                const sgId = op.value.sgId;
                const member = [...(state.hosts.get(hostId)?.ports ?? [])].some((p) =>
                  state.ports.get(p)?.securityGroupIds.includes(sgId),
                );
                assert.ok(member, `host ${hostId} got rules of ${sgId} without a member port`);
              }
            }
            if (message.mode === 'delta' && !run.hosts.some((h) => h.hostId === message.target)) {
              assert.ok(
                state.clusters.has(message.target),
                'multicast to a cluster that hosts the VPC',
              );
            }
          }
        });
      }),
      { seed, numRuns },
    );
  },
);

Props(
  'one multicast per cluster: a neighbor change is published once per cluster hosting the VPC, not per host',
  () => {
    fc.assert(
      fc.property(scenario, (s) => {
        replay(play(s), (_, state, messages) => {
          const multicasts = messages.filter((p) => p.subject.startsWith('gsm.'));
          const targets = multicasts.map((p) => p.message.target);
          assert.is(
            new Set(targets).size,
            targets.length,
            'at most one multicast per cluster per commit',
          );
          assert.ok(targets.length <= state.clusters.size);
        });
      }),
      { seed, numRuns },
    );
  },
);

const byKey = <T extends { key: string }>(ops: readonly T[]) =>
  [...ops].sort((a, b) => (a.key < b.key ? -1 : 1));
/** Messages and ops in a canonical order (theirs follows map insertion order). */
const bySubject = (messages: vpc.ProjectedMessage[]) =>
  [...messages]
    .sort((a, b) => (a.msgId < b.msgId ? -1 : 1))
    .map((m) => ({ ...m, message: { ...m.message, ops: byKey(m.message.ops) } }));

function digest(state: vpc.VpcState): string {
  const sorted = <T>(m: Map<string, T>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify({
    status: state.status,
    revision: state.revision,
    cursor: state.cursor,
    cidr: state.cidr,
    vni: state.vni,
    subnets: sorted(state.subnets),
    ports: sorted(state.ports),
    groups: sorted(state.groups),
    routes: sorted(state.routes),
    hosts: sorted(state.hosts).map(([h, e]) => [h, clusterKey(e.place), [...e.ports].sort()]),
    intents: sorted(state.intents),
  });
}

Props(
  'replay determinism: folding the same commits twice, or deciding the same intents again, gives the same',
  () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const run = play(s);
        const again = play(s);
        assert.equal(again.harness.history, run.harness.history);
        assert.is(digest(fold('vpc-p', run.harness.history)), digest(run.harness.state));
        assert.is(
          digest(fold('vpc-p', run.harness.history)),
          digest(fold('vpc-p', run.harness.history)),
        );
      }),
      { seed, numRuns: 50 },
    );
  },
);

Props(
  'a snapshot restores the state: folding the rest of the history onto it gives the same states and goal states',
  () => {
    fc.assert(
      fc.property(scenario, fc.nat(), (s, at) => {
        const { history } = play(s).harness;
        const cut = at % (history.length + 1);
        let original = fold('vpc-p', history.slice(0, cut));
        const text = JSON.stringify(vpc.toSnapshot(original));
        let restored = vpc.fromSnapshot(JSON.parse(text) as vpc.VpcSnapshot);
        assert.is(digest(restored), digest(original));
        for (const recorded of history.slice(cut)) {
          original = vpc.evolve(original, recorded);
          restored = vpc.evolve(restored, recorded);
          assert.equal(
            bySubject(vpc.project(restored, recorded, 3)),
            bySubject(vpc.project(original, recorded, 3)),
          );
        }
        assert.is(digest(restored), digest(original));
        const hosts = [...original.hosts.keys()].sort();
        assert.equal(
          hosts.map((h) => byKey(vpc.hostResources(restored, h))),
          hosts.map((h) => byKey(vpc.hostResources(original, h))),
        );
      }),
      { seed, numRuns: 80 },
    );
  },
);

Props.run();
