import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { GoalStateMessage } from '../../shared/index.js';
import { nca } from '../../actors/index.js';
import {
  hostIdAt,
  makeTopology,
  vpcWithSubnet,
  type Step,
  type VpcHarness,
} from '../support/domain.js';

// Two regions × two clusters × three hosts.
const hosts = makeTopology({ regions: 2, clustersPerRegion: 2, hostsPerCluster: 3 });
const H = hostIdAt;

function given(): VpcHarness {
  const v = vpcWithSubnet(hosts, { bucket: 42 });
  v.do('sg.create', {
    sgId: 'web',
    rules: [{ direction: 'ingress', protocol: 'tcp', portMin: 443, portMax: 443 }],
  });
  return v;
}

const summary = (step: Step) =>
  step.messages.map(
    (m) =>
      `${m.subject} ${m.message.mode} ${m.message.ops.map((o) => `${o.op === 'upsert' ? '+' : '-'}${o.key}`).join(' ')}`,
  );

const P = suite('goal-state projection, by example');

P(
  'the first port on a host sends it the full state, and nothing to an otherwise empty cluster',
  () => {
    const v = given();
    const step = v.do('port.create', {
      portId: 'p1',
      subnetId: 's1',
      hostId: H(0, 0, 0),
      securityGroupIds: ['web'],
    });
    assert.equal(summary(step), [
      'gs.r0.r0a.dc0.c0.h-r0-c0-0 full +vpc +subnet:s1 +port:p1 +neighbor:p1 +sg:web',
    ]);
    const m = step.messages[0]!;
    assert.is(m.msgId, `vpc-1:${step.recorded!.revision}:h-r0-c0-0`);
    assert.is(m.message.bucket, 42);
  },
);

P(
  'a port on a host already in the VPC: a unicast delta and one neighbor multicast per cluster',
  () => {
    const v = given();
    v.do('port.create', {
      portId: 'p1',
      subnetId: 's1',
      hostId: H(0, 0, 0),
      securityGroupIds: ['web'],
    });
    v.do('port.create', { portId: 'p2', subnetId: 's1', hostId: H(1, 1, 2) });
    const step = v.do('port.create', {
      portId: 'p3',
      subnetId: 's1',
      hostId: H(0, 0, 0),
      securityGroupIds: ['web'],
    });
    assert.equal(summary(step), [
      'gs.r0.r0a.dc0.c0.h-r0-c0-0 delta +port:p3',
      'gsm.r0.r0a.dc0.c0.vpc-1 delta +neighbor:p3',
      'gsm.r1.r1a.dc1.c1.vpc-1 delta +neighbor:p3',
    ]);
  },
);

P(
  'the last port leaving a host sends it an empty full state; the others get the neighbor removal',
  () => {
    const v = given();
    v.do('port.create', { portId: 'p1', subnetId: 's1', hostId: H(0, 0, 0) });
    v.do('port.create', { portId: 'p2', subnetId: 's1', hostId: H(0, 0, 1) });
    const step = v.do('port.delete', { portId: 'p1' });
    assert.equal(summary(step), [
      'gs.r0.r0a.dc0.c0.h-r0-c0-0 full ',
      'gsm.r0.r0a.dc0.c0.vpc-1 delta -neighbor:p1',
    ]);
  },
);

P('a migration: the old host leaves, the new one joins, the cluster hears of the move', () => {
  const v = given();
  v.do('port.create', {
    portId: 'p1',
    subnetId: 's1',
    hostId: H(0, 0, 0),
    securityGroupIds: ['web'],
  });
  v.do('port.create', { portId: 'p2', subnetId: 's1', hostId: H(0, 0, 1) });
  const step = v.do('port.update', { portId: 'p1', hostId: H(0, 0, 2) });
  assert.equal(summary(step), [
    'gs.r0.r0a.dc0.c0.h-r0-c0-0 full ',
    'gs.r0.r0a.dc0.c0.h-r0-c0-2 full +vpc +subnet:s1 +port:p1 +neighbor:p1 +neighbor:p2 +sg:web',
    'gsm.r0.r0a.dc0.c0.vpc-1 delta +neighbor:p1',
  ]);
});

P(
  'group rules go as one multicast where every VPC host of a cluster is a member, else unicast to members',
  () => {
    const v = given();
    v.do('port.create', {
      portId: 'a',
      subnetId: 's1',
      hostId: H(0, 0, 0),
      securityGroupIds: ['web'],
    });
    v.do('port.create', {
      portId: 'b',
      subnetId: 's1',
      hostId: H(0, 0, 1),
      securityGroupIds: ['web'],
    });
    v.do('port.create', {
      portId: 'c',
      subnetId: 's1',
      hostId: H(1, 0, 0),
      securityGroupIds: ['web'],
    });
    v.do('port.create', { portId: 'd', subnetId: 's1', hostId: H(1, 0, 1) });
    const step = v.do('sg.update', {
      sgId: 'web',
      rules: [{ direction: 'ingress', protocol: 'tcp', portMin: 80, portMax: 80 }],
    });
    assert.equal(summary(step), [
      'gs.r1.r1a.dc1.c0.h-r1-c0-0 delta +sg:web',
      'gsm.r0.r0a.dc0.c0.vpc-1 delta +sg:web',
    ]);
  },
);

P('routes go once to every cluster hosting the VPC', () => {
  const v = given();
  for (const [i, host] of [H(0, 0, 0), H(0, 0, 1), H(0, 1, 0), H(1, 1, 1)].entries()) {
    v.do('port.create', { portId: `p${i}`, subnetId: 's1', hostId: host });
  }
  const step = v.do('route.set', { destination: '0.0.0.0/0', nextHop: '10.0.1.254' });
  assert.equal(summary(step), [
    'gsm.r0.r0a.dc0.c0.vpc-1 delta +route:0.0.0.0/0',
    'gsm.r0.r0a.dc0.c1.vpc-1 delta +route:0.0.0.0/0',
    'gsm.r1.r1a.dc1.c1.vpc-1 delta +route:0.0.0.0/0',
  ]);
});

P('a rejected intent and resources no host uses yet produce no goal state', () => {
  const v = given();
  assert.equal(summary(v.do('port.delete', { portId: 'nope' })), []);
  assert.equal(
    summary(v.do('subnet.create', { subnetId: 's2', cidr: '10.0.2.0/24', gatewayIp: '10.0.2.1' })),
    [],
  );
  assert.equal(summary(v.do('sg.create', { sgId: 'db', rules: [] })), []);
});

const A = suite('NCA apply, by example');

const msg = (
  revision: number,
  mode: 'delta' | 'full',
  ops: GoalStateMessage['ops'],
): GoalStateMessage => ({
  vpcId: 'v',
  bucket: 1,
  revision,
  mode,
  target: 'h',
  ops,
});
const port = (id: string, rev: number, ip: string): GoalStateMessage['ops'][number] => ({
  op: 'upsert',
  kind: 'port',
  key: `port:${id}`,
  rev,
  value: { portId: id, subnetId: 's', ip, mac: 'fa:16:3e:00:00:01', securityGroupIds: [] },
});
const live = (m: nca.HostModel) => [...nca.liveResources(m, 'v')].map(([k, r]) => `${k}@${r.rev}`);

A('an older message after a newer one changes nothing', () => {
  const m = nca.emptyHostModel('h');
  nca.apply(m, msg(5, 'delta', [port('p', 5, '10.0.0.5')]));
  const r = nca.apply(m, msg(3, 'delta', [port('p', 3, '10.0.0.3')]));
  assert.equal(r, { changed: 0, ignored: 1 });
  assert.equal(live(m), ['port:p@5']);
});

A('a delete leaves a tombstone that an older upsert cannot revive', () => {
  const m = nca.emptyHostModel('h');
  nca.apply(m, msg(5, 'delta', [port('p', 5, '10.0.0.5')]));
  nca.apply(m, msg(9, 'delta', [{ op: 'delete', kind: 'port', key: 'port:p', rev: 9 }]));
  nca.apply(m, msg(7, 'delta', [port('p', 7, '10.0.0.7')]));
  assert.equal(live(m), []);
});

A('an empty full state removes the VPC, and older deltas stay out', () => {
  const m = nca.emptyHostModel('h');
  nca.apply(m, msg(5, 'delta', [port('p', 5, '10.0.0.5')]));
  nca.apply(m, msg(10, 'full', []));
  assert.is(nca.hostsVpc(m, 'v'), false);
  const r = nca.apply(m, msg(8, 'delta', [port('q', 8, '10.0.0.8')]));
  assert.equal(r, { changed: 0, ignored: 1 });
  assert.is(nca.hostsVpc(m, 'v'), false);
});

A('a full state keeps what newer deltas brought and drops what it omits', () => {
  const m = nca.emptyHostModel('h');
  nca.apply(m, msg(3, 'delta', [port('old', 3, '10.0.0.3')]));
  nca.apply(m, msg(12, 'delta', [port('new', 12, '10.0.0.12')]));
  nca.apply(m, msg(10, 'full', [port('kept', 4, '10.0.0.4')]));
  assert.equal(live(m).sort(), ['port:kept@4', 'port:new@12']);
});

A('a full state drops the tombstones at or below its floor; newer ones stay', () => {
  const m = nca.emptyHostModel('h');
  for (let r = 1; r <= 200; r += 2) {
    nca.apply(m, msg(r, 'delta', [port(`q${r}`, r, '10.0.0.9')]));
    nca.apply(
      m,
      msg(r + 1, 'delta', [{ op: 'delete', kind: 'port', key: `port:q${r}`, rev: r + 1 }]),
    );
  }
  nca.apply(m, msg(205, 'delta', [{ op: 'delete', kind: 'port', key: 'port:late', rev: 205 }]));
  assert.is(m.vpcs.get('v')!.resources.size, 101);
  assert.is(nca.hostsVpc(m, 'v'), false);
  nca.apply(m, msg(203, 'full', [port('kept', 4, '10.0.0.4')]));
  // The kept port, and the tombstone newer than the full (it still guards port:late).
  assert.equal([...m.vpcs.get('v')!.resources.keys()].sort(), ['port:kept', 'port:late']);
  nca.apply(m, msg(204, 'delta', [port('late', 204, '10.0.0.7')]));
  assert.equal(live(m), ['port:kept@4']);
  // A pruned tombstone's resource cannot come back from a message under the floor.
  nca.apply(m, msg(150, 'delta', [port('q149', 150, '10.0.0.9')]));
  assert.equal(live(m), ['port:kept@4']);
  assert.is(m.vpcs.get('v')!.live, 1);
});

P.run();
A.run();
