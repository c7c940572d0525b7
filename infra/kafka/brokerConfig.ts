/**
 * The broker settings (server.properties) of a node of a KRaft Kafka cluster (one
 * node, or several each a broker and a controller) as this system runs it: one client listener, one controller listener, and with
 * users SASL/PLAIN on both and the KRaft authorizer (DESIGN §9). The local
 * provisioning, `alcor kafka-config` and the container images all render it here.
 */
import { ServerUnavailableError } from '../../shared/index.js';
import type { KafkaRole } from './acls.js';
import type { KafkaSasl } from './sasl.js';

/** The most bytes of a segment's offset or time index (Kafka's default is 10 MiB). */
export const KAFKA_INDEX_MAX_BYTES = 262_144;

export interface KafkaBrokerConfig {
  /** The address both listeners bind (127.0.0.1 locally, 0.0.0.0 in a container). */
  listenHost: string;
  /** host:port clients are told to use (what they can reach). */
  advertised: string;
  port: number;
  controllerPort: number;
  dataDir: string;
  /**
   * SASL/PLAIN users per role and the broker's own: only these may connect, each
   * allowed what its role does (infra/kafka/acls.ts). Absent: PLAINTEXT, no
   * authorizer, anyone who reaches the port may.
   */
  users?: Record<KafkaRole, KafkaSasl>;
  broker?: KafkaSasl;
  /**
   * TLS on both listeners (PEM files): the broker's key and certificate in one
   * file, and the CA it verifies its own listeners with (the controller and the
   * broker are each other's clients). Clients take the CA (KAFKA_<ID>_CA_FILE).
   */
  tls?: { keyAndCertFile: string; caFile: string };
  /**
   * A node of a cluster of several (combined broker and controller each): its id,
   * and every node's `id@host:controllerPort` (the KRaft voters). Absent: a
   * single-node cluster, node 1.
   */
  node?: { id: number; voters: string };
  /**
   * Copies of every partition (the internal topics' and the default for new
   * topics), with `min.insync.replicas` one less (at least 1): a produce with
   * acks=all survives the loss of one broker. Default 1.
   */
  replicas?: number;
  /** More settings, e.g. message.max.bytes. */
  extra?: Record<string, string>;
}

const SASL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const SASL_PASSWORD = /^[A-Za-z0-9_-]{8,128}$/;

/** The broker's JAAS line: its own inter-broker user and every client user. */
function plainJaas(broker: KafkaSasl, users: readonly KafkaSasl[]): string {
  for (const u of [broker, ...users]) {
    if (!SASL_NAME.test(u.username) || !SASL_PASSWORD.test(u.password))
      throw new ServerUnavailableError(
        'kafka',
        'SASL user names and passwords must be [A-Za-z0-9_-] (passwords 8 to 128 of them)',
      );
  }
  return (
    'org.apache.kafka.common.security.plain.PlainLoginModule required ' +
    `username="${broker.username}" password="${broker.password}" ` +
    [broker, ...users].map((u) => `user_${u.username}="${u.password}"`).join(' ') +
    ';'
  );
}

export function renderKafkaBrokerConfig(o: KafkaBrokerConfig): string {
  if (o.users && !o.broker)
    throw new ServerUnavailableError('kafka', 'a broker user is needed with SASL users');
  // PLAINTEXT or SSL, or SASL_PLAINTEXT or SASL_SSL with PLAIN users and the KRaft
  // authorizer: on the client listener the role users, on the controller listener
  // the broker's own user only (a controller listener without SASL would let anyone
  // who reaches it in as a super user, ANONYMOUS being what the broker is there).
  const listener = `${o.users ? 'SASL_' : ''}${o.tls ? 'SSL' : 'PLAINTEXT'}`;
  const ssl = o.tls
    ? [
        'ssl.keystore.type=PEM',
        `ssl.keystore.location=${o.tls.keyAndCertFile}`,
        'ssl.truststore.type=PEM',
        `ssl.truststore.location=${o.tls.caFile}`,
        'ssl.client.auth=none',
      ]
    : [];
  const sasl =
    o.users && o.broker
      ? [
          'sasl.enabled.mechanisms=PLAIN',
          'sasl.mechanism.inter.broker.protocol=PLAIN',
          'sasl.mechanism.controller.protocol=PLAIN',
          `listener.name.${listener.toLowerCase()}.plain.sasl.jaas.config=${plainJaas(o.broker, Object.values(o.users))}`,
          `listener.name.controller.plain.sasl.jaas.config=${plainJaas(o.broker, [])}`,
          'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
          `super.users=User:${o.broker.username};User:${o.users.admin.username}`,
          'allow.everyone.if.no.acl.found=false',
        ]
      : [];
  // The controller is reached on the node's own loopback in a single-node cluster.
  const node = o.node ?? { id: 1, voters: `1@127.0.0.1:${o.controllerPort}` };
  const replicas = o.replicas ?? 1;
  const minIsr = Math.max(1, replicas - 1);
  return [
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    `controller.quorum.voters=${node.voters}`,
    `listeners=${listener}://${o.listenHost}:${o.port},CONTROLLER://${o.listenHost}:${o.controllerPort}`,
    `advertised.listeners=${listener}://${o.advertised}`,
    'controller.listener.names=CONTROLLER',
    `listener.security.protocol.map=${listener}:${listener},CONTROLLER:${listener}`,
    `inter.broker.listener.name=${listener}`,
    ...ssl,
    ...sasl,
    `log.dirs=${o.dataDir}`,
    'num.partitions=1',
    `default.replication.factor=${replicas}`,
    `min.insync.replicas=${minIsr}`,
    `offsets.topic.replication.factor=${replicas}`,
    'offsets.topic.num.partitions=4',
    `transaction.state.log.replication.factor=${replicas}`,
    `transaction.state.log.min.isr=${minIsr}`,
    `share.coordinator.state.topic.replication.factor=${replicas}`,
    `share.coordinator.state.topic.min.isr=${minIsr}`,
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    // A partition per host means thousands of index files, each preallocated
    // (sparse) to this size and mmapped. On kernels whose page cache uses large
    // folios for ext4 (Linux 6.x), a fault on a hole reads ahead a large folio and
    // zeroes it: with Kafka's 10 MiB default that memset was two thirds of the
    // brokers' CPU in the demo (12 ms per intent instead of 6, hosts 10-20 s
    // behind). 256 KiB holds 32,768 offset entries (a segment rolls after ~90 MiB
    // of one host's records at the 4 KiB index interval).
    `log.index.size.max.bytes=${KAFKA_INDEX_MAX_BYTES}`,
    ...Object.entries(o.extra ?? {}).map(([k, v]) => `${k}=${v}`),
    '',
  ].join('\n');
}

/** The broker's log4j2 settings: warnings, and the server's start and stop. */
export const KAFKA_LOG4J2 = `status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
`;
