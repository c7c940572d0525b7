/**
 * What a deployment is configured from: the Kafka broker settings (SASL or not),
 * REDIS_PASSWORD_FILE, and which process a command line is (CPU per role, from the
 * sources or the build).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../shared/index.js';
import { renderKafkaBrokerConfig } from '../../infra/kafka/brokerConfig.js';
import { redactUrl, redisUrlFromEnv } from '../../infra/redis/probe.js';
import { isRedisClusterUrl, parseRedisUrl } from '../../infra/redis/connect.js';
import { roleOf } from '../../infra/local/cpu.js';

const test = suite('deploy configuration');

const base = {
  listenHost: '0.0.0.0',
  advertised: 'kafka-a:9092',
  port: 9092,
  controllerPort: 9093,
  dataDir: '/var/lib/kafka/data',
};
const props = (text: string): Map<string, string> =>
  new Map(
    text
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

test('a broker without users is PLAINTEXT with no authorizer', () => {
  const p = props(renderKafkaBrokerConfig(base));
  assert.is(p.get('listeners'), 'PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093');
  assert.is(p.get('advertised.listeners'), 'PLAINTEXT://kafka-a:9092');
  assert.is(p.get('authorizer.class.name'), undefined);
  assert.is(p.get('auto.create.topics.enable'), 'false');
  // Small sparse index files: a partition per host (see the setting's comment).
  assert.is(p.get('log.index.size.max.bytes'), '262144');
});

test('one node: its own quorum, one copy of everything', () => {
  const p = props(renderKafkaBrokerConfig(base));
  assert.is(p.get('node.id'), '1');
  assert.is(p.get('controller.quorum.voters'), '1@127.0.0.1:9093');
  assert.is(p.get('default.replication.factor'), '1');
  assert.is(p.get('min.insync.replicas'), '1');
});

test('a node of three: the three voters, three copies, acks=all needs two', () => {
  const voters = '1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293';
  const p = props(renderKafkaBrokerConfig({ ...base, node: { id: 2, voters }, replicas: 3 }));
  assert.is(p.get('node.id'), '2');
  assert.is(p.get('controller.quorum.voters'), voters);
  for (const k of [
    'default.replication.factor',
    'offsets.topic.replication.factor',
    'transaction.state.log.replication.factor',
    'share.coordinator.state.topic.replication.factor',
  ])
    assert.is(p.get(k), '3', k);
  for (const k of [
    'min.insync.replicas',
    'transaction.state.log.min.isr',
    'share.coordinator.state.topic.min.isr',
  ])
    assert.is(p.get(k), '2', k);
});

test('with users: SASL on both listeners, the authorizer, nothing allowed without an ACL', () => {
  const user = (username: string) => ({ username, password: `${username}-secret-pw` });
  const p = props(
    renderKafkaBrokerConfig({
      ...base,
      users: { admin: user('admin'), southbound: user('southbound'), nca: user('nca') },
      broker: user('broker'),
      extra: { 'message.max.bytes': '65536' },
    }),
  );
  assert.is(
    p.get('listener.security.protocol.map'),
    'SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT',
  );
  assert.is(p.get('allow.everyone.if.no.acl.found'), 'false');
  assert.is(p.get('super.users'), 'User:broker;User:admin');
  assert.ok(
    p
      .get('listener.name.sasl_plaintext.plain.sasl.jaas.config')!
      .includes('user_nca="nca-secret-pw"'),
  );
  // The controller listener takes the broker's own user only.
  assert.not.ok(p.get('listener.name.controller.plain.sasl.jaas.config')!.includes('user_nca'));
  assert.is(p.get('message.max.bytes'), '65536');
});

test('a password that would break the JAAS line is refused', () => {
  const bad = { username: 'nca', password: 'has"quote"in' };
  const ok = { username: 'x', password: 'abcdefgh' };
  assert.throws(
    () =>
      renderKafkaBrokerConfig({
        ...base,
        users: { admin: ok, southbound: ok, nca: bad },
        broker: ok,
      }),
    /passwords 8 to 128/,
  );
});

test('REDIS_PASSWORD_FILE puts the password into REDIS_URL; a missing file names the variable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'alcor-unit-'));
  const file = join(dir, 'alcor.password');
  writeFileSync(file, 'p@ss word\n');
  assert.is(redisUrlFromEnv({ REDIS_URL: 'redis://h:6379' }), 'redis://h:6379');
  assert.is(redisUrlFromEnv({}), undefined);
  const url = new URL(
    redisUrlFromEnv({ REDIS_URL: 'redis://alcor@h:6379', REDIS_PASSWORD_FILE: file })!,
  );
  assert.is(url.username, 'alcor');
  assert.is(decodeURIComponent(url.password), 'p@ss word');
  try {
    redisUrlFromEnv({ REDIS_URL: 'redis://alcor@h:6379', REDIS_PASSWORD_FILE: join(dir, 'none') });
    assert.unreachable('a missing file must be an error');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.is((err as ConfigError).field, 'REDIS_PASSWORD_FILE');
  }
});

test('a Redis URL names one server or the seeds of a Redis Cluster; passwords never shown', () => {
  assert.equal(parseRedisUrl('redis://h:6379'), { tls: false, nodes: [{ host: 'h', port: 6379 }] });
  const cluster = 'rediss://alcor:s%40cret@127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002';
  assert.equal(parseRedisUrl(cluster), {
    tls: true,
    username: 'alcor',
    password: 's@cret',
    nodes: [7000, 7001, 7002].map((port) => ({ host: '127.0.0.1', port })),
  });
  assert.ok(isRedisClusterUrl(cluster));
  assert.not.ok(isRedisClusterUrl('redis://alcor:pw@h:6379'));
  assert.is(redactUrl(cluster), 'rediss://alcor:***@127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002');
  assert.is(redactUrl('redis://h:6379'), 'redis://h:6379');
  const dir = mkdtempSync(join(tmpdir(), 'alcor-unit-'));
  writeFileSync(join(dir, 'pw'), 'p@ss\n');
  assert.is(
    redisUrlFromEnv({ REDIS_URL: 'redis://alcor@a:1,b:2', REDIS_PASSWORD_FILE: join(dir, 'pw') }),
    'redis://alcor:p%40ss@a:1,b:2',
  );
  for (const bad of ['http://h:1', 'redis://h:1,h:x', 'redis://', 'redis://h:70000'])
    assert.throws(
      () => parseRedisUrl(bad),
      (e: unknown) => (e as ConfigError).field === 'REDIS_URL',
      bad,
    );
});

test('a service is recognised run from its sources or from the build', () => {
  assert.is(
    roleOf('node --import tsx /r/services/controller/main.ts --log-level warn'),
    'controller',
  );
  assert.is(roleOf('node /r/dist/services/southbound/main.js --metrics-port 1'), 'southbound');
  assert.is(roleOf('java -cp x kafka.Kafka /p/server.properties'), 'kafka');
  assert.is(roleOf('node /r/dist/services/cli/main.js'), undefined);
});

test.run();
