import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { makeTopology, vpcWithSubnet, VpcHarness } from '../support/domain.js';
import type { VpcEvent } from '../../shared/index.js';
import { vpc } from '../../actors/index.js';

const { commandFor, vpcDecider } = vpc;

const hosts = makeTopology({ regions: 1, clustersPerRegion: 2, hostsPerCluster: 2 });
const [h1, h2] = [hosts[0]!.hostId, hosts[2]!.hostId];
const place1 = {
  region: hosts[0]!.region,
  az: hosts[0]!.az,
  dc: hosts[0]!.dc,
  cluster: hosts[0]!.cluster,
};

/** A VPC 10.0.0.0/16 with subnet s1 10.0.1.0/24 (gateway .1) and group sg1. */
function given(): VpcHarness {
  const v = vpcWithSubnet(hosts, { vni: 100 });
  v.do('sg.create', {
    sgId: 'sg1',
    rules: [{ direction: 'ingress', protocol: 'tcp', portMin: 22, portMax: 22 }],
  });
  return v;
}

const events = (step: ReturnType<VpcHarness['do']>): VpcEvent[] =>
  step.decision.type === 'commit' ? step.decision.commit.events : [];

const Accepts = suite('decider: accepted intents and their events');

Accepts('vpc.create records the block and the given VNI', () => {
  const v = new VpcHarness('vpc-1', hosts);
  assert.equal(events(v.do('vpc.create', { cidr: '10.0.0.0/16', vni: 100 })), [
    { type: 'VpcCreated', cidr: '10.0.0.0/16', vni: 100 },
  ]);
  assert.is(v.state.status, 'active');
  assert.is(v.state.revision, 1);
});

Accepts(
  'port.create allocates the first free address after the gateway and a deterministic MAC',
  () => {
    const v = given();
    const first = events(v.do('port.create', { portId: 'p1', subnetId: 's1', hostId: h1 }));
    const again = given();
    const same = events(again.do('port.create', { portId: 'p1', subnetId: 's1', hostId: h1 }));
    assert.equal(first, same);
    assert.equal(first, [
      {
        type: 'PortCreated',
        portId: 'p1',
        subnetId: 's1',
        ip: '10.0.1.2',
        mac: (first[0] as { mac: string }).mac,
        to: { hostId: h1, place: place1, securityGroupIds: [] },
      },
    ]);
    assert.match((first[0] as { mac: string }).mac, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
    const second = events(v.do('port.create', { portId: 'p2', subnetId: 's1', hostId: h1 }));
    assert.is((second[0] as { ip: string }).ip, '10.0.1.3');
  },
);

Accepts('allocation skips addresses given explicitly and reuses freed ones after wrapping', () => {
  const v = new VpcHarness('vpc-1', hosts);
  v.do('vpc.create', { cidr: '10.0.0.0/16' });
  v.do('subnet.create', { subnetId: 's', cidr: '10.0.2.0/29', gatewayIp: '10.0.2.1' }); // usable .2–.6
  v.do('port.create', { portId: 'a', subnetId: 's', hostId: h1, ip: '10.0.2.3' });
  const ips = ['b', 'c', 'd', 'e'].map(
    (p) =>
      (events(v.do('port.create', { portId: p, subnetId: 's', hostId: h1 }))[0] as { ip: string })
        .ip,
  );
  assert.equal(ips, ['10.0.2.4', '10.0.2.5', '10.0.2.6', '10.0.2.2']);
  assert.is(
    VpcHarness.outcome(v.do('port.create', { portId: 'f', subnetId: 's', hostId: h1 })),
    'subnet_full',
  );
  v.do('port.delete', { portId: 'c' });
  assert.is(
    (events(v.do('port.create', { portId: 'g', subnetId: 's', hostId: h1 }))[0] as { ip: string })
      .ip,
    '10.0.2.5',
  );
});

Accepts('port.update to another host is a migration carrying both bindings', () => {
  const v = given();
  v.do('port.create', { portId: 'p1', subnetId: 's1', hostId: h1, securityGroupIds: ['sg1'] });
  const ev = events(v.do('port.update', { portId: 'p1', hostId: h2 }));
  assert.is(ev[0]?.type, 'PortUpdated');
  const e = ev[0] as Extract<VpcEvent, { type: 'PortUpdated' }>;
  assert.equal([e.from.hostId, e.to.hostId, e.to.securityGroupIds], [h1, h2, ['sg1']]);
  assert.is(v.state.ports.get('p1')?.hostId, h2);
  assert.equal([...v.state.hosts.keys()], [h2]);
});

Accepts('vpc.delete of an empty VPC, and the VPC can be created again', () => {
  const v = new VpcHarness('vpc-1', hosts);
  v.do('vpc.create', { cidr: '10.0.0.0/16' });
  assert.equal(events(v.do('vpc.delete', {})), [{ type: 'VpcDeleted' }]);
  assert.is(
    VpcHarness.outcome(
      v.do('subnet.create', { subnetId: 's', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' }),
    ),
    'vpc_not_found',
  );
  assert.is(VpcHarness.outcome(v.do('vpc.create', { cidr: '172.16.0.0/16' })), 'accepted');
  assert.is(v.state.cidr, '172.16.0.0/16');
});

const Rejects = suite('decider: each rule refuses with its own code');

const cases: Array<
  [string, (v: VpcHarness) => ReturnType<VpcHarness['do']>, string, string | undefined]
> = [
  [
    'a second vpc.create',
    (v) => v.do('vpc.create', { cidr: '10.0.0.0/16' }),
    'vpc_exists',
    'vpcId',
  ],
  [
    'a VPC block larger than /8',
    () => new VpcHarness('x', hosts).do('vpc.create', { cidr: '10.0.0.0/7' }),
    'cidr_too_large',
    'spec.cidr',
  ],
  [
    'a VPC block smaller than /28',
    () => new VpcHarness('x', hosts).do('vpc.create', { cidr: '10.0.0.0/29' }),
    'cidr_too_small',
    'spec.cidr',
  ],
  [
    'anything on a VPC that does not exist',
    () => new VpcHarness('x', hosts).do('route.delete', { destination: '0.0.0.0/0' }),
    'vpc_not_found',
    'vpcId',
  ],
  ['vpc.delete with resources', (v) => v.do('vpc.delete', {}), 'vpc_not_empty', undefined],
  [
    'a subnet outside the VPC',
    (v) => v.do('subnet.create', { subnetId: 's2', cidr: '10.1.0.0/24', gatewayIp: '10.1.0.1' }),
    'subnet_outside_vpc',
    'spec.cidr',
  ],
  [
    'an overlapping subnet',
    (v) => v.do('subnet.create', { subnetId: 's2', cidr: '10.0.0.0/20', gatewayIp: '10.0.0.1' }),
    'subnet_overlap',
    'spec.cidr',
  ],
  [
    'a subnet id taken',
    (v) => v.do('subnet.create', { subnetId: 's1', cidr: '10.0.2.0/24', gatewayIp: '10.0.2.1' }),
    'subnet_exists',
    'spec.subnetId',
  ],
  [
    'a subnet smaller than /29',
    (v) => v.do('subnet.create', { subnetId: 's2', cidr: '10.0.2.0/30', gatewayIp: '10.0.2.1' }),
    'subnet_too_small',
    'spec.cidr',
  ],
  [
    'a gateway outside its subnet',
    (v) => v.do('subnet.create', { subnetId: 's2', cidr: '10.0.2.0/24', gatewayIp: '10.0.3.1' }),
    'gateway_outside_subnet',
    'spec.gatewayIp',
  ],
  [
    'a gateway on the broadcast address',
    (v) => v.do('subnet.create', { subnetId: 's2', cidr: '10.0.2.0/24', gatewayIp: '10.0.2.255' }),
    'gateway_reserved',
    'spec.gatewayIp',
  ],
  [
    'deleting a subnet that does not exist',
    (v) => v.do('subnet.delete', { subnetId: 'nope' }),
    'subnet_not_found',
    'spec.subnetId',
  ],
  [
    'deleting a subnet with ports',
    (v) => (
      v.do('port.create', { portId: 'p', subnetId: 's1', hostId: h1 }),
      v.do('subnet.delete', { subnetId: 's1' })
    ),
    'subnet_in_use',
    'spec.subnetId',
  ],
  [
    'deleting a subnet a route hops through',
    (v) => (
      v.do('route.set', { destination: '0.0.0.0/0', nextHop: '10.0.1.254' }),
      v.do('subnet.delete', { subnetId: 's1' })
    ),
    'subnet_in_use',
    'spec.subnetId',
  ],
  [
    'a port in a subnet that does not exist',
    (v) => v.do('port.create', { portId: 'p', subnetId: 's9', hostId: h1 }),
    'subnet_not_found',
    'spec.subnetId',
  ],
  [
    'a port on a host not in the topology',
    (v) => v.do('port.create', { portId: 'p', subnetId: 's1', hostId: 'ghost' }),
    'unknown_host',
    'spec.hostId',
  ],
  [
    'a port id taken',
    (v) => (
      v.do('port.create', { portId: 'p', subnetId: 's1', hostId: h1 }),
      v.do('port.create', { portId: 'p', subnetId: 's1', hostId: h2 })
    ),
    'port_exists',
    'spec.portId',
  ],
  [
    'a port IP outside its subnet',
    (v) => v.do('port.create', { portId: 'p', subnetId: 's1', hostId: h1, ip: '10.0.2.5' }),
    'ip_outside_subnet',
    'spec.ip',
  ],
  [
    'a port on the gateway address',
    (v) => v.do('port.create', { portId: 'p', subnetId: 's1', hostId: h1, ip: '10.0.1.1' }),
    'ip_reserved',
    'spec.ip',
  ],
  [
    'a port on the network address',
    (v) => v.do('port.create', { portId: 'p', subnetId: 's1', hostId: h1, ip: '10.0.1.0' }),
    'ip_reserved',
    'spec.ip',
  ],
  [
    'a port IP taken',
    (v) => (
      v.do('port.create', { portId: 'p', subnetId: 's1', hostId: h1, ip: '10.0.1.9' }),
      v.do('port.create', { portId: 'q', subnetId: 's1', hostId: h1, ip: '10.0.1.9' })
    ),
    'ip_in_use',
    'spec.ip',
  ],
  [
    'a MAC taken',
    (v) => (
      v.do('port.create', { portId: 'p', subnetId: 's1', hostId: h1, mac: 'fa:16:3e:00:00:01' }),
      v.do('port.create', { portId: 'q', subnetId: 's1', hostId: h2, mac: 'fa:16:3e:00:00:01' })
    ),
    'mac_in_use',
    'spec.mac',
  ],
  [
    'a port in a group that does not exist',
    (v) =>
      v.do('port.create', {
        portId: 'p',
        subnetId: 's1',
        hostId: h1,
        securityGroupIds: ['sg1', 'sg9'],
      }),
    'sg_not_found',
    'spec.securityGroupIds.1',
  ],
  [
    'updating a port that does not exist',
    (v) => v.do('port.update', { portId: 'nope', hostId: h1 }),
    'port_not_found',
    'spec.portId',
  ],
  [
    'migrating a port to an unknown host',
    (v) => (
      v.do('port.create', { portId: 'p', subnetId: 's1', hostId: h1 }),
      v.do('port.update', { portId: 'p', hostId: 'ghost' })
    ),
    'unknown_host',
    'spec.hostId',
  ],
  [
    'deleting a port that does not exist',
    (v) => v.do('port.delete', { portId: 'nope' }),
    'port_not_found',
    'spec.portId',
  ],
  [
    'a group id taken',
    (v) => v.do('sg.create', { sgId: 'sg1', rules: [] }),
    'sg_exists',
    'spec.sgId',
  ],
  [
    'updating a group that does not exist',
    (v) => v.do('sg.update', { sgId: 'sg9', rules: [] }),
    'sg_not_found',
    'spec.sgId',
  ],
  [
    'a rule naming a group that does not exist',
    (v) =>
      v.do('sg.create', {
        sgId: 'sg2',
        rules: [{ direction: 'ingress', protocol: 'any', remoteGroupId: 'sg9' }],
      }),
    'sg_not_found',
    'spec.rules.0.remoteGroupId',
  ],
  [
    'deleting a group in use by a port',
    (v) => (
      v.do('port.create', { portId: 'p', subnetId: 's1', hostId: h1, securityGroupIds: ['sg1'] }),
      v.do('sg.delete', { sgId: 'sg1' })
    ),
    'sg_in_use',
    'spec.sgId',
  ],
  [
    'deleting a group another group names',
    (v) => (
      v.do('sg.create', {
        sgId: 'sg2',
        rules: [{ direction: 'ingress', protocol: 'any', remoteGroupId: 'sg1' }],
      }),
      v.do('sg.delete', { sgId: 'sg1' })
    ),
    'sg_in_use',
    'spec.sgId',
  ],
  [
    'a route into the VPC block',
    (v) => v.do('route.set', { destination: '10.0.5.0/24', nextHop: '10.0.1.9' }),
    'route_conflicts_local',
    'spec.destination',
  ],
  [
    'a route via a hop in no subnet',
    (v) => v.do('route.set', { destination: '0.0.0.0/0', nextHop: '10.0.9.9' }),
    'route_nexthop_unreachable',
    'spec.nextHop',
  ],
  [
    'deleting a route that does not exist',
    (v) => v.do('route.delete', { destination: '192.168.0.0/16' }),
    'route_not_found',
    'spec.destination',
  ],
  [
    'a stale expectedRevision',
    (v) =>
      v.do('route.set', { destination: '0.0.0.0/0', nextHop: '10.0.1.9' }, { expectedRevision: 1 }),
    'revision_conflict',
    'expectedRevision',
  ],
];

for (const [what, when, code, path] of cases) {
  Rejects(`${what} → ${code}`, () => {
    const v = given();
    const before =
      v.state.ports.size + v.state.subnets.size + v.state.groups.size + v.state.routes.size;
    const step = when(v);
    assert.is(VpcHarness.outcome(step), code);
    const ev = events(step);
    assert.is(ev.length, 1, 'a refusal is exactly one IntentRejected event');
    const rejected = ev[0] as Extract<VpcEvent, { type: 'IntentRejected' }>;
    assert.is(rejected.path, path);
    assert.ok(rejected.message.length > 10);
    // the refusal changes nothing but the revision and cursor
    const after =
      v.state.ports.size + v.state.subnets.size + v.state.groups.size + v.state.routes.size;
    assert.ok(after <= before + 1, 'only the setup step of the case may have added a resource');
  });
}

const Idempotency = suite('decider: idempotency, ordering and compare-and-set');

Idempotency('a re-sent intent id makes no new events and answers like the first', () => {
  const v = given();
  const first = v.do('port.create', { portId: 'p1', subnetId: 's1', hostId: h1 }, { id: 'same' });
  const revision = v.state.revision;
  const again = v.do('port.create', { portId: 'p1', subnetId: 's1', hostId: h1 }, { id: 'same' });
  assert.is(first.decision.type, 'commit');
  assert.equal(again.decision, { type: 'duplicate', revision, outcome: 'accepted' });
  assert.is(v.state.revision, revision);
  assert.is(v.history.length, 4);
});

Idempotency(
  'an intent naming another VPC is rejected into the log of the VPC that received it (wrong_vpc)',
  () => {
    const v = given();
    const step = v.send({
      id: 'stray',
      kind: 'route.delete',
      vpcId: 'vpc-2',
      spec: { destination: '0.0.0.0/0' },
    });
    assert.equal(step.decision.type === 'commit' ? step.decision.commit : undefined, {
      intentId: 'stray',
      kind: 'route.delete',
      vpcId: 'vpc-1',
      cursor: 4,
      at: '2026-11-24T12:00:00.000Z',
      events: [
        {
          type: 'IntentRejected',
          code: 'wrong_vpc',
          message: 'intent for vpc-2 reached the actor of vpc-1',
          path: 'vpcId',
        },
      ],
    });
  },
);

Idempotency('a re-sent rejected intent answers with the same error', () => {
  const v = given();
  v.do('port.delete', { portId: 'nope' }, { id: 'r' });
  const again = v.do('port.delete', { portId: 'nope' }, { id: 'r' });
  assert.is(again.decision.type, 'duplicate');
  if (again.decision.type === 'duplicate') {
    assert.is(again.decision.outcome, 'rejected');
    assert.is(again.decision.error?.code, 'port_not_found');
  }
});

Idempotency(
  'a malformed intent sent again with the same id answers like the first: one rejection in the log',
  () => {
    const v = given();
    const bad = { id: 'bad-1', kind: 'port.explode', vpcId: 'vpc-1', spec: {} };
    const stored = (seq: number) => ({
      seq,
      subject: 'intent.7.vpc-1',
      time: '2026-11-24T12:00:00.000Z',
      data: new TextEncoder().encode(JSON.stringify(bad)),
    });
    let state = v.state;
    const first = vpcDecider.decide(commandFor(stored(10), v.lookupHost).command, state);
    assert.is(first.type, 'append');
    if (first.type !== 'append') return;
    const rejected = first.commit.events[0] as Extract<VpcEvent, { type: 'IntentRejected' }>;
    assert.is(rejected.type, 'IntentRejected');
    assert.is(rejected.code, 'unknown_kind');
    state = vpcDecider.evolve(state, { revision: 20, commit: first.commit });
    // The same bytes again, stored later (after the stream's duplicate window).
    const again = vpcDecider.decide(commandFor(stored(11), v.lookupHost).command, state);
    const { type: _type, ...error } = rejected;
    assert.equal(again, {
      type: 'answer',
      answer: { type: 'duplicate', revision: 20, outcome: 'rejected', error },
    });
  },
);

Idempotency('expectedRevision equal to the current revision is applied', () => {
  const v = given();
  assert.is(
    VpcHarness.outcome(
      v.do(
        'route.set',
        { destination: '0.0.0.0/0', nextHop: '10.0.1.9' },
        { expectedRevision: v.state.revision },
      ),
    ),
    'accepted',
  );
});

Idempotency('an intent at or below the cursor is stale and decides nothing', () => {
  const v = given();
  const intent = { id: 'x', kind: 'vpc.delete', vpcId: 'vpc-1', spec: {} } as const;
  const decision = vpc.decide({ intent, cursor: v.state.cursor, at: 't' }, v.state, {
    lookupHost: v.lookupHost,
  });
  assert.equal(decision, { type: 'stale', cursor: v.state.cursor });
});

Accepts.run();
Rejects.run();
Idempotency.run();
