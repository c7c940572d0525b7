/**
 * Kafka without Docker: the broker's jars from Maven Central (infra/kafka/pom.xml,
 * fetched once and cached) run in KRaft combined mode on the machine's Java 17.
 * Each call starts one independent single-node cluster.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServerUnavailableError } from '../../shared/index.js';
import { KAFKA_ROLES, writeKafkaAclsAs, type KafkaRole } from '../kafka/acls.js';
import { probeKafka } from '../kafka/probe.js';
import { KAFKA_LOG4J2, renderKafkaBrokerConfig } from '../kafka/brokerConfig.js';
import type { KafkaSasl } from '../kafka/sasl.js';
import { cacheDir, cached, repoRoot } from './cache.js';
import { run, which } from './exec.js';
import { ManagedProcess } from './managedProcess.js';
import type { TlsFiles } from './tls.js';
import { freePort } from './ports.js';
import { limitFromEnv } from './natsServer.js';

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

export interface LocalKafka {
  clusterId: string;
  brokers: string[];
  /** The users per role, when the broker runs SASL/PLAIN with ACLs. */
  users?: Record<KafkaRole, KafkaSasl>;
  /** The CA its certificate is signed by, when it speaks TLS. */
  caFile?: string;
  version: string;
  /** The running process (a new one after a restart or revive). */
  readonly process: ManagedProcess;
  stop: () => Promise<void>;
  /** Stops the broker and starts it again on the same ports and data, after `downMs` (fault tests). */
  restart: (downMs?: number) => Promise<void>;
  /** A crash: SIGKILL (fault tests). */
  kill: () => Promise<void>;
  /** Starts it again after a stop or kill: same ports and data. */
  revive: () => Promise<void>;
}

export interface LocalKafkaOptions {
  clusterId: string;
  dir: string;
  heapMb?: number;
  readyTimeoutMs?: number;
  /**
   * SASL/PLAIN on every listener and ACLs (DESIGN §9, infra/kafka/acls.ts): only
   * these users (and the broker's own) may connect, each allowed what its role
   * does. Absent: PLAINTEXT and no authorizer, anyone on the machine may.
   */
  users?: Record<KafkaRole, KafkaSasl>;
  /** More broker settings (server.properties), e.g. a small message.max.bytes in tests. */
  brokerConfig?: Record<string, string>;
  /** TLS on the listeners with these files (clients then need the CA). */
  tls?: TlsFiles;
}

/** Fresh users for each role of a cluster: the role's name, a password made for it. */
export function makeKafkaUsers(): Record<KafkaRole, KafkaSasl> {
  return Object.fromEntries(
    KAFKA_ROLES.map((role) => [
      role,
      { username: role, password: randomBytes(18).toString('base64url') },
    ]),
  ) as Record<KafkaRole, KafkaSasl>;
}

/** The extra broker settings: the options', over ALCOR_KAFKA_MESSAGE_MAX_BYTES's. */
function brokerConfigOf(options: LocalKafkaOptions): Record<string, string> {
  const max = limitFromEnv('ALCOR_KAFKA_MESSAGE_MAX_BYTES');
  return { ...(max ? { 'message.max.bytes': String(max) } : {}), ...options.brokerConfig };
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
  const broker = { username: 'broker', password: randomBytes(18).toString('base64url') };
  const props = renderKafkaBrokerConfig({
    listenHost: '127.0.0.1',
    advertised: `127.0.0.1:${port}`,
    port,
    controllerPort,
    dataDir,
    ...(options.users ? { users: options.users, broker } : {}),
    ...(options.tls
      ? { tls: { keyAndCertFile: options.tls.keyAndCertFile, caFile: options.tls.caFile } }
      : {}),
    extra: brokerConfigOf(options),
  });
  const ssl = options.tls ? { ca: [readFileSync(options.tls.caFile, 'utf8')] } : null;
  const propsPath = join(dir, 'server.properties');
  // It may hold passwords: readable by this user only.
  writeFileSync(propsPath, props, { mode: 0o600 });
  const log4j = join(dir, 'log4j2.properties');
  writeFileSync(log4j, KAFKA_LOG4J2);
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
        await probeKafka(options.clusterId, brokers, 2000, options.users?.admin ?? null, ssl);
        return true;
      },
      options.readyTimeoutMs ?? 90_000,
      250,
    );
    return proc;
  };

  let proc = await launch();
  // The roles' ACLs live in the cluster's metadata: written once, they survive restarts.
  if (options.users)
    await writeKafkaAclsAs(brokers, options.users.admin, ssl ?? undefined, 'alcor-provision');
  const handle: LocalKafka = {
    clusterId: options.clusterId,
    brokers,
    ...(options.users ? { users: options.users } : {}),
    ...(options.tls ? { caFile: options.tls.caFile } : {}),
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
    kill: () => proc.kill(),
    revive: async () => {
      if (proc.running) throw new Error(`${name} is still running`);
      proc = await launch();
    },
  };
  return handle;
}
