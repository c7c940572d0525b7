import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kafka, logLevel, type KafkaConfig, type KafkaMessage } from 'kafkajs';
import {
  AGENT_GROUP_PREFIX,
  GOAL_STATE_TOPIC_PREFIX,
  KAFKA_ROLES,
  kafkaRoleEnv,
  kafkaSaslFromEnv,
  kafkaTlsFromEnv,
  makeKafkaUsers,
  probeKafka,
  runDir,
  startLocalKafka,
  type KafkaRole,
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
  const ssl = kafkaTlsFromEnv(clusterId);
  if (ssl) config.ssl = ssl;
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

/**
 * A cluster with SASL users per role and ACLs: the provisioned one when it has them
 * (ALCOR_KAFKA_CREDENTIALS), else one of the test's own.
 */
async function saslCluster(): Promise<{
  id: string;
  brokers: string[];
  user: (role: KafkaRole) => KafkaSasl;
  stop: () => Promise<void>;
}> {
  const { kafka } = await testServers();
  const id = Object.keys(kafka)[0]!;
  const fromFile = (role: KafkaRole): KafkaSasl | undefined => {
    const env = kafkaRoleEnv(role);
    return kafkaSaslFromEnv(id, env);
  };
  if (fromFile('admin'))
    return { id, brokers: kafka[id]!, user: (r) => fromFile(r)!, stop: async () => {} };
  const users = makeKafkaUsers();
  const own = await startLocalKafka({ clusterId: 'sasl', dir: runDir('alcor-kafka-sasl-'), users });
  return { id: 'sasl', brokers: own.brokers, user: (r) => users[r], stop: own.stop };
}

/** What a request came to: `ok`, or the refusal's message (with kafkajs's nested errors). */
async function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (err: Error & { errors?: Array<{ type?: string; message?: string }> }) =>
      [err.message, ...(err.errors ?? []).map((e) => e.type ?? e.message)].join('; '),
  );
}

KafkaSmoke(
  'SASL/PLAIN: each role user gets in; no credentials, a wrong password or an unknown user are refused',
  async () => {
    const cluster = await saslCluster();
    const { id, brokers } = cluster;
    try {
      const admin = cluster.user('admin');
      await probeKafka(id, brokers, 5000, admin);
      const refusal = async (who: KafkaSasl | null): Promise<string> => {
        const a = rawKafka(id, brokers, who, true).admin();
        try {
          await a.connect();
          await a.listTopics();
          return 'accepted';
        } catch (err) {
          return (err as Error).message;
        } finally {
          await a.disconnect().catch(() => undefined);
        }
      };
      assert.match(
        await refusal({ ...admin, password: 'not-the-password' }),
        /SASL|[Aa]uthentication/,
      );
      assert.match(
        await refusal({ username: 'mallory', password: admin.password }),
        /SASL|[Aa]uthentication/,
      );
      // A client speaking PLAINTEXT to a SASL listener never completes a request.
      assert.is.not(await refusal(null), 'accepted');
      for (const role of KAFKA_ROLES)
        assert.is(await refusal(cluster.user(role)), 'accepted', role);
    } finally {
      await cluster.stop();
    }
  },
);

KafkaSmoke(
  'ACLs: only the southbound user makes and writes goal-state topics; agents only read them through their groups',
  async () => {
    const cluster = await saslCluster();
    const { id, brokers } = cluster;
    const as = (role: KafkaRole, once = true) => rawKafka(id, brokers, cluster.user(role), once);
    const topic = `${GOAL_STATE_TOPIC_PREFIX}${unique('acl')}`;
    const other = unique('not-goal-states');
    const clients: Array<{ disconnect: () => Promise<void> }> = [];
    const connected = async <
      T extends { connect: () => Promise<void>; disconnect: () => Promise<void> },
    >(
      c: T,
    ): Promise<T> => {
      clients.push(c);
      await c.connect();
      return c;
    };
    try {
      const root = await connected(as('admin').admin());
      await root.createTopics({
        topics: [{ topic: other, numPartitions: 1 }],
        waitForLeaders: true,
      });

      // The southbound: its topics, yes; anything else, no.
      const sbAdmin = await connected(as('southbound').admin());
      assert.is(
        await outcome(
          sbAdmin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true }),
        ),
        'ok',
      );
      assert.is(
        await outcome(sbAdmin.createPartitions({ topicPartitions: [{ topic, count: 2 }] })),
        'ok',
      );
      assert.match(
        await outcome(sbAdmin.createTopics({ topics: [{ topic: unique('elsewhere') }] })),
        /authoriz/i,
      );
      const producer = await connected(
        as('southbound', false).producer({ idempotent: true, maxInFlightRequests: 1 }),
      );
      assert.is(
        await outcome(producer.send({ topic, acks: -1, messages: [{ key: 'h1', value: 'gs-1' }] })),
        'ok',
      );
      assert.match(
        await outcome(producer.send({ topic: other, acks: -1, messages: [{ value: 'x' }] })),
        /authoriz/i,
      );

      // An agent: reads the goal-state topic through an agents' group…
      const reader = await connected(
        as('nca').consumer({ groupId: `${AGENT_GROUP_PREFIX}${unique('acl')}` }),
      );
      await reader.subscribe({ topic, fromBeginning: true });
      const got: string[] = [];
      await within(
        30_000,
        'the agent reading its topic',
        new Promise<void>((resolve) => {
          void reader.run({
            eachMessage: ({ message }) => {
              got.push(message.value!.toString());
              resolve();
              return Promise.resolve();
            },
          });
        }),
      );
      assert.equal(got, ['gs-1']);
      // …and may not forge a goal state, make a topic, or read through another group.
      const forger = await connected(as('nca').producer());
      assert.match(
        await outcome(forger.send({ topic, acks: -1, messages: [{ key: 'h1', value: 'forged' }] })),
        /authoriz/i,
      );
      const ncaAdmin = await connected(as('nca').admin());
      assert.match(
        await outcome(ncaAdmin.createTopics({ topics: [{ topic: `${topic}-x` }] })),
        /authoriz/i,
      );
      // Group offsets: its agents' groups, yes; any other group, no.
      assert.is(
        await outcome(
          ncaAdmin.fetchOffsets({
            groupId: `${AGENT_GROUP_PREFIX}${unique('g')}`,
            topics: [topic],
          }),
        ),
        'ok',
      );
      // (the broker answers GROUP_AUTHORIZATION_FAILED to the coordinator lookup;
      // kafkajs reports it as no coordinator found)
      assert.match(
        await outcome(ncaAdmin.fetchOffsets({ groupId: unique('other-group'), topics: [topic] })),
        /authoriz|group coordinator/i,
      );
      // The topic holds only what the southbound wrote.
      const offsets = await root.fetchTopicOffsets(topic);
      assert.is(
        offsets.reduce((n, p) => n + Number(p.high), 0),
        1,
      );
    } finally {
      for (const c of clients.reverse()) await c.disconnect().catch(() => undefined);
      await cluster.stop();
    }
  },
);

KafkaSmoke.run();
