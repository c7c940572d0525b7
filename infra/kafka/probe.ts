import { Kafka, logLevel } from 'kafkajs';
import { ServerUnavailableError } from '../../shared/index.js';
import { kafkaSaslFromEnv, kafkaTlsFromEnv, type KafkaSasl, type KafkaTls } from './sasl.js';

/** Lists topics through an admin client: the readiness check INFRA-NOTES recommends. */
export async function probeKafka(
  clusterId: string,
  brokers: string[],
  timeoutMs = 5000,
  /** The cluster's user; default: from the environment; `null`: none (PLAINTEXT). */
  sasl: KafkaSasl | null = kafkaSaslFromEnv(clusterId) ?? null,
  /** TLS; default: the cluster's CA from the environment; `null`: plain text. */
  ssl: KafkaTls | null = kafkaTlsFromEnv(clusterId) ?? null,
): Promise<void> {
  const kafka = new Kafka({
    clientId: 'alcor-probe',
    brokers,
    ...(ssl ? { ssl } : {}),
    ...(sasl ? { sasl: { mechanism: 'plain' as const, ...sasl } } : {}),
    connectionTimeout: Math.min(timeoutMs, 3000),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.listTopics();
  } catch (err) {
    throw new ServerUnavailableError(
      `kafka cluster ${clusterId}`,
      `cannot reach ${brokers.join(',')}: ${(err as Error).message}`,
      { cause: err },
    );
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
