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
import { runHereOrIn, type ContainerSpec } from './container.js';
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

export interface LocalKafkaNode {
  /** KRaft node id (1, 2, 3…). */
  id: number;
  /** host:port of its client listener. */
  broker: string;
  readonly process: ManagedProcess;
  /** A crash: SIGKILL (fault tests). */
  kill: () => Promise<void>;
  stop: () => Promise<void>;
  /** Starts it again after a stop or kill: same ports and data. */
  revive: () => Promise<void>;
}

export interface LocalKafka {
  clusterId: string;
  brokers: string[];
  /** Each node (one, or ALCOR_KAFKA_BROKERS_PER_CLUSTER of them). */
  nodes: LocalKafkaNode[];
  /** The users per role, when the broker runs SASL/PLAIN with ACLs. */
  users?: Record<KafkaRole, KafkaSasl>;
  /** The CA its certificate is signed by, when it speaks TLS. */
  caFile?: string;
  version: string;
  /** The first node's running process (a new one after a restart or revive). */
  readonly process: ManagedProcess;
  stop: () => Promise<void>;
  /** Stops every node and starts them again on the same ports and data, after `downMs` (fault tests). */
  restart: (downMs?: number) => Promise<void>;
  /** A crash of the whole cluster: SIGKILL of every node (fault tests). */
  kill: () => Promise<void>;
  /** Starts every node again after a stop or kill: same ports and data. */
  revive: () => Promise<void>;
}

export interface LocalKafkaOptions {
  clusterId: string;
  dir: string;
  heapMb?: number;
  readyTimeoutMs?: number;
  /**
   * Nodes of the cluster, each a broker and a KRaft controller (default 1). With 3
   * or more, every partition has 3 copies and min.insync.replicas 2: acks=all
   * survives a broker's loss.
   */
  brokers?: number;
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
  /** Runs every broker in a container of this image (its Java and jars) instead of here. */
  container?: ContainerSpec;
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

/** Where the image keeps the broker's jars (deploy/docker/Dockerfile). */
const KAFKA_LIB_IN_IMAGE = '/opt/kafka/lib';

export async function startLocalKafka(options: LocalKafkaOptions): Promise<LocalKafka> {
  const { container } = options;
  const java = container
    ? 'java'
    : process.env.JAVA_HOME
      ? join(process.env.JAVA_HOME, 'bin', 'java')
      : await which('java');
  if (!java)
    throw new ServerUnavailableError(
      `kafka cluster ${options.clusterId}`,
      'no java on PATH (Java 17 is needed)',
    );
  const lib = container ? KAFKA_LIB_IN_IMAGE : await ensureKafkaJars();
  const count = options.brokers ?? 1;
  const name = `kafka cluster ${options.clusterId}`;
  const ports: Array<{ port: number; controller: number }> = [];
  for (let i = 0; i < count; i++)
    ports.push({ port: await freePort(), controller: await freePort() });
  const voters = ports.map((p, i) => `${i + 1}@127.0.0.1:${p.controller}`).join(',');
  const broker = { username: 'broker', password: randomBytes(18).toString('base64url') };
  const ssl = options.tls ? { ca: [readFileSync(options.tls.caFile, 'utf8')] } : null;
  const brokers = ports.map((p) => `127.0.0.1:${p.port}`);
  const heap = options.heapMb ?? (count > 1 ? 384 : 512);
  const clusterUuid = newClusterUuid();

  /** A node's files written and its storage formatted; returns how to launch it. */
  const prepare = async (i: number): Promise<() => ManagedProcess> => {
    const dir = count === 1 ? options.dir : join(options.dir, `node-${i + 1}`);
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir, { recursive: true });
    const { port, controller } = ports[i]!;
    const props = renderKafkaBrokerConfig({
      listenHost: '127.0.0.1',
      advertised: `127.0.0.1:${port}`,
      port,
      controllerPort: controller,
      dataDir,
      ...(count > 1 ? { node: { id: i + 1, voters }, replicas: Math.min(3, count) } : {}),
      ...(options.users ? { users: options.users, broker } : {}),
      ...(options.tls
        ? { tls: { keyAndCertFile: options.tls.keyAndCertFile, caFile: options.tls.caFile } }
        : {}),
      extra: brokerConfigOf(options),
    });
    const propsPath = join(dir, 'server.properties');
    // It may hold passwords: readable by this user only.
    writeFileSync(propsPath, props, { mode: 0o600 });
    const log4j = join(dir, 'log4j2.properties');
    writeFileSync(log4j, KAFKA_LOG4J2);
    const jvm = [
      `-Xms${Math.min(256, heap)}m`,
      `-Xmx${heap}m`,
      `-Dlog4j2.configurationFile=${log4j}`,
      '-cp',
      `${lib}/*`,
    ];
    await runHereOrIn(
      container,
      java,
      [...jvm, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterUuid}`, '-c', propsPath],
      { timeoutMs: 120_000 },
    ).catch((err: unknown) => {
      throw new ServerUnavailableError(name, `storage format failed: ${(err as Error).message}`, {
        cause: err,
      });
    });
    return () =>
      new ManagedProcess({
        name: count === 1 ? name : `${name} node ${i + 1}`,
        command: java,
        args: [...jvm, 'kafka.Kafka', propsPath],
        logFile: join(dir, 'kafka.log'),
        ...(container ? { container } : {}),
      });
  };
  const spawners = await Promise.all(ports.map((_, i) => prepare(i)));

  /** Ready when the cluster answers an admin call through the given brokers. */
  const ready = (proc: ManagedProcess, through: readonly string[]) =>
    proc.waitUntilReady(
      async () => {
        await probeKafka(options.clusterId, [...through], 2000, options.users?.admin ?? null, ssl);
        return true;
      },
      options.readyTimeoutMs ?? 90_000,
      250,
    );
  const procs = spawners.map((spawn) => spawn());
  // A quorum needs most nodes up: every node is started before any is waited for.
  await Promise.all(procs.map((p, i) => ready(p, [brokers[i]!])));

  // The roles' ACLs live in the cluster's metadata: written once, they survive restarts.
  if (options.users)
    await writeKafkaAclsAs(brokers, options.users.admin, ssl ?? undefined, 'alcor-provision');
  const nodes: LocalKafkaNode[] = procs.map((_, i) => ({
    id: i + 1,
    broker: brokers[i]!,
    get process() {
      return procs[i]!;
    },
    kill: () => procs[i]!.kill(),
    stop: () => procs[i]!.stop(),
    revive: async () => {
      if (procs[i]!.running) throw new Error(`${name} node ${i + 1} is still running`);
      const proc = spawners[i]!();
      procs[i] = proc;
      await ready(proc, [brokers[i]!]);
    },
  }));
  const everyNode = (f: (n: LocalKafkaNode) => Promise<void>) =>
    Promise.all(nodes.map(f)).then(() => undefined);
  const reviveAll = async () => {
    const down = nodes.filter((n) => !n.process.running);
    if (down.length === 0) throw new Error(`${name} is still running`);
    down.forEach((n) => (procs[n.id - 1] = spawners[n.id - 1]!()));
    await Promise.all(down.map((n) => ready(n.process, [n.broker])));
  };
  return {
    clusterId: options.clusterId,
    brokers,
    nodes,
    ...(options.users ? { users: options.users } : {}),
    ...(options.tls ? { caFile: options.tls.caFile } : {}),
    version: KAFKA_VERSION,
    get process() {
      return procs[0]!;
    },
    stop: () => everyNode((n) => n.stop()),
    restart: async (downMs = 0) => {
      await everyNode((n) => n.stop());
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await reviveAll();
    },
    kill: () => everyNode((n) => n.kill()),
    revive: reviveAll,
  };
}
