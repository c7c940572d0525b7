/**
 * Kafka without Docker: the broker's jars from Maven Central (infra/kafka/pom.xml,
 * fetched once and cached) run in KRaft combined mode on the machine's Java 17.
 * Each call starts one independent single-node cluster.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServerUnavailableError } from '../../shared/index.js';
import { probeKafka } from '../kafka/probe.js';
import { cacheDir, cached, repoRoot } from './cache.js';
import { run, which } from './exec.js';
import { ManagedProcess } from './managedProcess.js';
import { freePort } from './ports.js';

export const KAFKA_VERSION = '4.2.2';

export async function ensureKafkaJars(): Promise<string> {
  const target = join(cacheDir(), `kafka-${KAFKA_VERSION}`, 'lib');
  return cached(target, async (tmp) => {
    const mvn = await which('mvn');
    if (!mvn) {
      throw new ServerUnavailableError(
        'kafka',
        'no Maven to fetch the broker jars: install maven, or set KAFKA_<ID>_BROKERS',
      );
    }
    await run(
      mvn,
      [
        '-q',
        '-B',
        '-f',
        join(repoRoot, 'infra', 'kafka', 'pom.xml'),
        `-Dkafka.version=${KAFKA_VERSION}`,
        'dependency:copy-dependencies',
        `-DoutputDirectory=${tmp}`,
        '-DincludeScope=runtime',
      ],
      { timeoutMs: 900_000 },
    );
    if (!readdirSync(tmp).some((f) => f.startsWith('kafka_2.13-'))) {
      throw new ServerUnavailableError('kafka', `Maven fetched no kafka_2.13 jar into ${tmp}`);
    }
  });
}

/** A Kafka cluster id: 16 random bytes, base64url without padding (what StorageTool expects). */
function newClusterUuid(): string {
  return randomBytes(16).toString('base64url');
}

const LOG4J2 = `status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
`;

export interface LocalKafka {
  clusterId: string;
  brokers: string[];
  version: string;
  process: ManagedProcess;
  stop: () => Promise<void>;
  /** Stops the broker and starts it again on the same ports and data, after `downMs` (fault tests). */
  restart: (downMs?: number) => Promise<void>;
}

export interface LocalKafkaOptions {
  clusterId: string;
  dir: string;
  heapMb?: number;
  readyTimeoutMs?: number;
}

export async function startLocalKafka(options: LocalKafkaOptions): Promise<LocalKafka> {
  const java = process.env.JAVA_HOME
    ? join(process.env.JAVA_HOME, 'bin', 'java')
    : await which('java');
  if (!java)
    throw new ServerUnavailableError(
      `kafka cluster ${options.clusterId}`,
      'no java on PATH (Java 17 is needed)',
    );
  const lib = await ensureKafkaJars();
  const dir = options.dir;
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const [port, controllerPort] = [await freePort(), await freePort()];
  const props = [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=4',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    '',
  ].join('\n');
  const propsPath = join(dir, 'server.properties');
  writeFileSync(propsPath, props);
  const log4j = join(dir, 'log4j2.properties');
  writeFileSync(log4j, LOG4J2);
  const heap = options.heapMb ?? 512;
  const jvm = [
    `-Xms${Math.min(256, heap)}m`,
    `-Xmx${heap}m`,
    `-Dlog4j2.configurationFile=${log4j}`,
    '-cp',
    `${lib}/*`,
  ];
  const name = `kafka cluster ${options.clusterId}`;
  await run(
    java,
    [
      ...jvm,
      'kafka.tools.StorageTool',
      'format',
      `--cluster-id=${newClusterUuid()}`,
      '-c',
      propsPath,
    ],
    {
      timeoutMs: 120_000,
    },
  ).catch((err: unknown) => {
    throw new ServerUnavailableError(name, `storage format failed: ${(err as Error).message}`, {
      cause: err,
    });
  });
  const brokers = [`127.0.0.1:${port}`];

  const launch = async (): Promise<ManagedProcess> => {
    const proc = new ManagedProcess({
      name,
      command: java,
      args: [...jvm, 'kafka.Kafka', propsPath],
      logFile: join(dir, 'kafka.log'),
    });
    await proc.waitUntilReady(
      async () => {
        await probeKafka(options.clusterId, brokers, 2000);
        return true;
      },
      options.readyTimeoutMs ?? 90_000,
      250,
    );
    return proc;
  };

  let proc = await launch();
  const handle: LocalKafka = {
    clusterId: options.clusterId,
    brokers,
    version: KAFKA_VERSION,
    get process() {
      return proc;
    },
    stop: () => proc.stop(),
    restart: async (downMs = 0) => {
      await proc.stop();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      proc = await launch();
    },
  };
  return handle;
}
