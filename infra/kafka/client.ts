/**
 * Kafka clients behind one adapter (INFRA-NOTES: kafkajs is unmaintained; keep it
 * replaceable). A client counts the broker connections it opens, through its
 * socket factory, so a test can check that a module's connections do not grow
 * with its topics (DESIGN §4.6). kafkajs logs go to pino.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Kafka, logLevel, type ISocketFactory, type RetryOptions } from 'kafkajs';
import type { Logger } from '../logger.js';
import { kafkaSaslFromEnv, kafkaTlsFromEnv, type KafkaSasl, type KafkaTls } from './sasl.js';

export interface KafkaClient {
  clusterId: string;
  kafka: Kafka;
  /** Broker connections open now. */
  openConnections: () => number;
  /** Broker connections opened since the client was made. */
  connectionsOpened: () => number;
}

// kafkajs logs at ERROR what it then retries (a coordinator still loading, a broker
// gone for a moment); what it gives up on reaches our code as a rejection, and our
// code logs that as an error. So its ERROR is our WARN.
const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'warn',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

export function createKafkaClient(
  clusterId: string,
  brokers: string[],
  options: {
    clientId: string;
    logger: Logger;
    retry?: RetryOptions;
    requestTimeout?: number;
    /**
     * SASL/PLAIN credentials; default: the cluster's from the environment
     * (infra/kafka/sasl.ts); `null`: none (PLAINTEXT).
     */
    sasl?: KafkaSasl | null;
    /** TLS; default: the cluster's CA from the environment; `null`: plain text. */
    ssl?: KafkaTls | null;
  },
): KafkaClient {
  const sasl = options.sasl === undefined ? kafkaSaslFromEnv(clusterId) : options.sasl;
  const ssl = options.ssl === undefined ? kafkaTlsFromEnv(clusterId) : options.ssl;
  let open = 0;
  let opened = 0;
  const socketFactory: ISocketFactory = ({ host, port, onConnect }) => {
    const socket = ssl
      ? tls.connect(
          { host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl },
          onConnect,
        )
      : net.connect({ host, port }, onConnect);
    socket.setKeepAlive(true, 60_000);
    open += 1;
    opened += 1;
    socket.once('close', () => (open -= 1));
    return socket;
  };
  const log = options.logger.child({ kafkaCluster: clusterId });
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers,
    socketFactory,
    ...(ssl ? { ssl } : {}),
    ...(sasl ? { sasl: { mechanism: 'plain' as const, ...sasl } } : {}),
    connectionTimeout: 3000,
    requestTimeout: options.requestTimeout ?? 10_000,
    retry: options.retry ?? { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
    // kafkajs is chatty at INFO (every rebalance, every reconnect): keep WARN and up.
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }) => {
        const { message, ...rest } = entry;
        log[LEVELS[level] ?? 'info']({ ...rest }, `kafka: ${message}`);
      },
  });
  return {
    clusterId,
    kafka,
    openConnections: () => open,
    connectionsOpened: () => opened,
  };
}
