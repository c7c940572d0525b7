/**
 * The demo's live counts and progress line (services/demo/progress.ts): counts per
 * intent of the run, never above their totals, and a line that fits the terminal.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  IntentTally,
  progressLine,
  type ProgressCounts,
  type StatusSeen,
} from '../../services/demo/progress.js';

const ids = ['i1', 'i2', 'i3'];
const st = (intentId: string, outcome: StatusSeen['outcome'], code?: string): StatusSeen => ({
  intentId,
  outcome,
  ...(code ? { error: { code } } : {}),
});
const counts = (t: IntentTally) => ({
  decided: t.decided,
  accepted: t.accepted,
  programmed: t.programmed,
  incomplete: t.incomplete,
});

const tally = suite('demo progress: counting');

tally('a repeated programmed status for the same intent counts it once', () => {
  const t = new IntentTally(ids);
  t.record(st('i1', 'accepted'));
  assert.equal(t.record(st('i1', 'programmed')), { decided: false, programmed: true });
  assert.equal(t.record(st('i1', 'programmed')), { decided: false, programmed: false });
  assert.equal(counts(t), { decided: 1, accepted: 1, programmed: 1, incomplete: 0 });
  assert.is(t.repeats, 1);
});

tally('programmed, incomplete, programmed again (two owners) counts one programmed intent', () => {
  const t = new IntentTally(ids);
  t.record(st('i1', 'accepted'));
  t.record(st('i1', 'programmed'));
  t.record(st('i1', 'incomplete'));
  t.record(st('i1', 'programmed'));
  assert.equal(counts(t), { decided: 1, accepted: 1, programmed: 1, incomplete: 0 });
  assert.is(t.outcomeOf('i1'), 'programmed');
});

tally('incomplete, then programmed by late acks: programmed, no longer incomplete', () => {
  const t = new IntentTally(ids);
  t.record(st('i2', 'accepted'));
  t.record(st('i2', 'incomplete'));
  assert.equal(counts(t), { decided: 1, accepted: 1, programmed: 0, incomplete: 1 });
  t.record(st('i2', 'programmed'));
  assert.equal(counts(t), { decided: 1, accepted: 1, programmed: 1, incomplete: 0 });
});

tally('a final status before its accepted counts the intent accepted, once', () => {
  const t = new IntentTally(ids);
  assert.equal(t.record(st('i1', 'programmed')), { decided: true, programmed: true });
  assert.equal(counts(t), { decided: 1, accepted: 1, programmed: 1, incomplete: 0 });
  assert.equal(t.record(st('i1', 'accepted')), { decided: false, programmed: false });
  assert.equal(counts(t), { decided: 1, accepted: 1, programmed: 1, incomplete: 0 });
  assert.is(t.finalBeforeDecision, 1);
});

tally('the first decision stands; a decision sent again by a new owner is a repeat', () => {
  const t = new IntentTally(ids);
  t.record(st('i3', 'rejected', 'ip_reserved'));
  t.record(st('i3', 'rejected', 'ip_reserved'));
  t.record(st('i3', 'accepted'));
  t.record(st('i3', 'programmed'));
  assert.equal(counts(t), { decided: 1, accepted: 0, programmed: 0, incomplete: 0 });
  assert.equal(t.rejectedBy(), { ip_reserved: 1 });
  assert.is(t.outcomeOf('i3'), 'rejected:ip_reserved');
  assert.is(t.repeats, 3);
});

tally("intents outside the run's set are not counted", () => {
  const t = new IntentTally(ids);
  assert.equal(t.record(st('other', 'accepted')), { decided: false, programmed: false });
  t.record(st('other', 'programmed'));
  assert.equal(counts(t), { decided: 0, accepted: 0, programmed: 0, incomplete: 0 });
  assert.is(t.outcomeOf('other'), undefined);
});

tally('a refusal without a code counts as unknown', () => {
  const t = new IntentTally(ids);
  t.record(st('i1', 'rejected'));
  assert.equal(t.rejectedBy(), { unknown: 1 });
});

tally('the undecided are closed as refused at the end; the decided keep theirs', () => {
  const t = new IntentTally(ids);
  t.record(st('i1', 'accepted'));
  assert.is(t.closeUndecided('no_decision'), 2);
  assert.equal(t.rejectedBy(), { no_decision: 2 });
  assert.is(t.decided, 3);
  assert.is(t.outcomeOf('i1'), 'accepted');
});

tally('an id listed twice is one intent: the total is the set', () => {
  const t = new IntentTally(['a', 'a', 'b']);
  assert.is(t.total, 2);
});

tally('whatever the order and repeats of statuses, counts stay within their totals', () => {
  // Every sequence of up to 4 statuses over 2 intents plus a stranger.
  const all: StatusSeen[] = [];
  for (const id of ['i1', 'i2', 'x'])
    for (const outcome of ['accepted', 'rejected', 'programmed', 'incomplete'] as const)
      all.push(st(id, outcome, 'c'));
  const walk = (t: IntentTally, depth: number, seen: StatusSeen[]): void => {
    const c = counts(t);
    const ok =
      c.programmed + c.incomplete <= c.accepted && c.accepted <= c.decided && c.decided <= t.total;
    if (!ok) assert.unreachable(`${JSON.stringify(seen)} → ${JSON.stringify(c)}`);
    if (depth === 0) return;
    for (const s of all) {
      const next = new IntentTally(['i1', 'i2']);
      for (const p of [...seen, s]) next.record(p);
      walk(next, depth - 1, [...seen, s]);
    }
  };
  walk(new IntentTally(['i1', 'i2']), 4, []);
});

tally.run();

const line = suite('demo progress: the line');

const big: ProgressCounts = {
  decided: 6523,
  total: 6562,
  perSecond: 99.6,
  programmed: 6480,
  accepted: 6500,
  hostsReached: 998,
  hostsUsed: 1000,
};

line('wide: a bar of 30 and every field with its full label', () => {
  assert.is(
    progressLine(big, 120),
    '[##############################] 6523/6562 intents  100/s  programmed 6480/6500  hosts reached 998/1000',
  );
});

line('80 columns: fits in 79, still with a bar and every number', () => {
  const text = progressLine(big, 80);
  assert.is(
    text,
    '[##############] 6523/6562 intents  100/s  programmed 6480/6500  hosts 998/1000',
  );
  assert.ok(text.length <= 79, `${text.length} characters`);
});

line('40 columns: no bar, the intents and programmed counts first, no number cut', () => {
  const text = progressLine(big, 40);
  assert.is(text, '6523/6562 intents prog 6480/6500 100/s');
  assert.ok(text.length <= 39);
});

line('never longer than the width less one, from 1 to 200 columns', () => {
  for (let columns = 1; columns <= 200; columns++) {
    const text = progressLine(big, columns);
    assert.ok(text.length <= columns - 1, `${columns} columns: ${JSON.stringify(text)}`);
  }
});

line('a count above its total (a bug upstream) is shown capped', () => {
  const text = progressLine({ ...big, programmed: 51, accepted: 49 }, 200);
  assert.ok(text.includes('programmed 49/49'), text);
});

line('an unusable width (0, negative, NaN) is taken as 80 columns', () => {
  const at80 = progressLine(big, 80);
  for (const columns of [0, -5, NaN]) assert.is(progressLine(big, columns), at80);
});

line('before anything: an empty bar, zero rate, nothing divided by zero', () => {
  assert.is(
    progressLine(
      {
        decided: 0,
        total: 0,
        perSecond: NaN,
        programmed: 0,
        accepted: 0,
        hostsReached: 0,
        hostsUsed: 0,
      },
      100,
    ),
    '[..............................] 0/0 intents  0/s  programmed 0/0  hosts reached 0/0',
  );
});

line.run();
