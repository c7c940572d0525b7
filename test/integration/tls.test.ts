/**
 * TLS on the run's servers (local provisioning makes a CA and a certificate for
 * 127.0.0.1 unless ALCOR_TLS=off): each server takes a client that verifies it
 * with the run's CA (the positive control), refuses plain text, and a client that
 * trusts other CAs refuses the server.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kafka, logLevel } from 'kafkajs';
import {
  connectNats,
  kafkaCaVar,
  kafkaRoleEnv,
  kafkaSaslFromEnv,
  kafkaTlsFromEnv,
  pingRedis,
  probeKafka,
} from '../../infra/index.js';
import { testServers } from '../support/servers.js';

const test = suite('TLS on the servers');
const OTHER_CA = '/etc/ssl/certs/ca-certificates.crt';
const tlsOff = process.env.ALCOR_TLS === 'off';

/** What a promise came to: 'ok' or its error's message. */
const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (err: Error) => err.message,
  );

test('NATS: the run CA is trusted; plain text and other CAs are refused', async () => {
  const { natsUrl } = await testServers();
  if (tlsOff) return;
  assert.match(natsUrl, /^tls:\/\//, 'the run provisions NATS with TLS');
  const ok = await connectNats(natsUrl, { name: 'tls-ok', reconnect: false });
  await ok.flush();
  await ok.close();
  assert.match(
    await outcome(
      connectNats(natsUrl, { name: 'tls-other-ca', reconnect: false, caFile: OTHER_CA }),
    ),
    /certificate/i,
  );
  // Plain text, byte by byte: the server says TLS is required and takes no CONNECT.
  const port = Number(new URL(natsUrl.split(',')[0]!.replace('tls:', 'http:')).port);
  const said = await new Promise<string>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    socket.on('data', (d) => {
      text += d.toString();
      if (text.includes('\r\n') && !text.includes('PING sent')) {
        socket.write('CONNECT {"verbose":false}\r\nPING\r\n');
        text += 'PING sent';
      }
    });
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
    setTimeout(() => socket.destroy(), 3000);
  });
  assert.match(said, /"tls_required":true/);
  assert.not.match(said, /PONG/, 'no answer in plain text');
});

test('Redis: only TLS, verified with the run CA', async () => {
  const { redisUrl } = await testServers();
  if (tlsOff) return;
  assert.match(redisUrl, /^rediss:\/\//, 'the run provisions Redis with TLS');
  assert.is(await outcome(pingRedis(redisUrl)), 'ok');
  assert.not.equal(await outcome(pingRedis(redisUrl.replace('rediss:', 'redis:'), 2000)), 'ok');
  assert.match(await outcome(pingRedis(redisUrl, 2000, OTHER_CA)), /certificate/i);
});

test('Kafka: SASL over TLS with the run CA; plain text and other CAs are refused', async () => {
  const { kafka } = await testServers();
  if (tlsOff) return;
  for (const [id, brokers] of Object.entries(kafka)) {
    const ssl = kafkaTlsFromEnv(id);
    assert.ok(ssl, `${kafkaCaVar(id)} is set for the run's cluster ${id}`);
    // The cluster's admin from the run's credentials file (another suite in this
    // process may have pointed the KAFKA_<ID>_SASL_* variables elsewhere).
    const sasl = kafkaSaslFromEnv(id, { ...process.env, ...kafkaRoleEnv('admin') }) ?? null;
    assert.is(await outcome(probeKafka(id, brokers, 5000, sasl, ssl)), 'ok');
    assert.not.equal(await outcome(probeKafka(id, brokers, 3000, sasl, null)), 'ok');
    const other = new Kafka({
      clientId: 'tls-other-ca',
      brokers,
      ssl: { ca: [readFileSync(OTHER_CA, 'utf8')] },
      ...(sasl ? { sasl: { mechanism: 'plain' as const, ...sasl } } : {}),
      connectionTimeout: 3000,
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING,
    }).admin();
    const refused = await outcome(other.connect().then(() => other.listTopics()));
    await other.disconnect().catch(() => undefined);
    assert.not.equal(refused, 'ok', 'a client trusting other CAs refuses the broker');
  }
});

test.run();
