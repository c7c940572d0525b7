import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kafka, logLevel, type KafkaConfig, type KafkaMessage } from 'kafkajs';
import {
  kafkaSaslFromEnv,
  probeKafka,
  runDir,
  startLocalKafka,
  type KafkaSasl,
} from '../../infra/index.js';
import { testServers, unique, within } from '../support/index.js';

const KafkaSmoke = suite('kafka clusters (KRaft)');

/**
 * A raw kafkajs client of a cluster, with the cluster's credentials unless given
 * others (`null`: none). `once`: no retries (a refusal is the answer).
 */
function rawKafka(
  clusterId: string,
  brokers: string[],
  sasl: KafkaSasl | null = kafkaSaslFromEnv(clusterId) ?? null,
  once = false,
): Kafka {
  const config: KafkaConfig = { clientId: unique('smoke'), brokers, logLevel: logLevel.NOTHING };
  if (sasl) config.sasl = { mechanism: 'plain', ...sasl };
  if (once) Object.assign(config, { connectionTimeout: 3000, retry: { retries: 0 } });
  return new Kafka(config);
}

async function roundTrip(clusterId: string, brokers: string[]): Promise<KafkaMessage[]> {
  const kafka = rawKafka(clusterId, brokers);
  const topic = unique(`smoke-${clusterId}`);
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({
    topic,
    acks: -1,
    messages: [1, 2, 3].map((n) => ({
      key: 'host-1',
      value: `gs-${n}`,
      headers: { vpcId: 'vpc-1', revision: String(n) },
    })),
  });
  const consumer = kafka.consumer({ groupId: unique('group') });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got: KafkaMessage[] = [];
  await within(
    30_000,
    `consuming from kafka cluster ${clusterId}`,
    new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: ({ message }) => {
          got.push(message);
          if (got.length === 3) resolve();
          return Promise.resolve();
        },
      });
    }),
  );
  await consumer.disconnect();
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  return got;
}

KafkaSmoke('there are two independent clusters', async () => {
  const { kafka } = await testServers();
  const ids = Object.keys(kafka);
  assert.ok(ids.length >= 2, `clusters: ${ids.join(',')}`);
  const [a, b] = ids.map((id) => kafka[id]!.join(','));
  assert.is.not(a, b);
  // A topic created on one cluster does not exist on the other.
  const topic = unique('only-on-first');
  const first = rawKafka(ids[0]!, kafka[ids[0]!]!).admin();
  const second = rawKafka(ids[1]!, kafka[ids[1]!]!).admin();
  await first.connect();
  await second.connect();
  await first.createTopics({ topics: [{ topic }], waitForLeaders: true });
  assert.ok((await first.listTopics()).includes(topic));
  assert.not.ok((await second.listTopics()).includes(topic));
  await first.deleteTopics({ topics: [topic] });
  await first.disconnect();
  await second.disconnect();
});

KafkaSmoke(
  'each cluster takes an idempotent produce and delivers it in key order with headers',
  async () => {
    const { kafka } = await testServers();
    for (const [id, brokers] of Object.entries(kafka)) {
      const got = await roundTrip(id, brokers);
      assert.equal(
        got.map((m) => [
          m.key?.toString(),
          m.value?.toString(),
          m.headers?.vpcId?.toString(),
          m.headers?.revision?.toString(),
        ]),
        [
          ['host-1', 'gs-1', 'vpc-1', '1'],
          ['host-1', 'gs-2', 'vpc-1', '2'],
          ['host-1', 'gs-3', 'vpc-1', '3'],
        ],
        `cluster ${id}`,
      );
    }
  },
);

KafkaSmoke(
  'SASL/PLAIN: the configured user gets in; no credentials, a wrong password or an unknown user are refused',
  async () => {
    const { kafka } = await testServers();
    const id = Object.keys(kafka)[0]!;
    // The provisioned cluster when it runs SASL (the default), else one of this test's own.
    const own = kafkaSaslFromEnv(id)
      ? undefined
      : await startLocalKafka({
          clusterId: 'sasl',
          dir: runDir('alcor-kafka-sasl-'),
          sasl: { username: 'alcor', password: 'sasl-smoke-1' },
        });
    const brokers = own?.brokers ?? kafka[id]!;
    const sasl = own?.sasl ?? kafkaSaslFromEnv(id)!;
    try {
      await probeKafka(id, brokers, 5000, sasl);
      const refusal = async (who: KafkaSasl | null): Promise<string> => {
        const admin = rawKafka(id, brokers, who, true).admin();
        try {
          await admin.connect();
          await admin.listTopics();
          return 'accepted';
        } catch (err) {
          return (err as Error).message;
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      };
      assert.match(
        await refusal({ ...sasl, password: 'not-the-password' }),
        /SASL|[Aa]uthentication/,
      );
      assert.match(
        await refusal({ username: 'mallory', password: sasl.password }),
        /SASL|[Aa]uthentication/,
      );
      // A client speaking PLAINTEXT to a SASL listener never completes a request.
      assert.is.not(await refusal(null), 'accepted');
      assert.is(await refusal(sasl), 'accepted');
    } finally {
      await own?.stop();
    }
  },
);

KafkaSmoke.run();
