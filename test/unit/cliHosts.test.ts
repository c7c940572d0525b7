/** `alcor hosts`: a host's standing in a VPC from the revision it must be at and the acks kept. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { age, syncOf, type AckSeen } from '../../services/cli/hosts.js';
import { snakeKeys } from '../../services/cli/output.js';

const HOUR = 3_600_000;
const now = Date.parse('2026-12-06T12:00:00Z');
const at = (msAgo: number) => new Date(now - msAgo);
const ack = (revision: number, msAgo: number, status: AckSeen['status'] = 'applied'): AckSeen => ({
  revision,
  status,
  at: at(msAgo),
});

test('acked the latest revision or a later one: SYNCED, no lag', () => {
  assert.equal(syncOf({ revision: 40, at: at(5000) }, { applied: ack(40, 4000) }, now, HOUR), {
    state: 'SYNCED',
    lagMs: 0,
  });
  // A full state at a later revision covers the earlier ones.
  assert.is(
    syncOf({ revision: 40, at: at(5000) }, { applied: ack(52, 10) }, now, HOUR).state,
    'SYNCED',
  );
});

test('behind: STALE with the age of the revision it misses', () => {
  assert.equal(syncOf({ revision: 40, at: at(7000) }, { applied: ack(31, 9000) }, now, HOUR), {
    state: 'STALE',
    lagMs: 7000,
  });
  assert.is(syncOf({ revision: 40, at: at(7000) }, {}, now, HOUR).state, 'STALE', 'no ack yet');
});

test('a failed ack at or past the latest: FAILED with its reason; an older failure is not', () => {
  const failed = { ...ack(40, 100, 'failed'), error: 'apply_failed: no route' };
  assert.equal(
    syncOf({ revision: 40, at: at(500) }, { applied: ack(31, 900), failed }, now, HOUR),
    {
      state: 'FAILED',
      lagMs: 500,
      error: 'apply_failed: no route',
    },
  );
  const older = ack(30, 900, 'failed');
  assert.is(syncOf({ revision: 40, at: at(500) }, { failed: older }, now, HOUR).state, 'STALE');
  // Failed, then applied later: the later applied ack stands.
  assert.is(
    syncOf(
      { revision: 40, at: at(500) },
      { failed: ack(40, 400, 'failed'), applied: ack(41, 100) },
      now,
      HOUR,
    ).state,
    'SYNCED',
  );
});

test('no ack kept for a revision older than ACKS keeps acks: UNKNOWN, not STALE', () => {
  assert.is(syncOf({ revision: 40, at: at(2 * HOUR) }, {}, now, HOUR).state, 'UNKNOWN');
  assert.is(syncOf({ revision: 40, at: at(HOUR - 1) }, {}, now, HOUR).state, 'STALE');
});

test('ages read at a glance', () => {
  assert.equal([age(250), age(12_400), age(180_000), age(3 * HOUR)], ['250ms', '12s', '3m', '3h']);
});

test('JSON keys become snake_case at every depth; values, dates and arrays keep their content', () => {
  assert.equal(
    snakeKeys({
      hostId: 'hA',
      lastAckAt: new Date(now),
      vpcs: [{ vpcId: 'vX', lagMs: 1 }],
      skip: undefined,
    }),
    { host_id: 'hA', last_ack_at: '2026-12-06T12:00:00.000Z', vpcs: [{ vpc_id: 'vX', lag_ms: 1 }] },
  );
});

test.run();
