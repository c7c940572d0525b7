import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeIntent, parseIntent, LIMITS, INTENT_KINDS } from '../../shared/index.js';

const env = (kind: string, spec: unknown, extra: Record<string, unknown> = {}) => ({
  id: 'i-1',
  kind,
  vpcId: 'vpc-1',
  spec,
  ...extra,
});
const rule = (r: Record<string, unknown>) =>
  env('sg.create', { sgId: 'sg1', rules: [{ direction: 'ingress', protocol: 'tcp', ...r }] });

/** [what, input, code, path] — every input path and field, each with its exact code. */
const corpus: Array<[string, unknown, string, string | undefined]> = [
  // the envelope
  ['null', null, 'not_object', undefined],
  ['a number', 42, 'not_object', undefined],
  ['a string', 'port.create', 'not_object', undefined],
  ['an array', [], 'not_object', undefined],
  ['empty object', {}, 'missing_field', 'id'],
  ['no kind', { id: 'i', vpcId: 'v', spec: {} }, 'missing_field', 'kind'],
  ['no vpcId', { id: 'i', kind: 'vpc.delete', spec: {} }, 'missing_field', 'vpcId'],
  ['no spec', { id: 'i', kind: 'vpc.delete', vpcId: 'v' }, 'missing_field', 'spec'],
  ['unknown envelope field', env('vpc.delete', {}, { priority: 1 }), 'unknown_field', 'priority'],
  ['id with a dot', env('vpc.delete', {}, { id: 'a.b' }), 'id_format', 'id'],
  ['id with a wildcard', env('vpc.delete', {}, { id: '*' }), 'id_format', 'id'],
  ['id empty', env('vpc.delete', {}, { id: '' }), 'id_format', 'id'],
  ['id too long', env('vpc.delete', {}, { id: 'x'.repeat(65) }), 'id_format', 'id'],
  ['id a number', env('vpc.delete', {}, { id: 7 }), 'invalid_type', 'id'],
  ['vpcId with a space', env('vpc.delete', {}, { vpcId: 'vpc 1' }), 'id_format', 'vpcId'],
  ['vpcId with >', env('vpc.delete', {}, { vpcId: 'vpc>' }), 'id_format', 'vpcId'],
  ['vpcId unicode', env('vpc.delete', {}, { vpcId: 'vpç' }), 'id_format', 'vpcId'],
  ['kind unknown', env('port.frobnicate', {}), 'unknown_kind', 'kind'],
  ['kind wrong case', env('Port.Create', {}), 'unknown_kind', 'kind'],
  // Names on Object.prototype: found by the fuzzer, they crashed the lookup.
  ['kind constructor', env('constructor', {}), 'unknown_kind', 'kind'],
  ['kind toString', env('toString', {}), 'unknown_kind', 'kind'],
  ['kind __proto__', env('__proto__', {}), 'unknown_kind', 'kind'],
  ['kind a number', env(3 as unknown as string, {}), 'invalid_type', 'kind'],
  [
    'expectedRevision negative',
    env('vpc.delete', {}, { expectedRevision: -1 }),
    'out_of_range',
    'expectedRevision',
  ],
  [
    'expectedRevision fractional',
    env('vpc.delete', {}, { expectedRevision: 1.5 }),
    'invalid_type',
    'expectedRevision',
  ],
  [
    'expectedRevision a string',
    env('vpc.delete', {}, { expectedRevision: '3' }),
    'invalid_type',
    'expectedRevision',
  ],
  ['spec null', env('vpc.delete', null), 'invalid_type', 'spec'],
  ['spec an array', env('vpc.delete', []), 'invalid_type', 'spec'],
  // vpc.*
  ['vpc.create without cidr', env('vpc.create', {}), 'missing_field', 'spec.cidr'],
  [
    'vpc.create cidr without prefix',
    env('vpc.create', { cidr: '10.0.0.0' }),
    'invalid_cidr',
    'spec.cidr',
  ],
  [
    'vpc.create cidr with host bits',
    env('vpc.create', { cidr: '10.0.0.1/16' }),
    'invalid_cidr',
    'spec.cidr',
  ],
  [
    'vpc.create cidr prefix 33',
    env('vpc.create', { cidr: '10.0.0.0/33' }),
    'invalid_cidr',
    'spec.cidr',
  ],
  [
    'vpc.create cidr octet 256',
    env('vpc.create', { cidr: '10.256.0.0/16' }),
    'invalid_cidr',
    'spec.cidr',
  ],
  [
    'vpc.create cidr leading zero',
    env('vpc.create', { cidr: '10.01.0.0/16' }),
    'invalid_cidr',
    'spec.cidr',
  ],
  ['vpc.create cidr ipv6', env('vpc.create', { cidr: 'fd00::/8' }), 'invalid_cidr', 'spec.cidr'],
  [
    'vpc.create vni zero',
    env('vpc.create', { cidr: '10.0.0.0/16', vni: 0 }),
    'out_of_range',
    'spec.vni',
  ],
  [
    'vpc.create vni 2^24',
    env('vpc.create', { cidr: '10.0.0.0/16', vni: 16_777_216 }),
    'out_of_range',
    'spec.vni',
  ],
  [
    'vpc.create unknown field',
    env('vpc.create', { cidr: '10.0.0.0/16', name: 'x' }),
    'unknown_field',
    'spec.name',
  ],
  ['vpc.delete with a field', env('vpc.delete', { force: true }), 'unknown_field', 'spec.force'],
  // subnet.*
  [
    'subnet.create without subnetId',
    env('subnet.create', { cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' }),
    'missing_field',
    'spec.subnetId',
  ],
  [
    'subnet.create subnetId bad',
    env('subnet.create', { subnetId: 's/1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' }),
    'id_format',
    'spec.subnetId',
  ],
  [
    'subnet.create bad gateway',
    env('subnet.create', { subnetId: 's1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1' }),
    'invalid_ip',
    'spec.gatewayIp',
  ],
  [
    'subnet.create gateway with prefix',
    env('subnet.create', { subnetId: 's1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1/24' }),
    'invalid_ip',
    'spec.gatewayIp',
  ],
  [
    'subnet.create cidr a number',
    env('subnet.create', { subnetId: 's1', cidr: 10, gatewayIp: '10.0.1.1' }),
    'invalid_type',
    'spec.cidr',
  ],
  ['subnet.delete without subnetId', env('subnet.delete', {}), 'missing_field', 'spec.subnetId'],
  // port.*
  [
    'port.create without portId',
    env('port.create', { subnetId: 's1', hostId: 'h1' }),
    'missing_field',
    'spec.portId',
  ],
  [
    'port.create without hostId',
    env('port.create', { portId: 'p1', subnetId: 's1' }),
    'missing_field',
    'spec.hostId',
  ],
  [
    'port.create hostId bad',
    env('port.create', { portId: 'p1', subnetId: 's1', hostId: 'h.1' }),
    'id_format',
    'spec.hostId',
  ],
  [
    'port.create ip bad',
    env('port.create', { portId: 'p1', subnetId: 's1', hostId: 'h1', ip: '10.0.0.300' }),
    'invalid_ip',
    'spec.ip',
  ],
  [
    'port.create ip empty',
    env('port.create', { portId: 'p1', subnetId: 's1', hostId: 'h1', ip: '' }),
    'invalid_ip',
    'spec.ip',
  ],
  [
    'port.create mac upper-case',
    env('port.create', { portId: 'p1', subnetId: 's1', hostId: 'h1', mac: 'FA:16:3E:00:00:01' }),
    'invalid_mac',
    'spec.mac',
  ],
  [
    'port.create mac multicast',
    env('port.create', { portId: 'p1', subnetId: 's1', hostId: 'h1', mac: '01:00:5e:00:00:01' }),
    'invalid_mac',
    'spec.mac',
  ],
  [
    'port.create mac short',
    env('port.create', { portId: 'p1', subnetId: 's1', hostId: 'h1', mac: 'fa:16:3e:00:01' }),
    'invalid_mac',
    'spec.mac',
  ],
  [
    'port.create groups not an array',
    env('port.create', { portId: 'p1', subnetId: 's1', hostId: 'h1', securityGroupIds: 'sg1' }),
    'invalid_type',
    'spec.securityGroupIds',
  ],
  [
    'port.create group id bad',
    env('port.create', {
      portId: 'p1',
      subnetId: 's1',
      hostId: 'h1',
      securityGroupIds: ['ok', 'not ok'],
    }),
    'id_format',
    'spec.securityGroupIds.1',
  ],
  [
    'port.create groups repeated',
    env('port.create', {
      portId: 'p1',
      subnetId: 's1',
      hostId: 'h1',
      securityGroupIds: ['a', 'a'],
    }),
    'duplicate_value',
    'spec.securityGroupIds',
  ],
  [
    'port.create too many groups',
    env('port.create', {
      portId: 'p1',
      subnetId: 's1',
      hostId: 'h1',
      securityGroupIds: Array.from({ length: 17 }, (_, i) => `g${i}`),
    }),
    'too_many',
    'spec.securityGroupIds',
  ],
  [
    'port.create unknown field',
    env('port.create', { portId: 'p1', subnetId: 's1', hostId: 'h1', vlan: 5 }),
    'unknown_field',
    'spec.vlan',
  ],
  ['port.update nothing to change', env('port.update', { portId: 'p1' }), 'empty_update', 'spec'],
  [
    'port.update hostId bad',
    env('port.update', { portId: 'p1', hostId: '' }),
    'id_format',
    'spec.hostId',
  ],
  [
    'port.update ip is not updatable',
    env('port.update', { portId: 'p1', ip: '10.0.0.5' }),
    'unknown_field',
    'spec.ip',
  ],
  ['port.delete portId a number', env('port.delete', { portId: 1 }), 'invalid_type', 'spec.portId'],
  // sg.*
  ['sg.create without rules', env('sg.create', { sgId: 'sg1' }), 'missing_field', 'spec.rules'],
  [
    'sg.create rules not an array',
    env('sg.create', { sgId: 'sg1', rules: {} }),
    'invalid_type',
    'spec.rules',
  ],
  [
    'sg.create too many rules',
    env('sg.create', {
      sgId: 'sg1',
      rules: Array.from({ length: LIMITS.rulesPerGroup + 1 }, () => ({
        direction: 'ingress',
        protocol: 'any',
      })),
    }),
    'too_many',
    'spec.rules',
  ],
  ['rule direction bad', rule({ direction: 'inbound' }), 'invalid_value', 'spec.rules.0.direction'],
  ['rule protocol bad', rule({ protocol: 'sctp' }), 'invalid_value', 'spec.rules.0.protocol'],
  ['rule port zero', rule({ portMin: 0 }), 'out_of_range', 'spec.rules.0.portMin'],
  ['rule port 65536', rule({ portMax: 65536 }), 'out_of_range', 'spec.rules.0.portMax'],
  ['rule port fractional', rule({ portMin: 80.5 }), 'invalid_type', 'spec.rules.0.portMin'],
  [
    'rule ports reversed',
    rule({ portMin: 443, portMax: 80 }),
    'invalid_port_range',
    'spec.rules.0.portMax',
  ],
  [
    'rule ports on icmp',
    rule({ protocol: 'icmp', portMin: 1 }),
    'invalid_port_range',
    'spec.rules.0.portMin',
  ],
  [
    'rule remote cidr bad',
    rule({ remoteCidr: '0.0.0.0/0/0' }),
    'invalid_cidr',
    'spec.rules.0.remoteCidr',
  ],
  [
    'rule cidr and group',
    rule({ remoteCidr: '10.0.0.0/8', remoteGroupId: 'sg2' }),
    'conflicting_fields',
    'spec.rules.0.remoteGroupId',
  ],
  ['rule unknown field', rule({ action: 'deny' }), 'unknown_field', 'spec.rules.0.action'],
  ['sg.update sgId bad', env('sg.update', { sgId: 'sg:1', rules: [] }), 'id_format', 'spec.sgId'],
  [
    'sg.delete extra field',
    env('sg.delete', { sgId: 'sg1', cascade: true }),
    'unknown_field',
    'spec.cascade',
  ],
  // route.*
  [
    'route.set destination not a cidr',
    env('route.set', { destination: '8.8.8.8', nextHop: '10.0.1.5' }),
    'invalid_cidr',
    'spec.destination',
  ],
  [
    'route.set next hop a cidr',
    env('route.set', { destination: '0.0.0.0/0', nextHop: '10.0.1.0/24' }),
    'invalid_ip',
    'spec.nextHop',
  ],
  [
    'route.set without nextHop',
    env('route.set', { destination: '0.0.0.0/0' }),
    'missing_field',
    'spec.nextHop',
  ],
  [
    'route.delete destination bad',
    env('route.delete', { destination: 'default' }),
    'invalid_cidr',
    'spec.destination',
  ],
];

const Bad = suite('intent validation: bad input');

Bad(`the corpus has at least 60 cases (${corpus.length})`, () => {
  assert.ok(corpus.length >= 60);
});

for (const [what, input, code, path] of corpus) {
  Bad(`${what} → ${code}${path ? ` at ${path}` : ''}`, () => {
    const result = parseIntent(input);
    assert.is(result.ok, false);
    if (result.ok) return;
    assert.is(result.error.code, code, result.error.message);
    assert.is(result.error.path, path);
    assert.type(result.error.message, 'string');
    assert.ok(result.error.message.length > 5);
  });
}

Bad('keeps the id and vpcId of an invalid intent when they are readable', () => {
  const result = parseIntent(env('port.create', { portId: 'p1' }));
  assert.equal(result.ok ? undefined : { id: result.id, vpcId: result.vpcId }, {
    id: 'i-1',
    vpcId: 'vpc-1',
  });
  const unreadable = parseIntent({ id: 'a.b', vpcId: 'v 1', kind: 'x', spec: {} });
  assert.equal(unreadable.ok ? undefined : { id: unreadable.id, vpcId: unreadable.vpcId }, {
    id: undefined,
    vpcId: undefined,
  });
});

const Bytes = suite('intent decoding from bytes');
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

Bytes('not JSON → invalid_json', () => {
  const r = decodeIntent(bytes('{"id": "x",'));
  assert.equal(r.ok ? null : r.error.code, 'invalid_json');
});

Bytes('binary garbage → invalid_json (not UTF-8)', () => {
  const r = decodeIntent(new Uint8Array([0xff, 0xfe, 0x00, 0x81]));
  assert.equal(r.ok ? null : r.error.code, 'invalid_json');
});

Bytes('empty message → invalid_json', () => {
  const r = decodeIntent(new Uint8Array());
  assert.equal(r.ok ? null : r.error.code, 'invalid_json');
});

Bytes('oversized message → too_large, without parsing it', () => {
  const big = bytes(
    JSON.stringify(
      env('vpc.create', { cidr: '10.0.0.0/16' }, { pad: 'x'.repeat(LIMITS.intentBytes) }),
    ),
  );
  const r = decodeIntent(big);
  assert.equal(r.ok ? null : r.error.code, 'too_large');
});

Bytes('a valid message decodes to the typed intent', () => {
  const r = decodeIntent(
    bytes(JSON.stringify(env('route.set', { destination: '0.0.0.0/0', nextHop: '10.0.1.5' }))),
  );
  assert.equal(r, {
    ok: true,
    value: env('route.set', { destination: '0.0.0.0/0', nextHop: '10.0.1.5' }),
  });
});

const Good = suite('intent validation: good input');

const good: Record<string, unknown> = {
  'vpc.create': { cidr: '10.0.0.0/16', vni: 5001 },
  'vpc.delete': {},
  'subnet.create': { subnetId: 's1', cidr: '10.0.1.0/24', gatewayIp: '10.0.1.1' },
  'subnet.delete': { subnetId: 's1' },
  'port.create': {
    portId: 'p1',
    subnetId: 's1',
    hostId: 'h1',
    ip: '10.0.1.5',
    mac: 'fa:16:3e:00:00:01',
    securityGroupIds: ['sg1'],
  },
  'port.update': { portId: 'p1', hostId: 'h2' },
  'port.delete': { portId: 'p1' },
  'sg.create': {
    sgId: 'sg1',
    rules: [
      { direction: 'ingress', protocol: 'tcp', portMin: 22, portMax: 22, remoteCidr: '0.0.0.0/0' },
    ],
  },
  'sg.update': {
    sgId: 'sg1',
    rules: [{ direction: 'egress', protocol: 'any', remoteGroupId: 'sg1' }],
  },
  'sg.delete': { sgId: 'sg1' },
  'route.set': { destination: '0.0.0.0/0', nextHop: '10.0.1.254' },
  'route.delete': { destination: '0.0.0.0/0' },
};

Good('every kind has an accepted example', () => {
  assert.equal(Object.keys(good).sort(), [...INTENT_KINDS].sort());
  for (const kind of INTENT_KINDS) {
    const r = parseIntent(env(kind, good[kind], { expectedRevision: 3 }));
    assert.ok(r.ok, `${kind}: ${r.ok ? '' : r.error.message}`);
    if (r.ok) assert.equal(r.value, env(kind, good[kind], { expectedRevision: 3 }));
  }
});

Bad.run();
Bytes.run();
Good.run();
