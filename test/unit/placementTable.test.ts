/**
 * The placement leader's pure step (`nextTable`) and the placement records read
 * from KV (anyone can write a KV value: bad ones are refused with a clear error).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decodeHandoffRecord,
  decodeMemberRecord,
  decodePlacementTable,
  type PlacementTable,
} from '../../shared/index.js';
import { nextTable } from '../../services/controller/buckets/placementLeader.js';

const opts = { bucketCount: 64, epsilon: 0.05 };
const member = (id: string, loads: Record<string, number> = {}) => ({ id, capacity: 1, loads });

const Table = suite('placement table');

Table('the first table spreads the buckets and names every member', () => {
  const t = nextTable(undefined, [member('a'), member('b')], 'a', opts);
  assert.is(t.epoch, 1);
  assert.is(t.owners.length, 64);
  assert.equal(
    t.members.map((m) => [m.id, m.buckets]),
    [
      ['a', 32],
      ['b', 32],
    ],
  );
  assert.ok(t.since.every((s) => s === 1));
});

Table('a member leaving: only its buckets move, counted as forced, with a new since', () => {
  const first = nextTable(undefined, [member('a'), member('b'), member('c')], 'a', opts);
  const second = nextTable(first, [member('a'), member('c')], 'a', opts);
  first.owners.forEach((owner, b) => {
    if (owner === 'b') {
      assert.is.not(second.owners[b], 'b');
      assert.is(second.since[b], 2);
    } else {
      assert.is(second.owners[b], owner, `bucket ${b} of a survivor moved`);
      assert.is(second.since[b], 1);
    }
  });
  const ofB = first.owners.filter((o) => o === 'b').length;
  assert.equal(second.moved, { weight: ofB, buckets: ofB, forced: ofB });
});

Table('weights come from what each bucket owner reports, else the last table', () => {
  const first = nextTable(undefined, [member('a'), member('b')], 'a', opts);
  const bucketOfA = first.owners.indexOf('a');
  const bucketOfB = first.owners.indexOf('b');
  // b reports a load for a bucket a owns: ignored (not the owner).
  const second = nextTable(
    first,
    [member('a', { [bucketOfA]: 7 }), member('b', { [bucketOfA]: 99, [bucketOfB]: 3 })],
    'a',
    opts,
  );
  assert.is(second.weights[bucketOfA], 7);
  assert.is(second.weights[bucketOfB], 3);
  const third = nextTable(second, [member('a'), member('b')], 'a', opts);
  assert.is(third.weights[bucketOfA], 7, 'kept from the last table');
});

Table('drift inside the band keeps the table', () => {
  const first = nextTable(undefined, [member('a'), member('b')], 'a', opts);
  const loads = Object.fromEntries(first.owners.flatMap((o, b) => (o === 'a' ? [[b, 1.02]] : [])));
  const second = nextTable(first, [member('a', loads), member('b')], 'a', opts);
  assert.equal(second.owners, first.owners);
});

const Records = suite('placement records: bad values are refused');

Records('member records', () => {
  const enc = (v: unknown) =>
    new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
  const good = {
    id: 'c1',
    incarnation: 'abc123',
    capacity: 1,
    placed: true,
    startedAt: '2026-11-24T00:00:00Z',
    loads: { '3': 5 },
  };
  assert.ok(decodeMemberRecord(enc(good)).ok);
  const cases: Array<[unknown, string, string | undefined]> = [
    ['{not json', 'invalid_json', undefined],
    [{ ...good, id: 'bad id' }, 'id_format', 'id'],
    [{ ...good, capacity: 0 }, 'out_of_range', 'capacity'],
    [{ ...good, loads: { x: 1 } }, 'invalid_value', 'loads.x'],
    [{ ...good, extra: 1 }, 'unknown_field', 'extra'],
  ];
  for (const [value, code, path] of cases) {
    const r = decodeMemberRecord(enc(value));
    assert.is(r.ok, false);
    if (!r.ok) {
      assert.is(r.error.code, code, JSON.stringify(r.error));
      assert.is(r.error.path, path);
    }
  }
});

Records('handoff records and tables', () => {
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const handoff = {
    bucket: 3,
    owner: 'c1',
    incarnation: 'abc',
    state: 'acquired',
    floor: 10,
    at: '2026-11-24T00:00:00Z',
  };
  assert.ok(decodeHandoffRecord(enc(handoff)).ok);
  const wrongState = decodeHandoffRecord(enc({ ...handoff, state: 'taken' }));
  assert.is(wrongState.ok, false);
  if (!wrongState.ok) assert.is(wrongState.error.path, 'state');
  const negative = decodeHandoffRecord(enc({ ...handoff, floor: -1 }));
  assert.is(negative.ok, false);
  if (!negative.ok) assert.is(negative.error.path, 'floor');

  const table: PlacementTable = nextTable(undefined, [member('a')], 'a', opts);
  assert.ok(decodePlacementTable(enc(table)).ok);
  const broken = decodePlacementTable(enc({ ...table, owners: 'a' }));
  assert.is(broken.ok, false);
  if (!broken.ok) assert.is(broken.error.path, 'owners');
});

Table.run();
Records.run();
