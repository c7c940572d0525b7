/**
 * What a process of agents shares whatever stands behind them (simulated hosts,
 * services/nca/main.ts; ACA bridges, services/aca-bridge/main.ts): the hosts'
 * records from KV `hosts`, and the fleet's metrics.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  connectNats,
  createHostDirectory,
  kafkaBrokersFromEnv,
  kafkaBrokersVar,
  liveGauge,
  objectCounters,
  type Logger,
  type Registry,
} from '../../infra/index.js';
import {
  ConfigError,
  ID_PATTERN,
  numbersFromEnv,
  withEnvNames,
  type HostRecord,
} from '../../shared/index.js';
import type { Fleet, HostStats } from './fleet.js';

/** The hosts' records from KV `hosts`, read with the process's own user. */
export async function registeredHosts(
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

/** The fleet's counters and host gauge, by binding (`label` may rename a binding). */
export function fleetMetrics(
  registry: Registry,
  fleet: Fleet,
  label: (binding: string) => string = (b) => b,
): void {
  const byBinding = (): Array<[Record<string, string>, HostStats & { hosts: number }]> =>
    [...fleet.byBinding()].map(([binding, stats]) => [{ binding: label(binding) }, stats]);
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
      misrouted: "Kafka records on a host's partition keyed for a host the partition does not hold",
      neighbours:
        "Kafka records on a host's shared partition keyed for the hosts sharing it (fetched by its consumer, skipped)",
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

/**
 * The fleet a process runs, from its environment (services/nca/main.ts lists the
 * variables): its hosts (records, or ids with per-host credentials), in its shard.
 */
export async function fleetFromEnv(env: NodeJS.ProcessEnv, log: Logger) {
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
  return { natsUrl, fleetId, groupId, hosts, credentials, kafka, reconnectSpreadMs, statsMs };
}
