import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  bucketOf,
  ConfigError,
  fnv1a32,
  goalStateMsgId,
  InvalidIdError,
  formatBucketSet,
  parseBucketSet,
  subjects,
} from '../../shared/index.js';
import { renderNatsConfig } from '../../infra/index.js';

const utf8 = new TextEncoder();
const Bucket = suite('vpc → bucket hash');

Bucket('is FNV-1a 32 (published test vectors)', () => {
  assert.is(fnv1a32(utf8.encode('')), 0x811c9dc5);
  assert.is(fnv1a32(utf8.encode('a')), 0xe40c292c);
  assert.is(fnv1a32(utf8.encode('foobar')), 0xbf9cf968);
});

Bucket('maps into [0, bucketCount) and is stable', () => {
  for (let i = 0; i < 1000; i++) {
    const b = bucketOf(`vpc-${i}`, 1024);
    assert.ok(b >= 0 && b < 1024);
    assert.is(bucketOf(`vpc-${i}`, 1024), b);
  }
  assert.is(bucketOf('foobar', 1024), 0xbf9cf968 % 1024);
});

Bucket(
  'spreads 100,000 ids over 1,024 buckets within 4 standard deviations (±40%) of the mean',
  () => {
    const counts = new Array<number>(1024).fill(0);
    for (let i = 0; i < 100_000; i++) counts[bucketOf(`vpc-${i}`)]! += 1;
    const mean = 100_000 / 1024;
    assert.ok(Math.max(...counts) < mean * 1.4, `max ${Math.max(...counts)}`);
    assert.ok(Math.min(...counts) > mean * 0.6, `min ${Math.min(...counts)}`);
  },
);

Bucket('rejects a bucket count that is not a positive integer', () => {
  assert.throws(() => bucketOf('v', 0), /positive integer/);
  assert.throws(() => bucketOf('v', 1.5), /positive integer/);
});

const Subjects = suite('subject builders');

Subjects('build the wire names of DESIGN §4', () => {
  const place = { region: 'r1', az: 'az1', dc: 'dc1', cluster: 'c1' };
  assert.is(subjects.intent('vpc-1'), 'intent.vpc-1');
  assert.is(subjects.intentMapped(7, 'vpc-1'), 'intent.7.vpc-1');
  assert.is(subjects.event('vpc-1'), 'evt.vpc-1');
  assert.is(subjects.goalStateHost(place, 'h1'), 'gs.r1.az1.dc1.c1.h1');
  assert.is(subjects.goalStateMulticast(place, 'vpc-1'), 'gsm.r1.az1.dc1.c1.vpc-1');
  assert.is(subjects.status('vpc-1'), 'status.vpc-1');
  assert.is(subjects.ack(3, 'vpc-1', 'h1'), 'gsack.3.vpc-1.h1');
  assert.is(subjects.resync('h1'), 'alcor.resync.h1');
  assert.is(goalStateMsgId('vpc-1', 17, 'h1'), 'vpc-1:17:h1');
});

Subjects('refuse a token that would widen or break a subject', () => {
  for (const bad of ['', 'a.b', '*', '>', 'a b', 'x'.repeat(65), 'é']) {
    try {
      subjects.event(bad);
      assert.unreachable(`accepted ${JSON.stringify(bad)}`);
    } catch (err) {
      assert.instance(err, InvalidIdError);
      assert.is((err as InvalidIdError).code, 'id_format');
      assert.is((err as InvalidIdError).field, 'vpcId');
    }
  }
  assert.throws(
    () => subjects.goalStateHost({ region: 'r.1', az: 'a', dc: 'd', cluster: 'c' }, 'h'),
    /region/,
  );
});

const Conf = suite('nats-server configuration');

Conf('maps intent.* with partition() over the configured bucket count', () => {
  const conf = renderNatsConfig({
    host: '0.0.0.0',
    port: 4222,
    monitorPort: 8222,
    storeDir: '/data/jetstream',
    serverName: 'alcor-nats',
    bucketCount: 1024,
  });
  assert.match(conf, '"intent.*": "intent.{{partition(1024,1)}}.{{wildcard(1)}}"');
});

const base = {
  host: '127.0.0.1',
  port: 1,
  monitorPort: 0,
  storeDir: '/d',
  serverName: 's',
  bucketCount: 8,
};

Conf('sets the JetStream fsync interval only when asked', () => {
  assert.not.match(renderNatsConfig(base), 'sync_interval');
  assert.not.match(renderNatsConfig(base), 'http_port');
  assert.match(renderNatsConfig({ ...base, syncInterval: 'always' }), 'sync_interval: "always"');
  assert.match(renderNatsConfig(base), 'intent.{{partition(8,1)}}.{{wildcard(1)}}');
});

Conf("limits JetStream's file storage only when asked (inside the jetstream block)", () => {
  assert.not.match(renderNatsConfig(base), 'max_file_store');
  assert.match(
    renderNatsConfig({ ...base, maxFileStore: 1024 }),
    /jetstream \{[^}]*\n {2}max_file_store: 1024\n/,
  );
});

Conf(
  'with auth the mapping moves into ALCOR; CLIENT and hosts import only what ALCOR exports',
  () => {
    const text = renderNatsConfig({
      ...base,
      authorization: { alcorFile: 'a.conf', clientFile: 'c.conf', hostsFile: 'h.conf' },
    });
    const alcor = text.slice(text.indexOf('ALCOR: {'), text.indexOf('CLIENT: {'));
    const client = text.slice(text.indexOf('CLIENT: {'), text.indexOf('HOSTS: {'));
    const hostsAccount = text.slice(text.indexOf('HOSTS: {'));
    assert.match(alcor, '"intent.*": "intent.{{partition(8,1)}}.{{wildcard(1)}}"');
    assert.match(alcor, 'include "a.conf"');
    assert.match(client, 'include "c.conf"');
    assert.match(hostsAccount, 'include "h.conf"');
    assert.match(hostsAccount, '{ stream: { account: ALCOR, subject: "gs.>" } }');
    assert.match(hostsAccount, '{ service: { account: ALCOR, subject: "gsack.>" } }');
    assert.match(hostsAccount, 'exports: [ { service: "alcor.nca.state.*" } ]');
    assert.match(
      alcor,
      'imports: [ { service: { account: HOSTS, subject: "alcor.nca.state.*" } } ]',
    );
    assert.not.match(client, 'mappings');
    // One mapping in all: none left in the global account.
    assert.is(text.split('mappings {').length, 2);
    for (const subject of [
      subjects.intentMappingSource,
      subjects.applyIntents,
      subjects.statusAll,
    ]) {
      assert.match(alcor, JSON.stringify(subject));
      assert.match(client, `account: ALCOR, subject: ${JSON.stringify(subject)}`);
    }
    assert.is((client.match(/account: ALCOR/g) ?? []).length, 3);
    assert.match(client, 'limits: { max_connections:');
    // What hosts reach: goal states as streams, acks and resync as services.
    for (const s of ['{ stream: "gs.>" }', '{ stream: "gsm.>" }', '{ service: "gsack.>" }'])
      assert.match(alcor, s);
    assert.match(alcor, '{ service: "alcor.resync.*", response_type: stream }');
    assert.match(text, 'max_pending: ');
  },
);

Conf('without auth there are no accounts', () => {
  const text = renderNatsConfig(base);
  assert.not.match(text, 'accounts');
  assert.match(text, 'mappings {');
});

Bucket('a bucket set is read from "all", numbers and ranges', () => {
  assert.is(parseBucketSet('all', 8).length, 8);
  assert.equal(parseBucketSet('0-3, 6,2', 8), [0, 1, 2, 3, 6]);
  assert.equal(parseBucketSet('1023', 1024), [1023]);
});

Bucket('a bucket set formats as ranges that read back to the same set', () => {
  assert.is(formatBucketSet([5, 0, 1, 2, 2, 7, 8]), '0-2,5,7-8');
  assert.is(formatBucketSet([]), '');
  const rnd = (() => {
    let x = 7;
    return () => ((x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0) / 2 ** 32;
  })();
  for (let i = 0; i < 200; i++) {
    const set = Array.from({ length: 1 + Math.floor(rnd() * 60) }, () => Math.floor(rnd() * 64));
    const want = [...new Set(set)].sort((a, b) => a - b);
    assert.equal(parseBucketSet(formatBucketSet(set), 64), want);
  }
});

Bucket('a bad bucket set is a ConfigError naming the field and the part', () => {
  for (const bad of ['', 'x', '3-1', '8', '0-8', '1,,2', '-1', '1.5']) {
    try {
      parseBucketSet(bad, 8, 'ALCOR_BUCKETS');
      assert.unreachable(`${bad} was accepted`);
    } catch (err) {
      assert.instance(err, ConfigError);
      assert.is((err as ConfigError).field, 'ALCOR_BUCKETS');
      assert.is((err as ConfigError).code, 'invalid_config');
    }
  }
});

Bucket.run();
Subjects.run();
Conf.run();
