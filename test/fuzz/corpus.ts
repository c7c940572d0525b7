/**
 * The corpus: bad input real clients send, each with the answer it must get (the
 * first item's error code, or the request's). The fuzzer goes wider; these pin the
 * codes down. VPC `fz-0` exists (two subnets s1 and s2, group g1, ports p1–p6).
 */
import type { Surface } from './campaign.js';

export interface CorpusCase {
  name: string;
  surface: Extract<Surface, 'apply' | 'resync' | 'topology'>;
  body: string | Uint8Array;
  headers?: Record<string, string>;
  /** Items in a batch (the reply must have as many). */
  items?: number;
  /** A topology file's extension. */
  ext?: 'json' | 'yaml';
  expect: string;
}

const intent = (o: Record<string, unknown>): string =>
  JSON.stringify({ id: `corpus-${Math.random().toString(36).slice(2, 10)}`, vpcId: 'fz-0', ...o });

const host = (o: Record<string, unknown> = {}) => ({
  hostId: 'fzt-1',
  region: 'r1',
  az: 'az0',
  dc: 'dc0',
  cluster: 'c0',
  underlayIp: '192.0.2.1',
  binding: { type: 'jetstream' },
  ...o,
});

export const CORPUS: readonly CorpusCase[] = [
  {
    name: 'truncated JSON',
    surface: 'apply',
    body: '{"id":"x","kind":"vpc.cre',
    expect: 'invalid_json',
  },
  {
    name: 'not UTF-8',
    surface: 'apply',
    body: Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d]),
    expect: 'invalid_json',
  },
  { name: 'an empty body', surface: 'apply', body: '', expect: 'invalid_json' },
  { name: 'a JSON number', surface: 'apply', body: '42', expect: 'not_object' },
  { name: 'an empty batch', surface: 'apply', body: '[]', expect: 'empty_batch' },
  {
    name: 'a batch of 1,001',
    surface: 'apply',
    body: JSON.stringify(Array.from({ length: 1001 }, () => ({}))),
    expect: 'batch_too_large',
  },
  {
    name: 'a body over the server limit (9 MiB)',
    surface: 'apply',
    body: `"${'x'.repeat(9 * 1024 * 1024)}"`,
    expect: 'refused_by_client',
  },
  {
    name: 'deeply nested arrays',
    surface: 'apply',
    body: `${'['.repeat(50_000)}${']'.repeat(50_000)}`,
    expect: 'not_object',
  },
  {
    name: 'an unknown kind',
    surface: 'apply',
    body: intent({ kind: 'port.explode', spec: {} }),
    expect: 'unknown_kind',
  },
  {
    name: 'a kind named like a property of every object',
    surface: 'apply',
    body: intent({ kind: 'constructor', spec: {} }),
    expect: 'unknown_kind',
  },
  {
    name: 'an unknown field',
    surface: 'apply',
    body: intent({ kind: 'route.delete', spec: { destination: '0.0.0.0/0' }, priority: 1 }),
    expect: 'unknown_field',
  },
  {
    name: 'a missing field',
    surface: 'apply',
    body: intent({ kind: 'port.create', spec: { portId: 'c1', subnetId: 's1' } }),
    expect: 'missing_field',
  },
  {
    name: 'a wrong type',
    surface: 'apply',
    body: intent({
      kind: 'subnet.create',
      spec: { subnetId: 's9', cidr: 10, gatewayIp: '10.0.9.1' },
    }),
    expect: 'invalid_type',
  },
  {
    name: 'an id that is not a subject token',
    surface: 'apply',
    body: JSON.stringify({ id: 'a b', kind: 'vpc.delete', vpcId: 'fz-0', spec: {} }),
    expect: 'id_format',
  },
  {
    name: 'a VPC id with a dot',
    surface: 'apply',
    body: JSON.stringify({ id: 'c-dot', kind: 'vpc.delete', vpcId: 'fz.0', spec: {} }),
    expect: 'id_format',
  },
  {
    name: 'a bad CIDR',
    surface: 'apply',
    body: intent({
      kind: 'subnet.create',
      spec: { subnetId: 's9', cidr: '10.0.9.1/24', gatewayIp: '10.0.9.1' },
    }),
    expect: 'invalid_cidr',
  },
  {
    name: 'a port on a subnet that does not exist',
    surface: 'apply',
    body: intent({
      kind: 'port.create',
      spec: { portId: 'c2', subnetId: 'nope', hostId: 'f-c0-h0' },
    }),
    expect: 'subnet_not_found',
  },
  {
    name: 'a port on a host that is not in the topology',
    surface: 'apply',
    body: intent({
      kind: 'port.create',
      spec: { portId: 'c3', subnetId: 's1', hostId: 'nowhere' },
    }),
    expect: 'unknown_host',
  },
  {
    name: 'deleting a port that does not exist',
    surface: 'apply',
    body: intent({ kind: 'port.delete', spec: { portId: 'p999' } }),
    expect: 'port_not_found',
  },
  {
    name: 'a group that does not exist',
    surface: 'apply',
    body: intent({ kind: 'port.update', spec: { portId: 'p1', securityGroupIds: ['g9'] } }),
    expect: 'sg_not_found',
  },
  {
    name: 'an intent for a VPC never created',
    surface: 'apply',
    body: JSON.stringify({
      id: 'c-novpc',
      kind: 'route.delete',
      vpcId: 'fz-never',
      spec: { destination: '0.0.0.0/0' },
    }),
    expect: 'vpc_not_found',
  },
  {
    name: 'out of order: an old expectedRevision',
    surface: 'apply',
    body: intent({
      kind: 'route.set',
      expectedRevision: 1,
      spec: { destination: '0.0.0.0/0', nextHop: '10.0.1.1' },
    }),
    expect: 'revision_conflict',
  },
  {
    name: 'deleting a VPC that still has ports',
    surface: 'apply',
    body: intent({ kind: 'vpc.delete', spec: {} }),
    expect: 'vpc_not_empty',
  },
  {
    name: 'a bad Alcor-Wait header',
    surface: 'apply',
    body: intent({ kind: 'route.delete', spec: { destination: '0.0.0.0/0' } }),
    headers: { 'Alcor-Wait': 'soon' },
    expect: 'bad_header',
  },
  {
    name: 'a batch with one good and one bad intent: answers in order',
    surface: 'apply',
    body: `[${intent({ kind: 'route.set', spec: { destination: '0.0.0.0/0', nextHop: '10.0.1.254' } })},${intent({ kind: 'nope', spec: {} })}]`,
    items: 2,
    expect: 'accepted',
  },
  { name: 'resync: garbage', surface: 'resync', body: '{{{', expect: 'invalid_json' },
  {
    name: 'resync as another host',
    surface: 'resync',
    body: JSON.stringify({ hostId: 'f-c1-h1' }),
    expect: 'subject_mismatch',
  },
  {
    name: 'resync: 1,001 VPCs',
    surface: 'resync',
    body: JSON.stringify({
      hostId: 'f-c0-h0',
      vpcIds: Array.from({ length: 1001 }, (_, i) => `v${i}`),
    }),
    expect: 'too_many',
  },
  {
    name: 'resync: buckets past the bucket count',
    surface: 'resync',
    body: JSON.stringify({ hostId: 'f-c0-h0', buckets: '0-4096' }),
    expect: 'out_of_range',
  },
  {
    name: 'resync: buckets not a bucket set',
    surface: 'resync',
    body: JSON.stringify({ hostId: 'f-c0-h0', buckets: '1;2' }),
    expect: 'invalid_value',
  },
  {
    name: 'topology: not YAML',
    surface: 'topology',
    body: 'hosts: [ {',
    expect: 'invalid_syntax',
  },
  {
    // The YAML composer recursed once per level and V8 aborted the process.
    name: 'topology: YAML nested 20,000 deep',
    surface: 'topology',
    body: `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
    expect: 'too_deep',
  },
  {
    name: 'topology: an unknown binding',
    surface: 'topology',
    body: JSON.stringify({ hosts: [host({ binding: { type: 'carrier-pigeon' } })] }),
    ext: 'json',
    expect: 'invalid_value',
  },
  {
    name: 'topology: a host twice',
    surface: 'topology',
    body: JSON.stringify({ hosts: [host(), host({ underlayIp: '192.0.2.2' })] }),
    ext: 'json',
    expect: 'duplicate_value',
  },
  {
    name: 'topology: a bad underlay IP',
    surface: 'topology',
    body: JSON.stringify({ hosts: [host({ underlayIp: '300.1.1.1' })] }),
    ext: 'json',
    expect: 'invalid_ip',
  },
];
