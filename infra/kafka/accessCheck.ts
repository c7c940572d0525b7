/**
 * What a southbound module needs of each Kafka cluster, asked at start: its user
 * gets in, may create goal-state topics (a CreateTopics that only validates: the
 * broker checks the ACL and creates nothing) and may read the brokers'
 * message.max.bytes. A definite refusal is a ConfigError naming the variable and
 * the fix; a cluster that does not answer is not judged here (the binding waits
 * for it and /readyz says so).
 */
import type { Admin } from 'kafkajs';
import { ConfigError } from '../../shared/index.js';
import { GOAL_STATE_TOPIC_PREFIX } from './acls.js';
import { kafkaSaslVars } from './sasl.js';

/** The probe topic's name: under the goal-state prefix, never created. */
export const ACCESS_PROBE_TOPIC = `${GOAL_STATE_TOPIC_PREFIX}alcor-access-probe`;

type KafkaError = Error & {
  type?: string;
  name: string;
  errors?: KafkaError[];
};

/** The broker's error codes in an error and its nested ones (kafkajs aggregates). */
function types(err: KafkaError): string[] {
  return [err.type ?? err.name, ...(err.errors ?? []).flatMap(types)];
}

export type AccessVerdict =
  | { ok: true }
  | { ok: false; unreachable: true; message: string }
  | { ok: false; unreachable: false; error: ConfigError };

export async function checkKafkaAccess(clusterId: string, admin: Admin): Promise<AccessVerdict> {
  const vars = kafkaSaslVars(clusterId);
  const fix = `alcor kafka-acls --cluster ${clusterId} (docs/deploy.md)`;
  try {
    await admin.connect();
  } catch (err) {
    const e = err as KafkaError;
    if (types(e).some((t) => /SASL|AUTHENTICATION/i.test(t)))
      return {
        ok: false,
        unreachable: false,
        error: new ConfigError(
          vars.password,
          `kafka cluster ${clusterId} refuses the user of ${vars.username}: ${e.message}`,
        ),
      };
    return { ok: false, unreachable: true, message: e.message };
  }
  try {
    await admin.createTopics({
      validateOnly: true,
      waitForLeaders: false,
      topics: [{ topic: ACCESS_PROBE_TOPIC, numPartitions: 1 }],
    });
  } catch (err) {
    const found = types(err as KafkaError);
    if (found.includes('TOPIC_AUTHORIZATION_FAILED'))
      return {
        ok: false,
        unreachable: false,
        error: new ConfigError(
          vars.username,
          `kafka cluster ${clusterId}: this user may not create topics ${GOAL_STATE_TOPIC_PREFIX}* (CREATE, ALTER, DESCRIBE and WRITE on that prefix): ${fix}`,
        ),
      };
    if (!found.includes('TOPIC_ALREADY_EXISTS'))
      return { ok: false, unreachable: true, message: (err as Error).message };
  }
  try {
    const { brokers } = await admin.describeCluster();
    await admin.describeConfigs({
      includeSynonyms: false,
      resources: brokers.map((b) => ({
        type: 4, // BROKER
        name: String(b.nodeId),
        configNames: ['message.max.bytes'],
      })),
    });
  } catch (err) {
    if (types(err as KafkaError).includes('CLUSTER_AUTHORIZATION_FAILED'))
      return {
        ok: false,
        unreachable: false,
        error: new ConfigError(
          vars.username,
          `kafka cluster ${clusterId}: this user may not read the brokers' message.max.bytes (DESCRIBE_CONFIGS on the cluster): ${fix}`,
        ),
      };
    return { ok: false, unreachable: true, message: (err as Error).message };
  }
  return { ok: true };
}
