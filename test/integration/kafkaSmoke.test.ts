import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { testServers, unique, within } from '../support/index.js';

const KafkaSmoke = suite('kafka clusters (KRaft)');

async function roundTrip(clusterId: string, brokers: string[]): Promise<KafkaMessage[]> {
  const kafka = new Kafka({ clientId: unique('smoke'), brokers, logLevel: logLevel.NOTHING });
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
  const first = new Kafka({
    clientId: 'smoke',
    brokers: kafka[ids[0]!]!,
    logLevel: logLevel.NOTHING,
  }).admin();
  const second = new Kafka({
    clientId: 'smoke',
    brokers: kafka[ids[1]!]!,
    logLevel: logLevel.NOTHING,
  }).admin();
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

KafkaSmoke.run();
