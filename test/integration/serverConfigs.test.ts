/**
 * `alcor redis-config`, `alcor kafka-config` and `alcor kafka-acls` for servers of
 * one's own (docs/deploy.md): a stock redis-server runs the ACL file written, and
 * the services' URL with REDIS_PASSWORD_FILE gets in while no password does not; a
 * broker started by the images' own script (deploy/docker/kafka-start.sh) from
 * the settings written takes the role users, and the southbound role can create
 * its topics only once `kafka-acls` has run (the nca role never); a second run
 * keeps the passwords. Bad input is refused naming the option.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kafka, logLevel } from 'kafkajs';
import {
  ManagedProcess,
  checkKafkaAccess,
  freePort,
  pingRedis,
  probeKafka,
  redisUrlFromEnv,
  repoRoot,
  runDir,
} from '../../infra/index.js';
import { ensureKafkaJars } from '../../infra/local/kafkaServer.js';
import { KAFKA_LOG4J2 } from '../../infra/kafka/brokerConfig.js';
import { which } from '../../infra/local/exec.js';
import { runCli } from '../support/cli.js';

const test = suite('server configurations of one’s own');

test('alcor redis-config: redis-server runs the ACL file; the services’ user gets in with its password file, nobody without', async () => {
  const dir = runDir('alcor-byo-redis-');
  const bad = await runCli(['redis-config', '--out', dir, '--username', 'two words']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--username two words/);
  const written = await runCli(['redis-config', '--out', dir]);
  assert.is(written.code, 0, written.stderr);
  const passwordFile = join(dir, 'alcor.password');
  const password = readFileSync(passwordFile, 'utf8');
  // Run again: the password is kept.
  assert.is((await runCli(['redis-config', '--out', dir])).code, 0);
  assert.is(readFileSync(passwordFile, 'utf8'), password);

  const port = await freePort();
  const server = new ManagedProcess({
    name: 'byo-redis',
    command: (await which('redis-server'))!,
    args: ['--aclfile', join(dir, 'users.acl'), '--port', String(port), '--save', ''],
    logFile: join(dir, 'redis.log'),
  });
  const url = `redis://alcor@127.0.0.1:${port}`;
  try {
    const withPassword = redisUrlFromEnv({ REDIS_URL: url, REDIS_PASSWORD_FILE: passwordFile })!;
    await server.waitUntilReady(() => pingRedis(withPassword, 1000).then(() => true), 20_000);
    assert.ok(await pingRedis(withPassword), 'the services’ user gets in');
    const refusal = (u: string): Promise<Error | undefined> =>
      pingRedis(u, 2000).then(
        () => undefined,
        (err: Error) => err,
      );
    assert.ok(await refusal(`redis://127.0.0.1:${port}`), 'no user: refused');
    const wrong = await refusal(`redis://alcor:wrong-password@127.0.0.1:${port}`);
    assert.match(String(wrong), /WRONGPASS/, 'a wrong password: refused');
  } finally {
    await server.stop();
  }
});

test('alcor kafka-config and kafka-acls: the broker takes the role users; southbound may create its topics only after kafka-acls, nca never', async () => {
  const dir = runDir('alcor-byo-kafka-');
  const [port, controllerPort] = [await freePort(), await freePort()];
  const conf = join(dir, 'conf');
  const args = [
    'kafka-config',
    '--cluster',
    'x',
    '--out',
    conf,
    '--listen',
    '127.0.0.1',
    '--advertise',
    `127.0.0.1:${port}`,
    '--port',
    String(port),
    '--controller-port',
    String(controllerPort),
    '--data-dir',
    join(dir, 'data'),
  ];
  for (const [bad, said] of [
    [['--cluster', 'X!'], /--cluster X!/],
    [['--advertise', 'nohostport'], /--advertise nohostport/],
    [['--port', String(controllerPort)], /--port and --controller-port must differ/],
  ] as const) {
    const out = await runCli([...args, ...bad]);
    assert.is(out.code, 2, `${bad.join(' ')} refused`);
    assert.match(out.stderr, said);
  }
  const written = await runCli(args);
  assert.is(written.code, 0, written.stderr);
  const pw = (role: string): string => readFileSync(join(conf, `${role}.password`), 'utf8').trim();
  const before = pw('southbound');
  assert.is((await runCli(args)).code, 0);
  assert.is(pw('southbound'), before, 'a second run keeps the passwords');

  const log4j = join(dir, 'log4j2.properties');
  writeFileSync(log4j, KAFKA_LOG4J2);
  const java = (await which('java'))!;
  const broker = new ManagedProcess({
    name: 'byo-kafka',
    command: join(repoRoot, 'deploy/docker/kafka-start.sh'),
    args: [join(conf, 'server.properties')],
    env: {
      ...process.env,
      PATH: `${dirname(java)}:${process.env.PATH ?? ''}`,
      KAFKA_HOME: dirname(await ensureKafkaJars()),
      KAFKA_LOG4J2: log4j,
    },
    logFile: join(dir, 'kafka.log'),
  });
  const brokers = [`127.0.0.1:${port}`];
  const as = (role: string) =>
    new Kafka({
      clientId: `byo-${role}`,
      brokers,
      sasl: { mechanism: 'plain', username: role, password: pw(role) },
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING,
    }).admin();
  const createTopic = async (role: string, topic: string): Promise<true | string> => {
    const admin = as(role);
    try {
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
      return true;
    } catch (err) {
      return (err as Error).message;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  };
  try {
    await broker.waitUntilReady(
      () =>
        probeKafka('x', brokers, 2000, { username: 'admin', password: pw('admin') }).then(
          () => true,
        ),
      90_000,
      250,
    );
    // A user the broker does not know: refused at once.
    const stranger = await probeKafka('x', brokers, 3000, {
      username: 'nca',
      password: 'not-the-password',
    }).then(
      () => undefined,
      (err: Error) => err,
    );
    assert.ok(stranger, 'a wrong password is refused');
    // No ACLs yet: nothing is allowed to the roles.
    assert.type(await createTopic('southbound', 'alcor.gs.byo.before'), 'string');
    // What a southbound module asks at start says so, naming the variable and the fix.
    const access = async (admin: ReturnType<typeof as>) => {
      const verdict = await checkKafkaAccess('x', admin);
      await admin.disconnect().catch(() => undefined);
      return verdict;
    };
    const before = await access(as('southbound'));
    assert.ok(!before.ok && !before.unreachable, JSON.stringify(before));
    if (!before.ok && !before.unreachable) {
      assert.is(before.error.field, 'KAFKA_X_SASL_USERNAME');
      assert.match(before.error.message, /alcor kafka-acls --cluster x/);
    }

    const noAdmin = await runCli(['kafka-acls', '--cluster', 'x', '--brokers', brokers[0]!]);
    assert.is(noAdmin.code, 2);
    assert.match(noAdmin.stderr, /KAFKA_X_SASL_USERNAME/);
    const badBrokers = await runCli(['kafka-acls', '--cluster', 'x', '--brokers', 'nohost']);
    assert.is(badBrokers.code, 2);
    assert.match(badBrokers.stderr, /--brokers nohost/);

    const acls = await runCli(['kafka-acls', '--cluster', 'x', '--brokers', brokers[0]!], {
      KAFKA_X_SASL_USERNAME: 'admin',
      KAFKA_X_SASL_PASSWORD_FILE: join(conf, 'admin.password'),
    });
    assert.is(acls.code, 0, acls.stderr);
    assert.match(acls.stdout, /ACLs written for southbound, nca/);
    assert.is(await createTopic('southbound', 'alcor.gs.byo.after'), true);
    assert.equal(await access(as('southbound')), { ok: true }, 'with its ACLs: nothing to say');
    const nca = await access(as('nca'));
    assert.ok(!nca.ok && !nca.unreachable, 'the nca user may not create goal-state topics');
    const wrong = await access(
      new Kafka({
        clientId: 'byo-wrong',
        brokers,
        sasl: { mechanism: 'plain', username: 'southbound', password: 'not-the-password' },
        retry: { retries: 0 },
        logLevel: logLevel.NOTHING,
      }).admin(),
    );
    assert.ok(!wrong.ok && !wrong.unreachable, JSON.stringify(wrong));
    if (!wrong.ok && !wrong.unreachable) assert.is(wrong.error.field, 'KAFKA_X_SASL_PASSWORD');
    // Nobody there: not judged (the binding waits for it).
    const nobody = await access(
      new Kafka({
        clientId: 'byo-nobody',
        brokers: [`127.0.0.1:${await freePort()}`],
        connectionTimeout: 500,
        retry: { retries: 0 },
        logLevel: logLevel.NOTHING,
      }).admin(),
    );
    assert.ok(!nobody.ok && nobody.unreachable);
    assert.type(await createTopic('southbound', 'other.topic'), 'string');
    assert.type(await createTopic('nca', 'alcor.gs.byo.nca'), 'string');
  } finally {
    await broker.stop();
  }
});

test('alcor tls-config makes a CA and a certificate for the names given (kept on a rerun); the TLS options go in pairs', async () => {
  const dir = runDir('alcor-byo-tls-');
  const bad = await runCli(['tls-config', '--out', dir, '--names', 'ok.example,not a name']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--names/);
  const made = await runCli(['tls-config', '--out', dir, '--names', 'nats.example,127.0.0.1']);
  assert.is(made.code, 0, made.stderr);
  const cert = readFileSync(join(dir, 'server.crt'), 'utf8');
  const text = new X509Certificate(cert);
  assert.match(text.subjectAltName ?? '', /DNS:nats\.example/);
  assert.match(text.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  assert.ok(text.verify(new X509Certificate(readFileSync(join(dir, 'ca.crt'))).publicKey));
  assert.is((await runCli(['tls-config', '--out', dir, '--names', 'nats.example'])).code, 0);
  assert.is(readFileSync(join(dir, 'server.crt'), 'utf8'), cert, 'kept');
  const natsHalf = await runCli(['nats-config', '--out', join(dir, 'n'), '--tls-cert', 'x.crt']);
  assert.is(natsHalf.code, 2);
  assert.match(natsHalf.stderr, /--tls-cert and --tls-key go together/);
  const kafkaHalf = await runCli([
    'kafka-config', '--cluster', 'x', '--out', join(dir, 'k'), '--advertise', 'h:9092',
    '--tls-ca', join(dir, 'ca.crt'),
  ]); // prettier-ignore
  assert.is(kafkaHalf.code, 2);
  assert.match(kafkaHalf.stderr, /--tls-key-and-cert and --tls-ca go together/);
});

test.run();
