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
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  connectNats,
  createHostDirectory,
  createRegistry,
  kafkaBrokersFromEnv,
  kafkaBrokersVar,
  liveGauge,
  objectCounters,
  runService,
  stageHistogram,
  type Logger,
} from '../../infra/index.js';
import {
  ConfigError,
  ID_PATTERN,
  numbersFromEnv,
  withEnvNames,
  type HostRecord,
} from '../../shared/index.js';
import { startFleet, type HostStats } from './fleet.js';

/** The hosts' records from KV `hosts`, read with the process's own user. */
async function registeredHosts(
  natsUrl: string,
  fleetId: string,
  wanted: string,
  log: Logger,
): Promise<HostRecord[]> {
  const nc = await connectNats(natsUrl, { name: `alcor-nca-${fleetId}-directory` });
  const directory = await createHostDirectory(nc, {
    onInvalid: (hostId, error) => log.warn({ hostId, ...error }, 'host record ignored'),
  });
  const all = directory.all();
  await directory.stop();
  await nc.close();
  if (wanted === 'all') return all;
  return wanted.split(',').map((id) => {
    const record = all.find((h) => h.hostId === id.trim());
    if (!record)
      throw new ConfigError(
        'ALCOR_NCA_HOSTS',
        `host ${id.trim()} is not in the topology registry (alcor topology load)`,
      );
    return record;
  });
}

/** The hosts to run with per-host credentials: those named, or every seed in the directory. */
function hostIdsOf(wanted: string, dir: string): string[] {
  const ids =
    wanted === 'all'
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.nk'))
          .map((f) => f.slice(0, -3))
          .sort()
      : wanted.split(',').map((id) => id.trim());
  for (const id of ids) {
    if (!ID_PATTERN.test(id)) throw new ConfigError('ALCOR_NCA_HOSTS', `${id} is not a host id`);
    if (!existsSync(join(dir, `${id}.nk`)))
      throw new ConfigError('ALCOR_NCA_CREDENTIALS', `no seed ${id}.nk in ${dir}`);
  }
  return ids;
}

/** `i/n`: the ith of n shards (1-based). */
function parseShard(text: string): { index: number; of: number } {
  const m = /^(\d{1,4})\/(\d{1,4})$/.exec(text.trim());
  const index = Number(m?.[1]);
  const of = Number(m?.[2]);
  if (!m || of < 1 || index < 1 || index > of)
    throw new ConfigError('ALCOR_NCA_SHARD', `${text}: i/n with 1 <= i <= n, e.g. 2/4`);
  return { index, of };
}

/** The shard's hosts: sorted by id, every nth from the ith. */
function inShard<T extends string | HostRecord>(
  hosts: T[],
  shard: { index: number; of: number },
): T[] {
  const id = (h: T): string => (typeof h === 'string' ? h : h.hostId);
  return [...hosts]
    .sort((a, b) => id(a).localeCompare(id(b)))
    .filter((_, i) => i % shard.of === shard.index - 1);
}

async function main(log: Logger, env: NodeJS.ProcessEnv) {
  const natsUrl = env.NATS_URL ?? 'nats://127.0.0.1:4222';
  const fleetId = env.ALCOR_FLEET_ID ?? 'nca';
  if (!ID_PATTERN.test(fleetId))
    throw new ConfigError('ALCOR_FLEET_ID', `must match ${ID_PATTERN.source}`);
  const numbers = {
    ALCOR_NCA_STATS_MS: 'statsMs',
    ALCOR_NCA_RECONNECT_SPREAD_MS: 'reconnectSpreadMs',
  } as const;
  const { statsMs = 10_000, reconnectSpreadMs } = withEnvNames(numbers, () =>
    numbersFromEnv(env, numbers),
  );
  if (
    reconnectSpreadMs !== undefined &&
    (!Number.isInteger(reconnectSpreadMs) || reconnectSpreadMs < 0 || reconnectSpreadMs > 600_000)
  )
    throw new ConfigError('ALCOR_NCA_RECONNECT_SPREAD_MS', 'a whole number of ms from 0 to 600000');
  const wanted = (env.ALCOR_NCA_HOSTS ?? 'all').trim();
  const shard = parseShard(env.ALCOR_NCA_SHARD ?? '1/1');
  // Each shard is a Kafka consumer group of its own (its own partitions).
  const groupId = shard.of === 1 ? fleetId : `${fleetId}-${shard.index}`;
  const credentials = env.ALCOR_NCA_CREDENTIALS;
  // Per-host users (DESIGN §9): each host reads its own record as itself; the
  // process needs no NATS user of its own.
  const hosts: string[] | HostRecord[] = credentials
    ? inShard(hostIdsOf(wanted, credentials), shard)
    : inShard(await registeredHosts(natsUrl, fleetId, wanted, log), shard);
  if (hosts.length === 0)
    throw new ConfigError('ALCOR_NCA_HOSTS', 'no hosts registered: alcor topology load -f <file>');
  const kafka = kafkaBrokersFromEnv(env, { optional: true });
  if (!credentials) {
    for (const h of hosts as HostRecord[]) {
      if (h.binding.type === 'kafka' && !kafka[h.binding.cluster])
        throw new ConfigError(
          kafkaBrokersVar(h.binding.cluster),
          `hosts are bound to Kafka cluster ${h.binding.cluster}`,
        );
    }
  }
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
  const byBinding = (): Array<[Record<string, string>, HostStats & { hosts: number }]> =>
    [...fleet.byBinding()].map(([binding, stats]) => [{ binding }, stats]);
  objectCounters(
    registry,
    'alcor_nca_goal_states',
    {
      delivered: 'Goal-state messages taken in by the hosts (a message in parts once, when whole)',
      needed: 'Messages that changed something on their host',
      bytes: 'Bytes of goal-state messages taken in',
      applied: 'Messages applied (acked as applied)',
      failed: 'Messages whose apply failed on the host (acked as failed)',
      invalid: 'Messages refused: not a goal state, or addressed to another target',
      outOfOrder:
        'Deltas that came after a newer message of their VPC (not applied; the VPC taken again)',
      appliedOutOfOrder: 'Deltas applied after a newer message of their VPC (never, unless broken)',
      missedBefore:
        "Deltas whose target's message before them (prev) never came (not applied; the VPC taken again)",
      appliedOverGap:
        'Deltas applied although the message before them never came (never, unless broken)',
      duplicates: 'Deltas taken in again (a redelivery), or below the floor of a full state',
      misrouted: "Kafka records on a host's partition keyed for another host",
    },
    byBinding,
    ['binding'],
  );
  objectCounters(
    registry,
    'alcor_nca',
    {
      resyncs: 'Full-state requests the hosts made (at start, after a gap, after a failure)',
      resyncsRepeated: 'Resync rounds asked again because some VPC or bucket had no answer',
      resyncsDeferred: 'Resync rounds asked again later because an owner was busy (retryAfterMs)',
      gaps: "Kafka records of a host's partition skipped unread (retention, an offset reset): the host resynced",
      resyncsOnJoin:
        'Of the resyncs, those for VPCs just joined: a multicast newer than the join was stored',
      joinsLooked: "VPCs joined whose looks at the VPC's multicast are done",
    },
    byBinding,
    ['binding'],
  );
  liveGauge(
    registry,
    'alcor_nca_hosts',
    'Simulated hosts, by binding',
    () => byBinding().map(([labels, s]) => [labels, s.hosts]),
    ['binding'],
  );
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
