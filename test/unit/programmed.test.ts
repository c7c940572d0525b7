/**
 * The programmed rules (actors/vpc/programmed.ts), with time as an input: which
 * acks answer an intent, the deadline, held (adopted) intents, a group's shared
 * revision. Nothing here waits for a clock.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { vpc } from '../../actors/index.js';
import { goalStateAck, trackedIntent } from '../support/domain.js';

const DEADLINE = 1000;

const intent = trackedIntent;
const ack = goalStateAck;

const ids = (list: readonly vpc.PendingIntent[]): string[] => list.map((p) => p.intentId).sort();

const B = suite('programmed: the rules, time given');

B('done once every host applied; a full state answers earlier revisions', () => {
  const book = new vpc.ProgrammedBook(DEADLINE);
  book.add(intent('i1', 3, ['h1', 'h2']), 0);
  book.add(intent('i2', 5, ['h1']), 0);
  assert.equal(ids(book.ack(ack('h1', 3), 10).done), []);
  assert.equal(ids(book.ack(ack('h2', 9, { mode: 'full' }), 20).done), ['i1']);
  assert.equal(ids(book.ack(ack('h1', 5), 30).done), ['i2']);
  assert.is(book.size, 0);
  const again = book.ack(ack('h1', 5), 40);
  assert.equal([again.matched.length, again.done.length], [0, 0], 'a repeated ack matches nothing');
  const status = vpc.finalStatus(
    {
      ...intent('x', 5, ['h1']),
      waiting: new Set(),
      applied: 1,
      failed: new Map(),
      since: 0,
      deadline: DEADLINE,
      held: false,
    },
    DEADLINE,
  );
  assert.equal(status, {
    intentId: 'x',
    vpcId: 'v1',
    revision: 5,
    outcome: 'programmed',
    hosts: { total: 1, applied: 1, failed: 0, pending: 0 },
  });
});

B('the intents of a group commit share its revision: one ack per host answers them all', () => {
  const book = new vpc.ProgrammedBook(DEADLINE);
  book.add(intent('a', 8, ['h1', 'h2']), 0);
  book.add(intent('b', 8, ['h2']), 0);
  book.add(intent('c', 8, ['h3']), 0);
  assert.equal(ids(book.ack(ack('h2', 8), 1).done), ['b']);
  assert.equal(ids(book.ack(ack('h1', 8), 2).done), ['a']);
  assert.equal(ids(book.ack(ack('h3', 8), 3).done), ['c']);
});

B('the deadline: expired intents come out incomplete, naming the host missing', () => {
  const book = new vpc.ProgrammedBook(DEADLINE);
  const p = book.add(intent('i1', 3, ['h1', 'h2']), 100);
  book.ack(ack('h1', 3), 200);
  assert.equal(book.expire(100 + DEADLINE - 1), [], 'not yet');
  assert.equal(ids(book.expire(100 + DEADLINE)), ['i1']);
  const s = vpc.finalStatus(p, DEADLINE);
  assert.is(s.outcome, 'incomplete');
  assert.equal(s.hosts?.missing, ['h2']);
  assert.is(s.error?.code, 'deadline_passed');
  assert.match(s.error!.message, `1 of 2 host(s) did not ack within ${DEADLINE} ms: h2`);
  // An ack after the deadline counts for nothing.
  const late = new vpc.ProgrammedBook(DEADLINE);
  late.add(intent('i2', 4, ['h1']), 0);
  assert.equal(late.ack(ack('h1', 4), DEADLINE + 1).matched, []);
});

B('a failed ack answers its host; every host answered with a failure is incomplete at once', () => {
  const book = new vpc.ProgrammedBook(DEADLINE);
  book.add(intent('i1', 3, ['h1', 'h2']), 0);
  book.ack(ack('h1', 3), 1);
  const { done } = book.ack(
    ack('h2', 3, { status: 'failed', error: { code: 'apply_failed', message: 'no' } }),
    2,
  );
  const s = vpc.finalStatus(done[0]!, DEADLINE);
  assert.is(s.outcome, 'incomplete');
  assert.is(s.error?.code, 'apply_failed');
  assert.equal(s.hosts, {
    total: 2,
    applied: 1,
    failed: 1,
    pending: 0,
    missing: [],
    failedHosts: ['h2'],
  });
});

B(
  'an adopted intent waits, held, deadline or not, until released; stored acks count before the deadline',
  () => {
    const book = new vpc.ProgrammedBook(DEADLINE);
    const p = book.add(intent('i1', 3, ['h1', 'h2', 'h3']), 0, true);
    assert.equal(book.expire(10 * DEADLINE), [], 'held: not expired');
    book.ack(ack('h1', 3), 10);
    book.ack(ack('h2', 3, { status: 'failed' }), 20);
    book.ack(ack('h3', 3), DEADLINE + 1); // stored after the deadline
    p.held = false;
    assert.equal(ids(book.expire(10 * DEADLINE)), ['i1']);
    assert.equal(vpc.finalStatus(p, DEADLINE).hosts, {
      total: 3,
      applied: 1,
      failed: 1,
      pending: 1,
      missing: ['h3'],
      failedHosts: ['h2'],
    });
  },
);

B('a bucket forgotten: its intents leave the book, the others stay', () => {
  const book = new vpc.ProgrammedBook(DEADLINE);
  book.add(intent('i1', 3, ['h1']), 0);
  book.add(intent('i2', 4, ['h1'], 8), 0);
  assert.equal(book.forget(new Set([7])), ['i1']);
  assert.is(book.size, 1);
  assert.equal(book.vpcIds(), ['v1']);
  assert.equal(ids(book.ack(ack('h1', 4), 1).done), ['i2']);
  assert.equal(book.vpcIds(), []);
});

B('an intent without hosts is done at once (never in the book)', () => {
  const book = new vpc.ProgrammedBook(DEADLINE);
  const p = book.add(intent('i1', 3, []), 0);
  assert.is(book.size, 0);
  assert.is(vpc.finalStatus(p, DEADLINE).outcome, 'programmed');
});

B('an incomplete status names at most STATUS_MAX_HOSTS hosts; its counts stay whole', () => {
  const many = Array.from({ length: 5000 }, (_, i) => `h${String(i).padStart(4, '0')}`);
  const book = new vpc.ProgrammedBook(DEADLINE);
  const p = book.add(intent('wide', 9, many), 0);
  book.ack(ack('h0000', 9), 1);
  book.expire(DEADLINE);
  const s = vpc.finalStatus(p, DEADLINE);
  assert.is(s.hosts?.pending, 4999);
  assert.is(s.hosts?.missing?.length, vpc.STATUS_MAX_HOSTS);
  assert.is(s.hosts?.missing?.[0], 'h0001');
  assert.match(s.error!.message, '4999 of 5000 host(s) did not ack');
  assert.ok(Buffer.byteLength(JSON.stringify(s)) < 64 * 1024, 'under a 64 KiB limit');
  // Positive control: a few missing hosts are all named.
  const few = new vpc.ProgrammedBook(DEADLINE);
  const q = few.add(intent('narrow', 9, ['h1', 'h2', 'h3']), 0);
  few.expire(DEADLINE);
  assert.equal(vpc.finalStatus(q, DEADLINE).hosts?.missing, ['h1', 'h2', 'h3']);
});

B.run();
