import * as assert from 'uvu/assert';
import { jetstream, JetStreamApiError, StorageType } from '@nats-io/jetstream';
import {
  bucketOf,
  ConfigMismatchError,
  subjects,
  streams,
  DEFAULT_BUCKET_COUNT,
} from '../../shared/index.js';
import { ensureLayout, ensureStream, streamSpecs, DEFAULT_LAYOUT } from '../../infra/index.js';
import { eventually, natsSuite, unique } from '../support/index.js';

const Nats = natsSuite('nats-server with JetStream');

Nats('the server is a current release with JetStream enabled', async ({ nc, jsm }) => {
  const version = nc.info?.version ?? '';
  const [major, minor] = version.split('.').map(Number);
  assert.ok((major ?? 0) > 2 || ((major ?? 0) === 2 && (minor ?? 0) >= 9), `version ${version}`);
  const account = await jsm.getAccountInfo();
  assert.type(account.streams, 'number');
});

Nats('a re-published Nats-Msg-Id is dropped as a duplicate', async ({ nc, jsm }) => {
  const name = unique('DEDUP');
  await jsm.streams.add({ name, subjects: [`${name}.>`], storage: StorageType.Memory });
  const js = jetstream(nc);
  const first = await js.publish(`${name}.a`, 'one', { msgID: 'intent-1' });
  const again = await js.publish(`${name}.a`, 'one', { msgID: 'intent-1' });
  const other = await js.publish(`${name}.a`, 'two', { msgID: 'intent-2' });
  assert.equal([first.seq, first.duplicate], [1, false]);
  assert.equal([again.seq, again.duplicate], [1, true]);
  assert.equal([other.seq, other.duplicate], [2, false]);
  assert.is((await jsm.streams.info(name)).state.messages, 2);
  await jsm.streams.delete(name);
});

Nats('compare-and-set on the last subject sequence admits one writer', async ({ nc, jsm }) => {
  const name = unique('CAS');
  await jsm.streams.add({ name, subjects: [`${name}.*`], storage: StorageType.Memory });
  const js = jetstream(nc);
  const subject = `${name}.vpc`;
  const a = await js.publish(subject, 'e1', { expect: { lastSubjectSequence: 0 } });
  await js.publish(`${name}.other`, 'x');
  const b = await js.publish(subject, 'e2', { expect: { lastSubjectSequence: a.seq } });
  assert.is(b.seq, 3);
  try {
    await js.publish(subject, 'stale', { expect: { lastSubjectSequence: a.seq } });
    assert.unreachable('a stale expected sequence must be refused');
  } catch (err) {
    assert.instance(err, JetStreamApiError);
    assert.is((err as JetStreamApiError).code, 10071);
  }
  assert.is((await jsm.streams.info(name)).state.messages, 3);
  await jsm.streams.delete(name);
});

Nats(
  'the server maps intent.<vpc> to intent.<bucket>.<vpc> with the bucket the code computes',
  async ({ nc, jsm }) => {
    await ensureLayout(nc, jsm);
    const js = jetstream(nc);
    const vpcs = Array.from({ length: 64 }, () => unique('vpc'));
    for (const vpcId of vpcs) {
      const ack = await js.publish(subjects.intent(vpcId), JSON.stringify({ vpcId }));
      assert.is(ack.stream, streams.intents);
      const stored = await jsm.streams.getMessage(streams.intents, { seq: ack.seq });
      assert.is(
        stored?.subject,
        subjects.intentMapped(bucketOf(vpcId, DEFAULT_BUCKET_COUNT), vpcId),
        vpcId,
      );
    }
    // Core (non-JetStream) publishes are mapped the same way.
    const vpcId = unique('vpc');
    const sub = nc.subscribe(`intent.*.${vpcId}`, { max: 1 });
    const received = (async () => {
      for await (const m of sub) return m.subject;
      return undefined;
    })();
    nc.publish(subjects.intent(vpcId), 'core');
    const subject = await eventually(() => received, { what: 'the mapped core message' });
    assert.is(subject, `intent.${bucketOf(vpcId)}.${vpcId}`);
  },
);

Nats('declaring the layout twice is idempotent', async ({ nc, jsm }) => {
  const first = await ensureLayout(nc, jsm);
  const second = await ensureLayout(nc, jsm);
  assert.equal(
    second.streams.map((s) => s.config.name),
    first.streams.map((s) => s.config.name),
  );
  assert.equal(
    first.streams.map((s) => s.config.name).sort(),
    [
      streams.acks,
      streams.events,
      streams.goalStates,
      streams.intents,
      streams.relays,
      streams.status,
    ].sort(),
  );
});

Nats('a stream that exists with another configuration is reported, not used', async ({ jsm }) => {
  const name = unique('MISMATCH');
  const [template] = streamSpecs(DEFAULT_LAYOUT);
  const spec = { ...template!, name, subjects: [`${name}.*.*`] };
  await jsm.streams.add({ ...spec, max_age: 3_600_000_000_000 });
  try {
    await ensureStream(jsm, spec);
    assert.unreachable('a mismatching stream must be refused');
  } catch (err) {
    assert.instance(err, ConfigMismatchError);
    assert.is((err as ConfigMismatchError).code, 'config_mismatch');
    assert.match((err as Error).message, `stream ${name}`);
    assert.match((err as Error).message, 'max_age 3600000000000 ≠ declared 0');
  }
  await jsm.streams.delete(name);
});

Nats.run();
