/**
 * `node --import tsx services/nca/main.ts` — NCA agents for hosts of the topology
 * registry (KV `hosts`): one host, a list, or all of them (the fleet simulator,
 * sharing connections). Each applies its goal states to its model and acks them.
 *
 * Environment: NATS_URL; KAFKA_CLUSTERS and KAFKA_<ID>_BROKERS for Kafka-bound
 * hosts; ALCOR_NCA_HOSTS (`all`, or host ids separated by commas; default all);
 * ALCOR_NCA_CREDENTIALS (a directory of `<hostId>.nk` seeds: each host connects
 * as its own user and reads its own record; `all` is then every seed there);
 * ALCOR_FLEET_ID (names the Kafka consumer groups; default `nca`);
 * ALCOR_NCA_SHARD (`i/n`: of those hosts, sorted by id, every nth from the ith —
 * the fleet spread over n processes; default 1/1);
 * ALCOR_NCA_STATS_MS (how often the totals are logged; default 10,000);
 * ALCOR_NCA_RECONNECT_SPREAD_MS (with per-host users: the hosts' reconnects are
 * spread at random over this long; default 4 ms per host, at least 1 s).
 */
import { createRegistry, runService, stageHistogram, type Logger } from '../../infra/index.js';
import { startFleet } from './fleet.js';
import { fleetFromEnv, fleetMetrics } from './fleetService.js';

async function main(log: Logger, env: NodeJS.ProcessEnv) {
  const { natsUrl, fleetId, groupId, hosts, credentials, kafka, reconnectSpreadMs, statsMs } =
    await fleetFromEnv(env, log);
  const registry = createRegistry('nca', fleetId);
  const stages = stageHistogram(registry, ['binding']);
  const fleet = await startFleet({
    natsUrl,
    kafka,
    hosts,
    ...(reconnectSpreadMs === undefined ? {} : { reconnectSpreadMs }),
    logger: log,
    fleetId: groupId,
    // Per-host NATS users (DESIGN §9): a directory of `<hostId>.nk` seeds.
    ...(credentials ? { hostCredentials: credentials } : {}),
    stage: (stage, binding, seconds) => stages.observe({ stage, binding }, seconds),
  });
  fleetMetrics(registry, fleet);
  const timer = setInterval(() => log.info({ ...fleet.totals() }, 'nca totals'), statsMs);
  timer.unref();
  return {
    registry,
    // The fleet starts once every host has resynced: ready means still connected.
    readiness: () => ({ nats: fleet.connected() || 'a fleet NATS connection is down' }),
    stop: async () => {
      clearInterval(timer);
      await fleet.stop();
    },
    describe: () => ({
      hosts: hosts.length,
      kafkaClusters: [
        ...new Set(
          [...fleet.hosts.values()].flatMap(({ record: { binding } }) =>
            binding.type === 'kafka' ? [binding.cluster] : [],
          ),
        ),
      ],
    }),
  };
}

await runService({
  name: 'nca',
  about: `Simulated NCA agents for hosts of the topology registry (the fleet simulator).
Environment: NATS_URL; KAFKA_CLUSTERS and KAFKA_<ID>_BROKERS for Kafka-bound hosts;
ALCOR_NCA_HOSTS (all, or host ids separated by commas; default all);
ALCOR_FLEET_ID (names the Kafka consumer groups; default nca);
ALCOR_NCA_SHARD (i/n: every nth host from the ith, sorted by id; default 1/1);
ALCOR_NCA_STATS_MS (how often the totals are logged; default 10000).`,
  start: main,
});
