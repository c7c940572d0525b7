import * as assert from 'uvu/assert';
import {
  isSkipped,
  type EventCommit,
  type EventLog,
  type LogEntry,
  type RecordedCommit,
} from '../../shared/index.js';
import { createJetStreamEventLog } from '../../infra/index.js';
import { natsSuite, unique } from '../support/index.js';

const Log = natsSuite<{ log: EventLog }>('EventLog on JetStream (stream EVENTS)');

Log.before(async (ctx) => {
  ctx.log = await createJetStreamEventLog(ctx.nc);
});

const commit = (vpcId: string, intentId: string, cursor: number): EventCommit => ({
  intentId,
  kind: 'route.delete',
  vpcId,
  cursor,
  at: '2026-11-24T12:00:00.000Z',
  events: [{ type: 'IntentRejected', code: 'route_not_found', message: 'no route' }],
});

async function all(iter: AsyncIterable<LogEntry<EventCommit>>): Promise<RecordedCommit[]> {
  const out: RecordedCommit[] = [];
  for await (const r of iter) {
    if (isSkipped(r)) throw new Error(`skipped ${r.revision}: ${r.skipped.message}`);
    out.push(r);
  }
  return out;
}

Log('a VPC without events is at revision 0 and reads nothing', async ({ log }) => {
  const vpcId = unique('vpc');
  assert.is(await log.lastRevision(vpcId), 0);
  assert.equal(await all(log.read(vpcId, 0)), []);
});

Log('append at the expected revision; a stale expectation is a conflict', async ({ log }) => {
  const vpcId = unique('vpc');
  const first = await log.append(vpcId, [commit(vpcId, unique('i'), 1)], 0);
  assert.is(first.type, 'appended');
  const revision = first.type === 'appended' ? first.revision : -1;
  assert.is(await log.lastRevision(vpcId), revision);
  assert.equal(await log.append(vpcId, [commit(vpcId, unique('i'), 2)], 0), { type: 'conflict' });
  const second = await log.append(vpcId, [commit(vpcId, unique('i'), 2)], revision);
  assert.is(second.type, 'appended');
});

Log(
  'a re-sent intent id at the current revision is a duplicate returning the first revision',
  async ({ log }) => {
    const vpcId = unique('vpc');
    const id = unique('i');
    const first = await log.append(vpcId, [commit(vpcId, id, 1)], 0);
    const revision = first.type === 'appended' ? first.revision : -1;
    assert.equal(await log.append(vpcId, [commit(vpcId, id, 1)], revision), {
      type: 'duplicate',
      revision,
    });
    // nats-server checks the expected sequence before deduplicating: a re-send with a
    // stale expectation is a conflict, after which the runner reloads and the decider
    // finds the intent id already decided. Either way nothing is appended twice.
    assert.equal(await log.append(vpcId, [commit(vpcId, id, 1)], 0), { type: 'conflict' });
    assert.is((await all(log.read(vpcId, 0))).length, 1);
  },
);

Log('the same intent id in two VPCs is appended to each', async ({ log }) => {
  // Intent ids are unique per VPC; EVENTS deduplicates across all its subjects.
  const [a, b] = [unique('vpc'), unique('vpc')];
  const id = unique('i');
  const first = await log.append(a, [commit(a, id, 1)], 0);
  const second = await log.append(b, [commit(b, id, 2)], 0);
  assert.is(first.type, 'appended');
  assert.is(second.type, 'appended');
  assert.equal(
    (await all(log.read(b, 0))).map((r) => [r.commit.vpcId, r.commit.intentId]),
    [[b, id]],
  );
});

Log('of two writers racing from the same revision exactly one appends', async ({ log }) => {
  const vpcId = unique('vpc');
  for (let round = 0; round < 20; round++) {
    const at = await log.lastRevision(vpcId);
    const results = await Promise.all([
      log.append(vpcId, [commit(vpcId, unique('a'), round * 2 + 1)], at),
      log.append(vpcId, [commit(vpcId, unique('b'), round * 2 + 2)], at),
    ]);
    assert.equal(results.map((r) => r.type).sort(), ['appended', 'conflict']);
  }
  assert.is((await all(log.read(vpcId, 0))).length, 20);
});

Log(
  'read returns the VPC’s commits in order, from any revision, and only its own',
  async ({ log }) => {
    const vpcId = unique('vpc');
    const other = unique('vpc');
    let at = 0;
    const revisions: number[] = [];
    for (let i = 1; i <= 2500; i++) {
      const r = await log.append(vpcId, [commit(vpcId, `i-${vpcId}-${i}`, i)], at);
      if (r.type !== 'appended') throw new Error(r.type);
      at = r.revision;
      revisions.push(r.revision);
      if (i % 500 === 0)
        await log.append(other, [commit(other, unique('o'), i)], await log.lastRevision(other));
    }
    const read = await all(log.read(vpcId, 0));
    assert.equal(
      read.map((r) => r.revision),
      revisions,
    );
    assert.equal(
      read.map((r) => r.commit.cursor),
      revisions.map((_, i) => i + 1),
    );
    const tail = await all(log.read(vpcId, revisions[1999]!));
    assert.equal(
      tail.map((r) => r.revision),
      revisions.slice(2000),
    );
    assert.equal(await all(log.read(vpcId, revisions[2499]!)), []);
  },
);

Log.run();
