/**
 * Placement baselines LBMRC is compared with (test/bench/lbmrc.bench.ts): a hash
 * ring with virtual nodes, rendezvous (HRW) hashing, jump consistent hash, and
 * consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2018).
 * Each is written from its paper's description, as plainly as it is usually
 * deployed (unweighted hashing; CH-BL bounds weight, not counts, to be fair to it).
 */
import { fnv1a32 } from '../../../shared/index.js';

export interface Item {
  id: string;
  weight: number;
  /** 32-bit hash of the id, computed once. */
  hash: number;
}

export interface Strategy {
  name: string;
  /** Places all items over `members` (in join order); `previous` is this strategy's last table. */
  assign: (
    items: readonly Item[],
    members: readonly string[],
    previous: Map<string, string> | undefined,
  ) => Map<string, string>;
  /** A lookup function for one membership, to time a single item → member lookup. */
  lookup: (
    items: readonly Item[],
    members: readonly string[],
    table: Map<string, string>,
  ) => (item: Item) => string;
}

const utf8 = new TextEncoder();

/** murmur3's 32-bit finaliser: spreads every input bit over the output. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** fnv1a32 with a murmur3 finaliser: fnv alone clusters on similar ids. */
export const hash32 = (text: string): number => fmix32(fnv1a32(utf8.encode(text)));

/** Mixes two 32-bit values (HRW's per-pair score) without building a string. */
const mix = (a: number, b: number): number => fmix32(a ^ Math.imul(b, 0x9e3779b1));

/** A hash-based strategy's table: every item looked up once. */
const assignByLookup =
  (lookup: Strategy['lookup']): Strategy['assign'] =>
  (items, members) => {
    const find = lookup(items, members, new Map());
    return new Map(items.map((it) => [it.id, find(it)]));
  };

interface Ring {
  points: Uint32Array;
  owners: string[];
}

function buildRing(members: readonly string[], vnodes: number): Ring {
  const entries: Array<[number, string]> = [];
  for (const m of members) for (let v = 0; v < vnodes; v++) entries.push([hash32(`${m}#${v}`), m]);
  entries.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1));
  return { points: Uint32Array.from(entries.map((e) => e[0])), owners: entries.map((e) => e[1]) };
}

/** Index of the first ring point ≥ h (wrapping). */
function ringIndex(ring: Ring, h: number): number {
  let lo = 0;
  let hi = ring.points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ring.points[mid]! < h) lo = mid + 1;
    else hi = mid;
  }
  return lo === ring.points.length ? 0 : lo;
}

export function hashRing(vnodes = 100): Strategy {
  const lookup: Strategy['lookup'] = (_items, members) => {
    const ring = buildRing(members, vnodes);
    return (item) => ring.owners[ringIndex(ring, item.hash)]!;
  };
  return {
    name: `hash ring (${vnodes} vnodes)`,
    assign: assignByLookup(lookup),
    lookup,
  };
}

export function rendezvous(): Strategy {
  const lookup: Strategy['lookup'] = (_items, members) => {
    const seeds = members.map((m) => hash32(m));
    return (item) => {
      let best = 0;
      let bestScore = -1;
      for (let k = 0; k < seeds.length; k++) {
        const score = mix(item.hash, seeds[k]!);
        if (score > bestScore) {
          bestScore = score;
          best = k;
        }
      }
      return members[best]!;
    };
  };
  return {
    name: 'rendezvous (HRW)',
    assign: assignByLookup(lookup),
    lookup,
  };
}

/** Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm" (2014). */
export function jumpHash(key: bigint, buckets: number): number {
  let b = -1;
  let j = 0;
  let k = key;
  while (j < buckets) {
    b = j;
    k = BigInt.asUintN(64, k * 2862933555777941757n + 1n);
    j = Math.floor(((b + 1) * 2 ** 31) / (Number(k >> 33n) + 1));
  }
  return b;
}

/**
 * Jump hash maps to bucket numbers 0..n-1, so members are numbered by join order;
 * a member leaving from the middle renumbers those after it (its known limit).
 */
export function jump(): Strategy {
  const lookup: Strategy['lookup'] = (_items, members) => (item) =>
    members[jumpHash(BigInt(item.hash) * 0x9e3779b97f4a7c15n, members.length)]!;
  return {
    name: 'jump consistent hash',
    assign: assignByLookup(lookup),
    lookup,
  };
}

/**
 * Consistent hashing with bounded loads: a ring with virtual nodes; each member
 * takes at most c = (1 + ε) · W / n of weight; items, in a fixed order, walk
 * clockwise from their hash to the first member with room. Recomputed on each
 * membership change (the paper's insertion process, made deterministic).
 */
export function boundedLoads(epsilon: number, vnodes = 100): Strategy {
  const assign: Strategy['assign'] = (items, members) => {
    const ring = buildRing(members, vnodes);
    const total = items.reduce((s, it) => s + it.weight, 0);
    const cap = ((1 + epsilon) * total) / members.length;
    const load = new Map(members.map((m) => [m, 0]));
    const table = new Map<string, string>();
    for (const it of items) {
      let k = ringIndex(ring, it.hash);
      let chosen: string | undefined;
      for (let step = 0; step < ring.points.length; step++) {
        const m = ring.owners[k]!;
        if (load.get(m)! + it.weight <= cap) {
          chosen = m;
          break;
        }
        k = k + 1 === ring.points.length ? 0 : k + 1;
      }
      // Heavier than any room left: the least loaded member.
      chosen ??= [...load].sort((a, b) => a[1] - b[1])[0]![0];
      load.set(chosen, load.get(chosen)! + it.weight);
      table.set(it.id, chosen);
    }
    return table;
  };
  return {
    name: `bounded loads (ε=${epsilon})`,
    assign,
    lookup: (_items, _members, table) => (item) => table.get(item.id)!,
  };
}
