/**
 * Bad input as real clients produce it, seeded: valid intents and topology files
 * mutated at the value level (a field dropped, added, retyped; ids, kinds,
 * references and revisions made wrong) and at the byte level (truncated, bit
 * flips, invalid UTF-8, garbage, deep nesting, oversize).
 */
import type { HostRecord } from '../../shared/index.js';

export type Rnd = () => number;

const encoder = new TextEncoder();
export const bytes = (text: string): Uint8Array => encoder.encode(text);

export const pick = <T>(rnd: Rnd, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const int = (rnd: Rnd, n: number): number => Math.floor(rnd() * n);

export const KINDS = [
  'vpc.create',
  'vpc.delete',
  'subnet.create',
  'subnet.delete',
  'port.create',
  'port.update',
  'port.delete',
  'sg.create',
  'sg.update',
  'sg.delete',
  'route.set',
  'route.delete',
] as const;

/** Values that break a field: wrong types, limits, formats, traps. */
const ODD_VALUES: readonly unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 53 + 2,
  1e308,
  '',
  ' ',
  'x'.repeat(70),
  'y'.repeat(70_000),
  '💥',
  'é',
  '../../etc',
  'a.b',
  'a*b',
  '>',
  '10.0.0.0/33',
  '10.0.0.1/8',
  '999.1.1.1',
  '::1',
  'FA:16:3E:00:00:01',
  [],
  [1, 2],
  {},
  JSON.parse('{"__proto__":{"polluted":true}}'),
  'constructor',
  '__proto__',
];

/**
 * A fresh copy of one of `values`: the lists are shared, and a later mutation
 * writing into a picked object must not change the list (it made cycles).
 */
const pickCopy = (rnd: Rnd, values: readonly unknown[]): Json =>
  JSON.parse(JSON.stringify(pick(rnd, values))) as Json;

/** Sets an own property, also for `__proto__` (an assignment would set the prototype). */
const own = (obj: Record<string, unknown>, key: string, value: unknown): void => {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
};

const BAD_IDS: readonly unknown[] = ['', 'bad id', 'a'.repeat(65), 'é', 'a.b', 'a*', null, 7, {}];
const BAD_KINDS: readonly unknown[] = [
  'port.explode',
  '',
  'PORT.CREATE',
  'port.create ',
  'vpc',
  42,
  null,
];

/** A valid intent of some kind for a VPC made by {@link baseScript}. */
export function validIntent(rnd: Rnd, vpcId: string, hosts: readonly HostRecord[], n: number) {
  const host = pick(rnd, hosts).hostId;
  const port = `p${1 + int(rnd, 12)}`;
  const id = `${vpcId}-z${n}`;
  const spec = (() => {
    switch (pick(rnd, KINDS)) {
      case 'port.create':
        return {
          kind: 'port.create',
          spec: { portId: `q${n}`, subnetId: pick(rnd, ['s1', 's2']), hostId: host },
        };
      case 'port.update':
        return { kind: 'port.update', spec: { portId: port, hostId: host } };
      case 'port.delete':
        return { kind: 'port.delete', spec: { portId: port } };
      case 'sg.update':
        return {
          kind: 'sg.update',
          spec: {
            sgId: 'g1',
            rules: [{ direction: 'egress', protocol: 'udp', portMin: 53, portMax: 53 }],
          },
        };
      case 'subnet.create':
        return {
          kind: 'subnet.create',
          spec: {
            subnetId: `s${3 + int(rnd, 5)}`,
            cidr: `10.0.${3 + int(rnd, 5)}.0/24`,
            gatewayIp: `10.0.${3 + int(rnd, 5)}.1`,
          },
        };
      case 'route.delete':
        return { kind: 'route.delete', spec: { destination: '0.0.0.0/0' } };
      default:
        return {
          kind: 'route.set',
          spec: { destination: pick(rnd, ['0.0.0.0/0', '172.16.0.0/12']), nextHop: '10.0.1.254' },
        };
    }
  })();
  return { id, vpcId, ...spec };
}

/** A VPC with two subnets, a group and a few ports: what the fuzzed intents refer to. */
export function baseScript(vpcId: string, hosts: readonly HostRecord[]) {
  return [
    { id: `${vpcId}-vpc`, kind: 'vpc.create', vpcId, spec: { cidr: '10.0.0.0/16' } },
    ...['s1', 's2'].map((s, i) => ({
      id: `${vpcId}-${s}`,
      kind: 'subnet.create',
      vpcId,
      spec: { subnetId: s, cidr: `10.0.${i + 1}.0/24`, gatewayIp: `10.0.${i + 1}.1` },
    })),
    {
      id: `${vpcId}-g1`,
      kind: 'sg.create',
      vpcId,
      spec: {
        sgId: 'g1',
        rules: [{ direction: 'ingress', protocol: 'tcp', portMin: 22, portMax: 22 }],
      },
    },
    ...Array.from({ length: 6 }, (_, i) => ({
      id: `${vpcId}-p${i + 1}`,
      kind: 'port.create',
      vpcId,
      spec: { portId: `p${i + 1}`, subnetId: 's1', hostId: hosts[i % hosts.length]!.hostId },
    })),
  ];
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Paths to every value inside `v` (objects and arrays included). */
function paths(v: unknown, at: Array<string | number> = []): Array<Array<string | number>> {
  const out = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

function valueAt(root: Json, at: ReadonlyArray<string | number>): Json | undefined {
  let node: unknown = root;
  for (const k of at) node = (node as Record<string | number, unknown> | null)?.[k];
  return node as Json | undefined;
}

function setAt(root: Json, at: ReadonlyArray<string | number>, value: unknown): Json {
  if (at.length === 0) return value as Json;
  let node = root as Record<string | number, unknown>;
  for (const k of at.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  const last = at.at(-1)!;
  if (value === undefined) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = value;
  return root;
}

/** One to three value-level mutations of a JSON value (a copy). */
export function mutateValue(rnd: Rnd, value: unknown, others: { vpcIds: readonly string[] }): Json {
  let v = JSON.parse(JSON.stringify(value)) as Json;
  for (let k = 1 + int(rnd, 3); k > 0; k--) {
    const all = paths(v);
    const at = pick(rnd, all);
    const obj = v && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
    switch (int(rnd, 9)) {
      case 0: // drop a field
        if (at.length > 0) v = setAt(v, at, undefined);
        break;
      case 1: // an unknown field
        if (obj)
          own(
            obj,
            pick(rnd, ['extra', 'Id', 'kind ', 'spec2', '__proto__']),
            pickCopy(rnd, ODD_VALUES),
          );
        break;
      case 2: // a wrong value anywhere
        v = setAt(v, at, pickCopy(rnd, ODD_VALUES));
        break;
      case 3:
        if (obj) obj.kind = pick(rnd, [...BAD_KINDS, ...KINDS]) as Json;
        break;
      case 4:
        if (obj) obj.id = pickCopy(rnd, BAD_IDS);
        break;
      case 5: // another VPC than the subject's, or none
        if (obj) obj.vpcId = pickCopy(rnd, [...others.vpcIds, 'fz-nowhere', ...BAD_IDS]);
        break;
      case 6:
        if (obj) obj.expectedRevision = pick(rnd, [-1, 0, 1, 10 ** 12, 'x', 3.5, null]);
        break;
      case 7: {
        // A reference to something that does not exist.
        const spec = obj?.spec;
        if (spec && typeof spec === 'object' && !Array.isArray(spec)) {
          const key = pick(rnd, ['portId', 'subnetId', 'sgId', 'hostId', 'nextHop', 'destination']);
          spec[key] = pick(rnd, [
            'nope',
            'p999',
            's9',
            'g9',
            'host-nowhere',
            '10.9.9.9',
            '10.0.0.0/16',
          ]);
        }
        break;
      }
      default: {
        // The value at that place, as another type (wrapped, stringified).
        const here = JSON.parse(JSON.stringify(valueAt(v, at) ?? null)) as Json;
        v = setAt(v, at, pick(rnd, [[here], { here }, JSON.stringify(here), 1]));
      }
    }
  }
  return v;
}

/** Byte-level damage to a text: truncation, bit flips, invalid UTF-8, junk around it. */
export function mutateBytes(rnd: Rnd, text: string): Uint8Array {
  const b = Array.from(bytes(text));
  switch (int(rnd, 6)) {
    case 0:
      return Uint8Array.from(b.slice(0, int(rnd, b.length)));
    case 1:
      for (let k = 1 + int(rnd, 4); k > 0 && b.length > 0; k--)
        b[int(rnd, b.length)]! ^= 1 << int(rnd, 8);
      return Uint8Array.from(b);
    case 2:
      b.splice(int(rnd, b.length + 1), 0, pick(rnd, [0xff, 0xc3, 0xe2, 0x00, 0x80]));
      return Uint8Array.from(b);
    case 3:
      return Uint8Array.from([0xef, 0xbb, 0xbf, ...b]);
    case 4:
      return Uint8Array.from([...b, ...bytes(pick(rnd, ['}', ']]', ',', ' trailing', '\u0000']))]);
    default:
      return Uint8Array.from(b.reverse());
  }
}

/** Bytes that are not an intent at all. */
export function garbage(rnd: Rnd): Uint8Array {
  switch (int(rnd, 8)) {
    case 0:
      return new Uint8Array(0);
    case 1:
      return Uint8Array.from({ length: 1 + int(rnd, 512) }, () => int(rnd, 256));
    case 2:
      return bytes(`${'['.repeat(20_000)}${']'.repeat(20_000)}`);
    case 3:
      return bytes(`{"a":${'{"a":'.repeat(5000)}1${'}'.repeat(5001)}`);
    case 4:
      return bytes(pick(rnd, ['null', 'true', '42', '"intent"', '[null]', '[[]]', '{}', '[{}]']));
    case 5:
      return bytes(
        JSON.stringify({
          id: 'x',
          kind: 'vpc.create',
          vpcId: 'fz-0',
          spec: { cidr: 'x'.repeat(70_000) },
        }),
      );
    case 6:
      return bytes('<?xml version="1.0"?><intent/>');
    default:
      return bytes('kind: port.create\nid: yaml-intent\n');
  }
}
