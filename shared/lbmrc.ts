/**
 * LBMRC — load-balanced, minimal-reassignment consistent placement (DESIGN §5).
 *
 * A pure, deterministic function of (items with weights, members with capacities,
 * the previous assignment, ε) → assignment. It places buckets over controller
 * instances and topology partitions over southbound modules. docs/lbmrc.md states
 * what is proven and what is measured; in short, with fair_m = W·cap_m / Σcap:
 *
 * - every member ends with load ≤ U_m = fair_m + max(ε·fair_m, w_max) (always);
 * - when no item is heavier than ε·min(fair), every member ends within
 *   [(1−ε)·fair_m, (1+ε)·fair_m];
 * - items keep their member unless that member left or a bound is broken; then
 *   only the weight needed moves, out of the over-loaded members and into the
 *   under-loaded ones (a join moves weight only to the joiner; weight drift
 *   inside the band moves nothing).
 *
 * Ties are broken by id, never by input order, so every instance computes the
 * same table from the same inputs.
 */
import { AlcorError } from './errors.js';

export interface PlacementItem {
  id: string;
  weight: number;
}

export interface PlacementMember {
  id: string;
  /** Relative capacity (default 1). */
  capacity?: number;
}

export interface PlacementInput {
  items: readonly PlacementItem[];
  members: readonly PlacementMember[];
  /** item id → member id; entries naming unknown items or members are ignored. */
  previous?: ReadonlyMap<string, string>;
  /** Tolerance around the fair share (default 0.05). */
  epsilon?: number;
}

export interface MemberLoad {
  id: string;
  capacity: number;
  load: number;
  items: number;
  /** W · capacity / Σ capacity. */
  fair: number;
  /** (1 − ε) · fair and (1 + ε) · fair: the band aimed for. */
  lower: number;
  upper: number;
  /** fair + max(ε · fair, w_max): the bound that always holds. */
  guaranteed: number;
}

export interface Placement {
  assignment: Map<string, string>;
  members: MemberLoad[];
  /** Weight and items whose member changed; `forced` of it came from departed members. */
  moved: { weight: number; items: number; forced: number };
  /** max over members of load / fair (1 is perfect; 0 members or W = 0 give 1). */
  maxOverFair: number;
}

export const DEFAULT_EPSILON = 0.05;

export class PlacementInputError extends AlcorError {
  constructor(field: string, message: string) {
    super('invalid_placement_input', `${field}: ${message}`, { field });
  }
}

interface Bin {
  id: string;
  capacity: number;
  fair: number;
  lower: number;
  upper: number;
  guaranteed: number;
  load: number;
  /** Item indexes sorted by (weight, id). */
  items: number[];
}

const byId = (a: { id: string }, b: { id: string }): number =>
  a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

function validate(input: PlacementInput): number {
  const epsilon = input.epsilon ?? DEFAULT_EPSILON;
  if (!Number.isFinite(epsilon) || epsilon < 0 || epsilon >= 1)
    throw new PlacementInputError('epsilon', `must be in [0, 1), got ${epsilon}`);
  if (input.members.length === 0) throw new PlacementInputError('members', 'no members');
  const seen = new Set<string>();
  input.members.forEach((m, i) => {
    if (typeof m.id !== 'string' || m.id === '' || seen.has(m.id))
      throw new PlacementInputError(
        `members[${i}].id`,
        `empty or repeated id ${JSON.stringify(m.id)}`,
      );
    seen.add(m.id);
    const c = m.capacity ?? 1;
    if (!Number.isFinite(c) || c <= 0)
      throw new PlacementInputError(`members[${i}].capacity`, `must be > 0, got ${c}`);
  });
  seen.clear();
  input.items.forEach((it, i) => {
    if (typeof it.id !== 'string' || seen.has(it.id))
      throw new PlacementInputError(`items[${i}].id`, `repeated id ${JSON.stringify(it.id)}`);
    seen.add(it.id);
    if (!Number.isFinite(it.weight) || it.weight < 0)
      throw new PlacementInputError(`items[${i}].weight`, `must be ≥ 0, got ${it.weight}`);
  });
  return epsilon;
}

/** Places items over members; see the module comment for the guarantees. */
export function place(input: PlacementInput): Placement {
  const epsilon = validate(input);
  const items = [...input.items].sort(byId);
  const members = [...input.members].sort(byId);
  // All weights zero: balance the item counts instead.
  const total0 = items.reduce((s, it) => s + it.weight, 0);
  const weight = total0 > 0 ? items.map((it) => it.weight) : items.map(() => 1);
  const total = total0 > 0 ? total0 : items.length;
  const wMax = weight.reduce((m, w) => Math.max(m, w), 0);
  const capacity = members.reduce((s, m) => s + (m.capacity ?? 1), 0);

  const bins: Bin[] = members.map((m) => {
    const cap = m.capacity ?? 1;
    const fair = (total * cap) / capacity;
    return {
      id: m.id,
      capacity: cap,
      fair,
      lower: (1 - epsilon) * fair,
      upper: (1 + epsilon) * fair,
      guaranteed: fair + Math.max(epsilon * fair, wMax),
      load: 0,
      items: [],
    };
  });
  const binOf = new Map(bins.map((b, i) => [b.id, i]));
  const owner = new Int32Array(items.length).fill(-1);
  const previousOwner = new Int32Array(items.length).fill(-1);
  const orphans: number[] = [];
  let forced = 0;

  // Weight order of item indexes (weight, then id: items are sorted by id).
  const lighter = (a: number, b: number): number => weight[a]! - weight[b]! || a - b;

  items.forEach((it, i) => {
    const prev = input.previous?.get(it.id);
    const b = prev === undefined ? undefined : binOf.get(prev);
    if (b === undefined) {
      if (prev !== undefined) {
        forced += weight[i]!;
        previousOwner[i] = -2; // had a member, which left
      }
      orphans.push(i);
      return;
    }
    owner[i] = b;
    previousOwner[i] = b;
    bins[b]!.load += weight[i]!;
    bins[b]!.items.push(i);
  });
  for (const b of bins) b.items.sort(lighter);

  const ratio = (b: Bin): number => (b.fair > 0 ? b.load / b.fair : b.load > 0 ? Infinity : 0);
  const insert = (b: number, i: number): void => {
    const list = bins[b]!.items;
    list.splice(
      lowerBound(list, (j) => lighter(j, i) < 0),
      0,
      i,
    );
    bins[b]!.load += weight[i]!;
    owner[i] = b;
  };
  const remove = (b: number, i: number): void => {
    const list = bins[b]!.items;
    list.splice(
      lowerBound(list, (j) => lighter(j, i) < 0),
      1,
    );
    bins[b]!.load -= weight[i]!;
  };
  /** Index in `b`'s list of the heaviest item with weight ≤ limit, or -1. */
  const heaviestUpTo = (b: Bin, limit: number): number =>
    lowerBound(b.items, (j) => weight[j]! <= limit) - 1;
  /** Index in `b`'s list of the lightest item with weight ≥ floor, or -1. */
  const lightestFrom = (b: Bin, floor: number): number => {
    const k = lowerBound(b.items, (j) => weight[j]! < floor);
    return k < b.items.length ? k : -1;
  };
  const order = (cmp: (a: Bin, b: Bin) => number): number[] =>
    bins.map((_, i) => i).sort((x, y) => cmp(bins[x]!, bins[y]!) || x - y);

  // 1. Orphans (new items, items of departed members), heaviest first: the
  //    member left least loaded relative to its share, within its upper bound
  //    if any member has room; else one at or below its fair share (≤ guaranteed).
  orphans.sort((a, b) => lighter(b, a));
  for (const i of orphans) {
    const w = weight[i]!;
    let best = -1;
    let bestScore = Infinity;
    let fallback = -1;
    let fallbackScore = Infinity;
    bins.forEach((b, k) => {
      const score = b.fair > 0 ? (b.load + w) / b.fair : Infinity;
      if (b.load + w <= b.upper && score < bestScore) {
        best = k;
        bestScore = score;
      }
      if (b.load <= b.fair && score < fallbackScore) {
        fallback = k;
        fallbackScore = score;
      }
    });
    if (best < 0) best = fallback >= 0 ? fallback : order((a, b) => ratio(a) - ratio(b))[0]!;
    insert(best, i);
  }

  const guard = 4 * items.length + 16;

  // 2. Shed: a member above its upper bound gives items to the least loaded
  //    members that stay within theirs; the lightest item that clears the
  //    excess in one move, else the heaviest that fits.
  const settled = new Set<number>();
  for (let round = 0; round < guard; round++) {
    const over = order((a, b) => b.load - b.upper - (a.load - a.upper)).find(
      (k) => !settled.has(k) && bins[k]!.load - bins[k]!.upper > 1e-9 * total,
    );
    if (over === undefined) break;
    const src = bins[over]!;
    const excess = src.load - src.upper;
    let moved = false;
    for (const d of order((a, b) => ratio(a) - ratio(b))) {
      if (d === over) continue;
      const room = bins[d]!.upper - bins[d]!.load;
      if (room <= 0) continue;
      let k = lightestFrom(src, excess);
      if (k < 0 || weight[src.items[k]!]! > room) k = heaviestUpTo(src, Math.min(room, excess));
      if (k < 0 || weight[src.items[k]!]! <= 0) continue;
      const i = src.items[k]!;
      remove(over, i);
      insert(d, i);
      moved = true;
      break;
    }
    if (moved) continue;
    if (src.load <= src.guaranteed) {
      settled.add(over); // item sizes allow no better for this member
      continue;
    }
    // Beyond the guaranteed bound: some member is below its fair share, and any
    // item fits there within its own guaranteed bound.
    const d = order((a, b) => ratio(a) - ratio(b)).find((x) => x !== over)!;
    const i = src.items[src.items.length - 1]!;
    remove(over, i);
    insert(d, i);
  }

  // 3. Fill: a member below its lower bound takes items from the most loaded
  //    members, as long as they stay above their own lower bound and it stays
  //    within its upper bound; the heaviest item that does not overshoot its
  //    fair share, else the lightest that fits.
  settled.clear();
  for (let round = 0; round < guard; round++) {
    const under = order((a, b) => b.lower - b.load - (a.lower - a.load)).find(
      (k) => !settled.has(k) && bins[k]!.load < bins[k]!.lower - 1e-9 * total,
    );
    if (under === undefined) break;
    const dst = bins[under]!;
    const want = dst.fair - dst.load;
    let moved = false;
    for (const d of order((a, b) => ratio(b) - ratio(a))) {
      if (d === under) continue;
      const donor = bins[d]!;
      const limit = Math.min(dst.upper - dst.load, donor.load - donor.lower);
      if (limit <= 0) continue;
      let k = heaviestUpTo(donor, Math.min(limit, want));
      if (k < 0 || weight[donor.items[k]!]! <= 0) {
        k = lightestFrom(donor, Number.MIN_VALUE);
        if (k >= 0 && weight[donor.items[k]!]! > limit) k = -1;
      }
      if (k < 0) continue;
      const i = donor.items[k]!;
      remove(d, i);
      insert(under, i);
      moved = true;
      break;
    }
    if (!moved) settled.add(under); // item sizes allow no better for this member
  }

  const assignment = new Map<string, string>();
  let movedWeight = 0;
  let movedItems = 0;
  items.forEach((it, i) => {
    const b = owner[i]!;
    assignment.set(it.id, bins[b]!.id);
    const prev = previousOwner[i]!;
    if (prev !== -1 && prev !== b) {
      movedWeight += weight[i]!;
      movedItems += 1;
    }
  });
  const loads: MemberLoad[] = bins.map((b) => ({
    id: b.id,
    capacity: b.capacity,
    load: b.load,
    items: b.items.length,
    fair: b.fair,
    lower: b.lower,
    upper: b.upper,
    guaranteed: b.guaranteed,
  }));
  const maxOverFair = bins.reduce((m, b) => Math.max(m, b.fair > 0 ? b.load / b.fair : 1), 0);
  return {
    assignment,
    members: loads,
    moved: { weight: movedWeight, items: movedItems, forced },
    maxOverFair: total > 0 ? maxOverFair : 1,
  };
}

/** First index in `list` for which `before` is false (`before` is monotone). */
function lowerBound(list: readonly number[], before: (x: number) => boolean): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(list[mid]!)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
