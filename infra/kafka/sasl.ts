/**
 * Kafka credentials from configuration (DESIGN §9), never from code: SASL/PLAIN
 * users per cluster in `KAFKA_<ID>_SASL_USERNAME` and `KAFKA_<ID>_SASL_PASSWORD`
 * (or `KAFKA_<ID>_SASL_PASSWORD_FILE`). Every Kafka client of this code base takes
 * them from here by default, as NATS connections take NATS_NKEY_SEED_FILE.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../shared/index.js';

export interface KafkaSasl {
  username: string;
  password: string;
}

const prefix = (clusterId: string): string => `KAFKA_${clusterId.toUpperCase()}_SASL`;

/** The variables that carry a cluster's credentials (for a child process's environment). */
export function kafkaSaslVars(clusterId: string): { username: string; password: string } {
  return { username: `${prefix(clusterId)}_USERNAME`, password: `${prefix(clusterId)}_PASSWORD` };
}

/** The cluster's SASL/PLAIN user from the environment; undefined when none is set. */
export function kafkaSaslFromEnv(
  clusterId: string,
  env: NodeJS.ProcessEnv = process.env,
): KafkaSasl | undefined {
  const vars = kafkaSaslVars(clusterId);
  const username = env[vars.username];
  const passwordFile = env[`${vars.password}_FILE`];
  let password = env[vars.password];
  if (passwordFile) {
    try {
      password = readFileSync(passwordFile, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(
        `${vars.password}_FILE`,
        `cannot read ${passwordFile}: ${(err as Error).message}`,
      );
    }
  }
  if (username === undefined && password === undefined) return undefined;
  if (!username) throw new ConfigError(vars.username, `is not set, but ${vars.password} is`);
  if (!password) throw new ConfigError(vars.password, `is not set, but ${vars.username} is`);
  return { username, password };
}

/** The variable naming a cluster's CA file (TLS). */
export function kafkaCaVar(clusterId: string): string {
  return `KAFKA_${clusterId.toUpperCase()}_CA_FILE`;
}

/** TLS settings for a Kafka client: the CA the brokers' certificates are verified with. */
export interface KafkaTls {
  ca: string[];
}

/**
 * TLS to a cluster when `KAFKA_<ID>_CA_FILE` names its CA: the client then speaks
 * only TLS to its brokers and verifies their certificates and names. Undefined:
 * plain text.
 */
export function kafkaTlsFromEnv(
  clusterId: string,
  env: NodeJS.ProcessEnv = process.env,
): KafkaTls | undefined {
  const name = kafkaCaVar(clusterId);
  const file = env[name];
  if (!file) return undefined;
  try {
    return { ca: [readFileSync(file, 'utf8')] };
  } catch (err) {
    throw new ConfigError(name, `cannot read ${file}: ${(err as Error).message}`);
  }
}

/**
 * The file local provisioning writes (mode 0600, `ALCOR_KAFKA_CREDENTIALS`): every
 * role's user on every cluster, `{<clusterId>: {<role>: {username, password}}}`.
 * A harness gives a process its role's user from it (the process itself reads only
 * the `KAFKA_<ID>_SASL_*` variables).
 */
export type KafkaCredentialsFile = Record<string, Record<string, KafkaSasl>>;

/** The `KAFKA_<ID>_SASL_*` variables of `role` on every cluster of the credentials file. */
export function kafkaRoleEnv(
  role: string,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const file = env.ALCOR_KAFKA_CREDENTIALS;
  if (!file) return {};
  let all: KafkaCredentialsFile;
  try {
    all = JSON.parse(readFileSync(file, 'utf8')) as KafkaCredentialsFile;
  } catch (err) {
    throw new ConfigError(
      'ALCOR_KAFKA_CREDENTIALS',
      `cannot read ${file}: ${(err as Error).message}`,
    );
  }
  const out: Record<string, string> = {};
  for (const [clusterId, roles] of Object.entries(all)) {
    const user = roles[role];
    if (!user) continue;
    const vars = kafkaSaslVars(clusterId);
    out[vars.username] = user.username;
    out[vars.password] = user.password;
  }
  return out;
}
