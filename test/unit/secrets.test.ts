import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { redactEnvValue, runDir, writeEnvFile } from '../../infra/index.js';

const Secrets = suite('credentials never shown in clear (DESIGN §9)');

Secrets('passwords and URL passwords are masked; the rest is shown as it is', () => {
  assert.is(redactEnvValue('KAFKA_A_SASL_PASSWORD', 'hunter2hunter2'), '***');
  assert.is(redactEnvValue('KAFKA_A_SASL_USERNAME', 'southbound'), 'southbound');
  assert.is(
    redactEnvValue('REDIS_URL', 'redis://alcor:s3cret@127.0.0.1:6379'),
    'redis://alcor:***@127.0.0.1:6379',
  );
  assert.is(redactEnvValue('NATS_URL', 'nats://127.0.0.1:4222'), 'nats://127.0.0.1:4222');
  // A path to a secret is not the secret.
  assert.is(redactEnvValue('KAFKA_A_SASL_PASSWORD_FILE', '/run/pw'), '/run/pw');
  assert.is(redactEnvValue('NATS_NKEY_SEED_FILE', '/run/service.nk'), '/run/service.nk');
});

Secrets('the env file is readable by its owner only and sources back to the same values', () => {
  const file = join(runDir('alcor-secrets-'), 'alcor.env');
  writeEnvFile(file, { REDIS_URL: "redis://a:b'c@h:1", N: 'x y' });
  assert.is(statSync(file).mode & 0o777, 0o600);
  assert.is(readFileSync(file, 'utf8'), `REDIS_URL='redis://a:b'\\''c@h:1'\nN='x y'\n`);
});

Secrets.run();
