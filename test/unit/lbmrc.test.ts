/**
 * LBMRC (shared/lbmrc.ts): the guarantees docs/lbmrc.md states, as properties over
 * random weights (uniform and Zipf-skewed), capacities and membership sequences,
 * and a few exact cases. Seeded (FC_SEED to vary).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  place,
  PlacementInputError,
  type Placement,
  type PlacementItem,
  type PlacementMember,
} from '../../shared/index.js';

const seed = Number(process.env.FC_SEED ?? 20261124);
const numRuns = Number(process.env.FC_RUNS ?? 150);
const EPS = 0.05;
const tol = (total: number): number => 1e-9 * Math.max(1, total);

/** Weights: uniform, or Zipf by rank (w_k = scale / k^s). */
const weightsArb: fc.Arbitrary<number[]> = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 0, maxLength: 300 }),
  fc
    .record({
      n: fc.integer({ min: 1, max: 1024 }),
      s: fc.double({ min: 0.2, max: 1.6, noNaN: true }),
    })
    .map(({ n, s }) => Array.from({ length: n }, (_, k) => Math.round(10_000 / (k + 1) ** s))),
);
const itemsArb = weightsArb.map((ws) =>
  ws.map((weight, i): PlacementItem => ({ id: `i${i}`, weight })),
);
const membersArb = fc
  .uniqueArray(fc.integer({ min: 0, max: 60 }), { minLength: 1, maxLength: 12 })
  .chain((ids) =>
    fc.tuple(
      ...ids.map((id) =>
        fc
          .oneof(fc.constant(1), fc.double({ min: 0.25, max: 4, noNaN: true }))
          .map((capacity): PlacementMember => ({ id: `m${id}`, capacity })),
      ),
    ),
  );

const total = (items: readonly PlacementItem[]): number => items.reduce((s, i) => s + i.weight, 0);
const wMax = (items: readonly PlacementItem[]): number =>
  items.reduce((m, i) => Math.max(m, i.weight), 0);

function assertBounds(items: readonly PlacementItem[], p: Placement, label: string): void {
  const W = total(items);
  const t = tol(W);
  for (const m of p.members) {
    assert.ok(
      m.load <= m.guaranteed + t,
      `${label}: ${m.id} load ${m.load} > guaranteed ${m.guaranteed}`,
    );
  }
  const minFair = Math.min(...p.members.map((m) => m.fair));
  if (W > 0 && wMax(items) <= EPS * minFair) {
    for (const m of p.members) {
      assert.ok(
        m.load >= m.lower - t && m.load <= m.upper + t,
        `${label}: small items, yet ${m.id} load ${m.load} outside [${m.lower}, ${m.upper}]`,
      );
    }
  }
  // The loads add up and every item is placed on a member.
  assert.is(p.assignment.size, items.length);
  const sum = p.members.reduce((s, m) => s + m.load, 0);
  assert.ok(Math.abs(sum - (W > 0 ? W : items.length)) <= t + 1e-6);
}

const Lbmrc = suite('LBMRC');

Lbmrc('the same inputs in any order give the same table', () => {
  fc.assert(
    fc.property(itemsArb, membersArb, fc.integer(), (items, members, salt) => {
      const a = place({ items, members, epsilon: EPS });
      const shuffled = [...items].sort(
        (x, y) => ((x.weight * 31 + salt) % 7) - ((y.weight * 31 + salt) % 7),
      );
      const b = place({ items: shuffled, members: [...members].reverse(), epsilon: EPS });
      assert.equal([...a.assignment].sort(), [...b.assignment].sort());
    }),
    { seed, numRuns },
  );
});

Lbmrc(
  'every member stays within its guaranteed bound, and within the band when items are small',
  () => {
    fc.assert(
      fc.property(itemsArb, membersArb, (items, members) => {
        assertBounds(items, place({ items, members, epsilon: EPS }), 'fresh');
      }),
      { seed, numRuns },
    );
  },
);

Lbmrc('bounds hold through a sequence of joins, leaves and weight drift', () => {
  const step = fc.oneof(
    fc.record({ kind: fc.constant('join' as const), id: fc.integer({ min: 100, max: 200 }) }),
    fc.record({ kind: fc.constant('leave' as const), pick: fc.nat() }),
    fc.record({
      kind: fc.constant('drift' as const),
      factor: fc.double({ min: 0.5, max: 2, noNaN: true }),
      pick: fc.nat(),
    }),
  );
  fc.assert(
    fc.property(
      itemsArb,
      membersArb,
      fc.array(step, { maxLength: 8 }),
      (start, members0, steps) => {
        let items = start;
        let members = members0;
        let previous = place({ items, members, epsilon: EPS }).assignment;
        for (const s of steps) {
          if (s.kind === 'join' && !members.some((m) => m.id === `j${s.id}`))
            members = [...members, { id: `j${s.id}` }];
          if (s.kind === 'leave' && members.length > 1)
            members = members.filter((_, i) => i !== s.pick % members.length);
          if (s.kind === 'drift' && items.length > 0) {
            const k = s.pick % items.length;
            items = items.map((it, i) =>
              i === k ? { ...it, weight: Math.round(it.weight * s.factor) } : it,
            );
          }
          const p = place({ items, members, previous, epsilon: EPS });
          assertBounds(items, p, s.kind);
          previous = p.assignment;
        }
      },
    ),
    { seed, numRuns: Math.ceil(numRuns / 2) },
  );
});

/** Items small enough that the band holds (w_max ≤ ε · fair with up to 13 members). */
const smallItemsArb = fc
  .array(fc.integer({ min: 1, max: 100 }), { minLength: 3000, maxLength: 4000 })
  .map((ws) => ws.map((weight, i): PlacementItem => ({ id: `i${i}`, weight })));
const equalMembersArb = fc
  .integer({ min: 1, max: 12 })
  .map((n) => Array.from({ length: n }, (_, i): PlacementMember => ({ id: `m${i}` })));

Lbmrc(
  'a join moves weight only to the joiner, at most its upper bound, from over-loaded members',
  () => {
    fc.assert(
      fc.property(smallItemsArb, equalMembersArb, (items, members) => {
        const before = place({ items, members, epsilon: EPS });
        const joined = [...members, { id: 'new' }];
        const after = place({ items, members: joined, previous: before.assignment, epsilon: EPS });
        const newcomer = after.members.find((m) => m.id === 'new')!;
        const loadBefore = new Map(before.members.map((m) => [m.id, m.load]));
        for (const [item, member] of after.assignment) {
          if (before.assignment.get(item) !== member)
            assert.is(member, 'new', `${item} moved to ${member}`);
        }
        assert.ok(
          after.moved.weight <= newcomer.upper + 1e-9,
          `moved ${after.moved.weight} > ${newcomer.upper}`,
        );
        assert.ok(after.moved.weight >= newcomer.lower - 1e-9);
        // Donors were above the new fair share before giving.
        for (const m of after.members) {
          if (m.id !== 'new' && m.load < loadBefore.get(m.id)!)
            assert.ok(
              loadBefore.get(m.id)! > m.fair,
              `${m.id} gave while at or below its fair share`,
            );
        }
      }),
      { seed, numRuns: 40 },
    );
  },
);

Lbmrc('a leave moves the leaver’s items and at most ε·W more', () => {
  fc.assert(
    fc.property(smallItemsArb, equalMembersArb, fc.nat(), (items, members0, k) => {
      const members = [...members0, { id: 'extra' }];
      const before = place({ items, members, epsilon: EPS });
      const leaver = members[k % members.length]!.id;
      const after = place({
        items,
        members: members.filter((m) => m.id !== leaver),
        previous: before.assignment,
        epsilon: EPS,
      });
      const leaverLoad = before.members.find((m) => m.id === leaver)!.load;
      assert.is(after.moved.forced, leaverLoad);
      assert.ok(after.moved.weight <= leaverLoad + EPS * total(items) + 1e-9);
    }),
    { seed, numRuns: 40 },
  );
});

Lbmrc('weight drift inside the band moves nothing', () => {
  const items = Array.from({ length: 1024 }, (_, i): PlacementItem => ({
    id: `b${i}`,
    weight: 100,
  }));
  const members = ['a', 'b', 'c'].map((id) => ({ id }));
  const first = place({ items, members });
  // +1 % on every bucket of one member keeps it inside (1 + ε) · fair.
  const drifted = items.map((it) =>
    first.assignment.get(it.id) === 'a' ? { ...it, weight: 101 } : it,
  );
  const second = place({ items: drifted, members, previous: first.assignment });
  assert.equal(second.moved, { weight: 0, items: 0, forced: 0 });
  // +30 % breaks the bound: weight moves out of `a` only.
  const heavy = items.map((it) =>
    first.assignment.get(it.id) === 'a' ? { ...it, weight: 130 } : it,
  );
  const third = place({ items: heavy, members, previous: first.assignment });
  assert.ok(third.moved.items > 0);
  for (const [item, member] of third.assignment) {
    if (first.assignment.get(item) !== member) assert.is(first.assignment.get(item), 'a');
  }
  assert.ok(third.maxOverFair <= 1.05 + 1e-9);
});

Lbmrc('capacities share the load in proportion', () => {
  const items = Array.from({ length: 1000 }, (_, i) => ({ id: `b${i}`, weight: 1 }));
  const p = place({
    items,
    members: [
      { id: 'big', capacity: 3 },
      { id: 'small', capacity: 1 },
    ],
  });
  assert.equal(
    p.members.map((m) => [m.id, m.load]),
    [
      ['big', 750],
      ['small', 250],
    ],
  );
});

Lbmrc('one item heavier than a fair share sits alone within the guaranteed bound', () => {
  const items = [
    { id: 'huge', weight: 1000 },
    ...Array.from({ length: 10 }, (_, i) => ({ id: `s${i}`, weight: 10 })),
  ];
  const p = place({ items, members: [{ id: 'a' }, { id: 'b' }, { id: 'c' }] });
  const holder = p.assignment.get('huge')!;
  assert.is(p.members.find((m) => m.id === holder)!.items, 1);
});

Lbmrc('bad input is refused with the field named', () => {
  const cases: Array<[Parameters<typeof place>[0], string]> = [
    [{ items: [], members: [] }, 'members'],
    [{ items: [], members: [{ id: 'a' }, { id: 'a' }] }, 'members[1].id'],
    [{ items: [], members: [{ id: 'a', capacity: 0 }] }, 'members[0].capacity'],
    [{ items: [{ id: 'x', weight: -1 }], members: [{ id: 'a' }] }, 'items[0].weight'],
    [{ items: [{ id: 'x', weight: NaN }], members: [{ id: 'a' }] }, 'items[0].weight'],
    [
      {
        items: [
          { id: 'x', weight: 1 },
          { id: 'x', weight: 1 },
        ],
        members: [{ id: 'a' }],
      },
      'items[1].id',
    ],
    [{ items: [], members: [{ id: 'a' }], epsilon: 1 }, 'epsilon'],
  ];
  for (const [input, field] of cases) {
    try {
      place(input);
      assert.unreachable(`accepted bad ${field}`);
    } catch (err) {
      assert.instance(err, PlacementInputError);
      assert.is((err as PlacementInputError).field, field);
      assert.is((err as PlacementInputError).code, 'invalid_placement_input');
    }
  }
});

Lbmrc('all-zero weights balance item counts', () => {
  const items = Array.from({ length: 9 }, (_, i) => ({ id: `b${i}`, weight: 0 }));
  const p = place({ items, members: [{ id: 'a' }, { id: 'b' }, { id: 'c' }] });
  assert.equal(
    p.members.map((m) => m.items),
    [3, 3, 3],
  );
});

Lbmrc.run();
