/**
 * The product over a Kafka broker of a test's own: the broker (PLAINTEXT, an id
 * no run-wide SASL setting names), an isolated NATS, the run's Redis, a
 * controller, a southbound module and a fleet of 2 clusters × 10 hosts, all bound
 * to that broker. For tests of the Kafka binding that need a broker set up their
 * way (a small message.max.bytes) or a southbound set their way.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { putHosts, runDir, startLocalKafka, type LocalKafka } from '../../infra/index.js';
import type { HostRecord } from '../../shared/index.js';
import { startFleet, type Fleet } from '../../services/nca/fleet.js';
import {
  start as startSouthbound,
  type SouthboundModule,
} from '../../services/southbound/index.js';
import { isolatedNats, startTestController, testLog, type IsolatedNats } from './controller.js';
import { releaseTestServers, testServers } from './servers.js';
import { fleet as makeHosts } from './workload.js';

export interface KafkaStack {
  kafka: LocalKafka;
  server: IsolatedNats;
  redisUrl: string;
  hosts: HostRecord[];
  /** `{ <clusterId>: brokers }`, as the services take them. */
  brokers: Record<string, string[]>;
  southbound: SouthboundModule;
  agents: Fleet;
  /** Stops everything it started (whatever got started). */
  stop: () => Promise<void>;
}

/**
 * Starts the stack; `clusterId` names the broker, the hosts' tag, the southbound
 * module and the fleet. A start that fails stops what it had started.
 */
export async function startKafkaStack(
  clusterId: string,
  options: {
    brokerConfig?: Record<string, string>;
    maxPayload?: number;
    kafkaHostsPerPartition?: number;
  } = {},
): Promise<KafkaStack> {
  const dir = runDir(`alcor-${clusterId}-kafka-`);
  const stops: Array<() => Promise<void>> = [
    async () => {
      rmSync(dir, { recursive: true, force: true });
      await releaseTestServers();
    },
  ];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const kafka = await startLocalKafka({
      clusterId,
      dir: join(dir, clusterId),
      ...(options.brokerConfig ? { brokerConfig: options.brokerConfig } : {}),
    });
    stops.push(() => kafka.stop());
    const { redisUrl } = await testServers();
    const server = await isolatedNats(
      {},
      options.maxPayload ? { maxPayload: options.maxPayload } : {},
    );
    stops.push(() => server.stop());
    const hosts = makeHosts(2, 10, clusterId, {
      binding: () => ({ type: 'kafka', cluster: clusterId }),
    });
    const brokers = { [clusterId]: kafka.brokers };
    const controller = await startTestController(server.url, {
      programmedDeadlineMs: 60_000,
      redisUrl,
    });
    stops.push(() => controller.stop());
    await putHosts(server.nc, hosts);
    const southbound = await startSouthbound({
      instanceId: `${clusterId}-sb`,
      natsUrl: server.url,
      redisUrl,
      kafka: brokers,
      ...(options.kafkaHostsPerPartition
        ? { kafkaHostsPerPartition: options.kafkaHostsPerPartition }
        : {}),
      log: testLog,
    });
    stops.push(() => southbound.stop());
    const agents = await startFleet({
      natsUrl: server.url,
      kafka: brokers,
      hosts,
      logger: testLog,
      fleetId: clusterId,
    });
    stops.push(() => agents.stop());
    return { kafka, server, redisUrl, hosts, brokers, southbound, agents, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
