/**
 * Goal states in Alcor's schema (actors/nca/alcor.ts): what a message changes
 * on a host in Alcor's resources, and the wire numbering of our .proto files
 * against Alcor's published one (field numbers, types, enum values).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { GoalStateMessage, GoalStateOp } from '../../shared/index.js';
import { nca } from '../../actors/index.js';
import { goalStateProvisioner } from '../../infra/index.js';

const test = suite('Alcor goal states');
const V = 'v1';
const host: nca.AlcorHost = {
  hostId: 'h1',
  underlayIp: '172.16.0.1',
  hostIp: (id) => ({ h1: '172.16.0.1', h2: '172.16.0.2' })[id],
};

const up = (kind: GoalStateOp['kind'], name: string | undefined, value: unknown, rev = 1) =>
  ({
    op: 'upsert',
    kind,
    key: name === undefined ? kind : `${kind}:${name}`,
    rev,
    value,
  }) as GoalStateOp;
const del = (kind: GoalStateOp['kind'], name: string, rev: number): GoalStateOp => ({
  op: 'delete',
  kind,
  key: `${kind}:${name}`,
  rev,
});
const msg = (revision: number, ops: GoalStateOp[], mode: 'full' | 'delta' = 'delta') =>
  ({ vpcId: V, bucket: 0, revision, mode, target: 'h1', ops }) satisfies GoalStateMessage;

const vpcOp = up('vpc', undefined, { cidr: '10.0.0.0/16', vni: 77 });
const s1 = up('subnet', 's1', { subnetId: 's1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' });
const s2 = up('subnet', 's2', { subnetId: 's2', cidr: '10.0.2.0/24', gatewayIp: '10.0.2.1' });
const p1 = up('port', 'p1', {
  portId: 'p1',
  subnetId: 's1',
  ip: '10.0.1.5',
  mac: 'fa:16:3e:00:00:01',
  securityGroupIds: ['web'],
});
const neighbor = (portId: string, subnetId: string, ip: string, hostId = 'h2', rev = 1) =>
  up(
    'neighbor',
    portId,
    { portId, subnetId, ip, mac: 'fa:16:3e:00:00:09', hostId, securityGroupIds: [] },
    rev,
  );

/** Applies a message to the model; what it changes in Alcor's resources. */
function step(model: nca.HostModel, message: GoalStateMessage) {
  const keys = nca.touched(model, message);
  const before = nca.alcorResources(model, V, keys, host);
  nca.apply(model, message);
  const after = nca.alcorResources(model, V, keys, host);
  const changes = nca.changes(before, after, message.mode === 'full');
  return {
    changes,
    summary: changes.map((c) => `${c.operation} ${c.type}/${c.id}`).sort(),
    config: (type: string, id: string) =>
      changes.find((c) => c.type === type && c.id === id)?.config as Record<string, unknown>,
  };
}

function joined(): nca.HostModel {
  const model = nca.emptyHostModel('h1');
  step(
    model,
    msg(
      5,
      [vpcOp, s1, p1, neighbor('p1', 's1', '10.0.1.5', 'h1'), neighbor('p9', 's2', '10.0.2.9')],
      'full',
    ),
  );
  return model;
}

test('a full state for a joining host: every resource created, in Alcor form', () => {
  const model = nca.emptyHostModel('h1');
  const s = step(model, msg(5, [vpcOp, s1, p1, neighbor('p9', 's2', '10.0.2.9')], 'full'));
  assert.equal(s.summary, [
    'CREATE DHCP/v1:p1',
    'CREATE NEIGHBOR/v1:p9',
    'CREATE PORT/v1:p1',
    'CREATE SUBNET/v1:s1',
    'CREATE VPC/v1',
  ]);
  assert.equal(s.config('PORT', 'v1:p1'), {
    id: 'v1:p1',
    vpc_id: V,
    name: 'p1',
    mac_address: 'fa:16:3e:00:00:01',
    admin_state_up: true,
    host_info: { ip_address: '172.16.0.1' },
    fixed_ips: [{ subnet_id: 'v1:s1', ip_address: '10.0.1.5' }],
    security_group_ids: [{ id: 'v1:web' }],
  });
  assert.equal(s.config('DHCP', 'v1:p1'), {
    id: 'v1:p1',
    subnet_id: 'v1:s1',
    mac_address: 'fa:16:3e:00:00:01',
    ipv4_address: '10.0.1.5',
    port_host_name: 'p1',
  });
  // p9 sits in s2, which this host does not hold: an L3 neighbor, on host h2's IP.
  assert.equal(s.config('NEIGHBOR', 'v1:p9'), {
    id: 'v1:p9',
    vpc_id: V,
    name: 'p9',
    mac_address: 'fa:16:3e:00:00:09',
    host_ip_address: '172.16.0.2',
    fixed_ips: [{ neighbor_type: 'L3', subnet_id: 'v1:s2', ip_address: '10.0.2.9', tunnel_id: 77 }],
  });
  assert.is(s.config('SUBNET', 'v1:s1').tunnel_id, 77);
});

test('a delta changes only what it touches; unchanged resources are not sent', () => {
  const model = joined();
  const s = step(model, msg(6, [neighbor('p10', 's1', '10.0.1.10')]));
  assert.equal(s.summary, ['CREATE NEIGHBOR/v1:p10']);
  assert.equal(step(model, msg(7, [neighbor('p10', 's1', '10.0.1.10', 'h2', 1)])).summary, []);
  assert.equal(step(model, msg(8, [del('neighbor', 'p10', 8)])).summary, [
    'DELETE NEIGHBOR/v1:p10',
  ]);
});

test('a subnet the host now holds turns its neighbors to L2; routes make one router per VPC', () => {
  const model = joined();
  const s = step(model, msg(6, [s2]));
  assert.equal(s.summary, ['CREATE SUBNET/v1:s2', 'UPDATE NEIGHBOR/v1:p9']);
  const fixed = s.config('NEIGHBOR', 'v1:p9').fixed_ips as Array<{ neighbor_type: string }>;
  assert.is(fixed[0]!.neighbor_type, 'L2');
  const r1 = up('route', '0.0.0.0/0', { destination: '0.0.0.0/0', nextHop: '10.0.1.254' }, 7);
  const r2 = up('route', '10.9.0.0/16', { destination: '10.9.0.0/16', nextHop: '10.0.1.253' }, 8);
  assert.equal(step(model, msg(7, [r1])).summary, ['CREATE ROUTER/v1:router']);
  const two = step(model, msg(8, [r2]));
  assert.equal(two.summary, ['UPDATE ROUTER/v1:router']);
  const tables = two.config('ROUTER', 'v1:router').subnet_routing_tables as Array<{
    subnet_id: string;
    routing_rules: Array<{ destination: string }>;
  }>;
  assert.equal(
    tables.map((t) => [t.subnet_id, t.routing_rules.map((r) => r.destination)]),
    [
      ['v1:s1', ['0.0.0.0/0', '10.9.0.0/16']],
      ['v1:s2', ['0.0.0.0/0', '10.9.0.0/16']],
    ],
  );
  assert.equal(step(model, msg(9, [del('route', '0.0.0.0/0', 9)])).summary, [
    'UPDATE ROUTER/v1:router',
  ]);
  assert.equal(step(model, msg(10, [del('route', '10.9.0.0/16', 10)])).summary, [
    'DELETE ROUTER/v1:router',
  ]);
});

test("security groups: a rule of protocol any is three of Alcor's; group ids carry the VPC", () => {
  const model = joined();
  const sg = up('sg', 'web', {
    sgId: 'web',
    rules: [
      { direction: 'ingress', protocol: 'tcp', portMin: 22, portMax: 22 },
      { direction: 'egress', protocol: 'any', remoteGroupId: 'web' },
    ],
  });
  const s = step(model, msg(6, [sg]));
  const rules = s.config('SECURITYGROUP', 'v1:web').security_group_rules as Array<
    Record<string, unknown>
  >;
  assert.equal(
    rules.map((r) => [r.id, r.direction, r.protocol, r.port_range_min, r.remote_group_id]),
    [
      ['v1:web-0', 'INGRESS', 'TCP', 22, ''],
      ['v1:web-1-tcp', 'EGRESS', 'TCP', 0, 'v1:web'],
      ['v1:web-1-udp', 'EGRESS', 'UDP', 0, 'v1:web'],
      ['v1:web-1-icmp', 'EGRESS', 'ICMP', 0, 'v1:web'],
    ],
  );
});

test('a full sends every resource again and deletes what it omits', () => {
  const model = joined();
  const s = step(model, msg(9, [vpcOp, s1, p1, neighbor('p1', 's1', '10.0.1.5', 'h1')], 'full'));
  assert.equal(s.summary, [
    'DELETE NEIGHBOR/v1:p9',
    'UPDATE DHCP/v1:p1',
    'UPDATE NEIGHBOR/v1:p1',
    'UPDATE PORT/v1:p1',
    'UPDATE SUBNET/v1:s1',
    'UPDATE VPC/v1',
  ]);
  const state = nca.alcorState(s.changes[0]!, { revision: 9, requestId: 'r', full: true });
  assert.equal(
    [
      state.configuration?.revision_number,
      state.configuration?.update_type,
      state.configuration?.request_id,
    ],
    [9, 'FULL', 'r'],
  );
  // An empty full: the host left the VPC, everything goes.
  const left = step(model, msg(10, [], 'full'));
  assert.ok(left.changes.length === 5 && left.changes.every((c) => c.operation === 'DELETE'));
});

test('GoalStateV2 on the wire: maps numbered as in Alcor (dhcp 6, neighbor 7, sg 8), ids under the host IP', () => {
  const { PushGoalStatesStream } = goalStateProvisioner().service;
  const bytes = (m: object): Buffer => PushGoalStatesStream!.requestSerialize(m);
  // Field number and wire type of the first key: (n << 3) | 2 for a map entry.
  const tag = (m: object) => bytes(m)[0]! >> 3;
  assert.is(tag({ vpc_states: { x: {} } }), 3);
  assert.is(tag({ subnet_states: { x: {} } }), 4);
  assert.is(tag({ port_states: { x: {} } }), 5);
  assert.is(tag({ dhcp_states: { x: {} } }), 6);
  assert.is(tag({ neighbor_states: { x: {} } }), 7);
  assert.is(tag({ security_group_states: { x: {} } }), 8);
  assert.is(tag({ router_states: { x: {} } }), 9);
  assert.is(tag({ host_resources: { x: {} } }), 2);
  const change = {
    type: 'SUBNET',
    id: 'v1:s1',
    operation: 'CREATE',
    config: { id: 'v1:s1', tunnel_id: 2 ** 40 },
  } as const;
  const gs = nca.goalStateV2('172.16.0.1', [
    { change, state: nca.alcorState(change, { revision: 3, requestId: 'q', full: false }) },
  ]);
  const back = PushGoalStatesStream!.requestDeserialize(bytes(gs)) as typeof gs & {
    subnet_states: Record<
      string,
      { configuration: { tunnel_id: number; revision_number: number } }
    >;
  };
  // A subnet's tunnel id is 64 bits (the VPC's and the neighbors' are 32).
  assert.is(back.subnet_states['v1:s1']!.configuration.tunnel_id, 2 ** 40);
  assert.is(back.subnet_states['v1:s1']!.configuration.revision_number, 3);
  assert.equal(back.host_resources?.['172.16.0.1']?.resources, [{ type: 'SUBNET', id: 'v1:s1' }]);
});

test('GoalStateOperationReply from bytes laid out as Alcor numbers them', () => {
  const { PushGoalStatesStream } = goalStateProvisioner().service;
  // statuses (field 2) = {resource_id (1) "p", resource_type (2) PORT=2,
  // operation_type (3) CREATE=1, operation_status (4) FAILURE=1, dataplane time (5) 300};
  // message_total_operation_time (3) = 500.
  const status = Buffer.from([
    0x0a, 0x01, 0x70, 0x10, 0x02, 0x18, 0x01, 0x20, 0x01, 0x28, 0xac, 0x02,
  ]);
  const reply = Buffer.concat([
    Buffer.from([0x12, status.length]),
    status,
    Buffer.from([0x18, 0xf4, 0x03]),
  ]);
  const decoded = PushGoalStatesStream!.responseDeserialize(reply) as {
    operation_statuses: Array<Record<string, unknown>>;
    message_total_operation_time: number;
  };
  assert.equal(decoded.operation_statuses[0], {
    resource_id: 'p',
    resource_type: 'PORT',
    operation_type: 'CREATE',
    operation_status: 'FAILURE',
    dataplane_programming_time: 300,
    network_configuration_time: 0,
    state_elapse_time: 0,
  });
  assert.is(decoded.message_total_operation_time, 500);
});

test.run();
