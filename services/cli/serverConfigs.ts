/**
 * `alcor kafka-config`, `alcor kafka-acls` and `alcor redis-config`: the settings
 * and users a Kafka cluster and a Redis server of one's own need (docs/deploy.md),
 * from the same renderers the local provisioning runs. Passwords go to files only
 * their owner reads, one per user, and are kept when the command runs again.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  KAFKA_ROLES,
  writeKafkaAclsAs,
  kafkaSaslFromEnv,
  kafkaSaslVars,
  kafkaTlsFromEnv,
  makeTlsFiles,
  probeKafka,
  type TlsFiles,
  type KafkaRole,
  type KafkaSasl,
} from '../../infra/index.js';
import { renderKafkaBrokerConfig } from '../../infra/kafka/brokerConfig.js';
import { renderRedisAcl } from '../../infra/local/redisServer.js';
import { CliError, EXIT } from './output.js';

/** A password file's content, made once: an existing file is read, not replaced. */
function passwordFile(file: string): string {
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (!/^[A-Za-z0-9_-]{8,128}$/.test(kept))
      throw new CliError(
        `${file} does not hold a password of 8 to 128 [A-Za-z0-9_-]: remove it to make a new one`,
        EXIT.usage,
      );
    return kept;
  }
  const made = randomBytes(18).toString('base64url');
  writeFileSync(file, `${made}\n`, { mode: 0o600 });
  return made;
}

export interface KafkaConfigOptions {
  cluster: string;
  out: string;
  /** host:port clients reach the broker at. */
  advertise: string;
  listen: string;
  port: number;
  controllerPort: number;
  dataDir: string;
  sasl: boolean;
  messageMaxBytes?: number;
  /** TLS on the listeners: the broker's key and certificate in one PEM file, and its CA. */
  tlsKeyAndCert?: string;
  tlsCa?: string;
}

export interface KafkaConfigReport {
  cluster: string;
  config: string;
  sasl: boolean;
  /** Per role: the variables its processes take (the password as a file). */
  roles: Record<string, Record<string, string>>;
}

const CLUSTER_ID = /^[a-z0-9]{1,16}$/;
const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$/;

export function writeKafkaConfig(o: KafkaConfigOptions): KafkaConfigReport {
  if (!CLUSTER_ID.test(o.cluster))
    throw new CliError(`--cluster ${o.cluster}: must match ${CLUSTER_ID.source}`, EXIT.usage);
  if (!HOST_PORT.test(o.advertise))
    throw new CliError(
      `--advertise ${o.advertise}: host:port clients reach the broker at`,
      EXIT.usage,
    );
  if (o.port === o.controllerPort)
    throw new CliError('--port and --controller-port must differ', EXIT.usage);
  if ((o.tlsKeyAndCert === undefined) !== (o.tlsCa === undefined))
    throw new CliError('--tls-key-and-cert and --tls-ca go together', EXIT.usage);
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const roles: KafkaConfigReport['roles'] = {};
  let users: Record<KafkaRole, KafkaSasl> | undefined;
  let broker: KafkaSasl | undefined;
  if (o.sasl) {
    users = Object.fromEntries(
      KAFKA_ROLES.map((role) => [
        role,
        { username: role, password: passwordFile(join(out, `${role}.password`)) },
      ]),
    ) as Record<KafkaRole, KafkaSasl>;
    broker = { username: 'broker', password: passwordFile(join(out, 'broker.password')) };
    const vars = kafkaSaslVars(o.cluster);
    for (const role of KAFKA_ROLES)
      roles[role] = {
        [vars.username]: role,
        [`${vars.password}_FILE`]: join(out, `${role}.password`),
      };
  }
  const config = join(out, 'server.properties');
  // It holds every password: readable by its owner only.
  writeFileSync(
    config,
    renderKafkaBrokerConfig({
      listenHost: o.listen,
      advertised: o.advertise,
      port: o.port,
      controllerPort: o.controllerPort,
      dataDir: o.dataDir,
      ...(users && broker ? { users, broker } : {}),
      ...(o.tlsKeyAndCert && o.tlsCa
        ? { tls: { keyAndCertFile: o.tlsKeyAndCert, caFile: o.tlsCa } }
        : {}),
      ...(o.messageMaxBytes ? { extra: { 'message.max.bytes': String(o.messageMaxBytes) } } : {}),
    }),
    { mode: 0o600 },
  );
  return { cluster: o.cluster, config, sasl: o.sasl, roles };
}

export function renderKafkaConfigReport(r: KafkaConfigReport): string {
  const lines = [
    `wrote ${r.config} (kafka cluster ${r.cluster}): format its storage once, then run the broker with it`,
  ];
  if (!r.sasl)
    lines.push('PLAINTEXT, no users or ACLs: anyone who reaches the port may (--no-sasl)');
  else {
    lines.push('the processes of each role take these variables:');
    for (const [role, vars] of Object.entries(r.roles))
      lines.push(
        `  ${role.padEnd(10)} ${Object.entries(vars)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
      );
    lines.push(
      `once the broker answers: alcor kafka-acls --cluster ${r.cluster} --brokers <host:port> with the admin's variables`,
    );
  }
  return lines.join('\n');
}

export interface KafkaAclsReport {
  cluster: string;
  brokers: string[];
  roles: string[];
}

/**
 * Writes the roles' ACLs (infra/kafka/acls.ts) into a cluster as its admin (the
 * `KAFKA_<ID>_SASL_*` variables), waiting up to `waitMs` for the broker to answer.
 */
export async function writeKafkaAcls(
  cluster: string,
  brokers: string[],
  waitMs: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<KafkaAclsReport> {
  if (!CLUSTER_ID.test(cluster))
    throw new CliError(`--cluster ${cluster}: must match ${CLUSTER_ID.source}`, EXIT.usage);
  const bad = brokers.find((b) => !HOST_PORT.test(b));
  if (bad !== undefined) throw new CliError(`--brokers ${bad}: host:port`, EXIT.usage);
  const admin = kafkaSaslFromEnv(cluster, env);
  if (!admin) {
    const vars = kafkaSaslVars(cluster);
    throw new CliError(
      `no admin user: set ${vars.username} and ${vars.password}_FILE (alcor kafka-config wrote admin.password)`,
      EXIT.usage,
    );
  }
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await probeKafka(cluster, brokers, 3000, admin, kafkaTlsFromEnv(cluster, env) ?? null);
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new CliError((err as Error).message);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  await writeKafkaAclsAs(brokers, admin, kafkaTlsFromEnv(cluster, env), 'alcor-cli');
  return { cluster, brokers, roles: KAFKA_ROLES.filter((r) => r !== 'admin') };
}

export function renderKafkaAclsReport(r: KafkaAclsReport): string {
  return `kafka cluster ${r.cluster} (${r.brokers.join(',')}): ACLs written for ${r.roles.join(', ')}`;
}

export interface RedisConfigReport {
  aclFile: string;
  username: string;
  passwordFile: string;
}

export function writeRedisConfig(out: string, username: string): RedisConfigReport {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(username))
    throw new CliError(`--username ${username}: 1 to 64 of [A-Za-z0-9_-]`, EXIT.usage);
  const dir = resolve(out);
  mkdirSync(dir, { recursive: true });
  const passwordPath = join(dir, `${username}.password`);
  const password = passwordFile(passwordPath);
  const aclFile = join(dir, 'users.acl');
  writeFileSync(aclFile, renderRedisAcl({ username, password }), { mode: 0o600 });
  return { aclFile, username, passwordFile: passwordPath };
}

export function renderRedisConfigReport(r: RedisConfigReport): string {
  return [
    `wrote ${r.aclFile}: run redis-server --aclfile ${r.aclFile}`,
    `the services take REDIS_URL=redis://${r.username}@<host>:6379 and REDIS_PASSWORD_FILE=${r.passwordFile}`,
  ].join('\n');
}

export async function writeTlsConfig(out: string, names: string[]): Promise<TlsFiles> {
  if (names.length === 0 || names.some((n) => !/^[A-Za-z0-9.-]{1,253}$/.test(n)))
    throw new CliError(
      `--names ${names.join(',')}: DNS names or IPv4 addresses, separated by commas`,
      EXIT.usage,
    );
  return makeTlsFiles(resolve(out), names);
}

export function renderTlsConfigReport(r: TlsFiles): string {
  return [
    `CA: ${r.caFile} (clients verify the servers with it: NATS_CA_FILE, REDIS_CA_FILE, KAFKA_<ID>_CA_FILE)`,
    `server: ${r.certFile} and ${r.keyFile}; both in one file (Kafka): ${r.keyAndCertFile}`,
    'an existing CA and certificate in that directory are kept',
  ].join('\n');
}
