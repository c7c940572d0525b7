/**
 * The placement leader's loop (DESIGN §5): while this run holds the `leader` key,
 * it computes the bucket table with LBMRC from the live placed members and the
 * loads their heartbeats report, and writes it to KV `placement` (compare-and-set)
 * when the membership changes, when load drift breaks the bound (at most every
 * `rebalanceMs`, so a ramping load does not move buckets on every tick), and every
 * `refreshMs` to refresh the loads `alcor placement` shows.
 */
import type { Logger, Membership, PlacementStore } from '../../../infra/index.js';
import { place, type PlacementTable } from '../../../shared/index.js';

export interface LeaderOptions {
  bucketCount: number;
  epsilon: number;
  intervalMs: number;
  /** A new leader with no table waits this long for members to register. */
  settleMs: number;
  /** Rewrite an unchanged table this often to refresh its loads. */
  refreshMs: number;
  /** Moves for load drift alone (no member joined or left) at most this often. */
  rebalanceMs: number;
}

/** The next table from the current one, the live members and their reported loads (pure). */
export function nextTable(
  current: PlacementTable | undefined,
  members: Array<{ id: string; capacity: number; loads: Record<string, number> }>,
  leader: string,
  options: Pick<LeaderOptions, 'bucketCount' | 'epsilon'>,
): PlacementTable {
  const { bucketCount, epsilon } = options;
  const loadsOf = new Map(members.map((m) => [m.id, m.loads]));
  const previous = new Map<string, string>();
  const weights: number[] = [];
  for (let b = 0; b < bucketCount; b++) {
    const owner = current?.owners[b];
    const reported = owner ? loadsOf.get(owner)?.[b] : undefined;
    weights.push(reported ?? current?.weights[b] ?? 1);
    // Owners that left stay in `previous`: their buckets count as forced moves.
    if (owner) previous.set(String(b), owner);
  }
  const placed = place({
    items: weights.map((weight, b) => ({ id: String(b), weight })),
    members: members.map((m) => ({ id: m.id, capacity: m.capacity })),
    previous,
    epsilon,
  });
  const epoch = (current?.epoch ?? 0) + 1;
  const owners = weights.map((_, b) => placed.assignment.get(String(b))!);
  return {
    epoch,
    leader,
    at: new Date().toISOString(),
    epsilon,
    bucketCount,
    owners,
    since: owners.map((o, b) =>
      current && current.owners[b] === o ? (current.since[b] ?? epoch) : epoch,
    ),
    weights,
    members: placed.members.map((m) => ({
      id: m.id,
      capacity: m.capacity,
      load: m.load,
      fair: m.fair,
      buckets: m.items,
    })),
    maxOverFair: placed.maxOverFair,
    moved: {
      weight: placed.moved.weight,
      buckets: placed.moved.items,
      forced: placed.moved.forced,
    },
  };
}

export function startPlacementLeader(deps: {
  membership: Membership;
  store: PlacementStore;
  logger: Logger;
  options: LeaderOptions;
}): { stop: () => Promise<void> } {
  const { membership, store, logger, options } = deps;
  let leaderSince = 0;
  let lastWrite = 0;
  let lastRebalance = 0;
  let busy: Promise<void> | undefined;

  async function tick(): Promise<void> {
    if (!membership.isLeader()) {
      leaderSince = 0;
      return;
    }
    leaderSince ||= Date.now();
    const current = await store.readTable();
    if (!current && Date.now() - leaderSince < options.settleMs) return;
    const members = (await membership.members())
      .map((m) => m.record)
      .filter((r) => r.placed)
      .map((r) => ({ id: r.id, capacity: r.capacity, loads: r.loads }));
    if (members.length === 0) return;
    const table = nextTable(current?.value, members, membership.id, options);
    const before = current?.value;
    const ownersChanged = !before || table.owners.some((o, b) => o !== before.owners[b]);
    const membersChanged =
      !before || before.members.map((m) => m.id).join() !== table.members.map((m) => m.id).join();
    const now = Date.now();
    const drift = ownersChanged && !membersChanged;
    if (drift && now - lastRebalance < options.rebalanceMs) return;
    if (!ownersChanged && !membersChanged && now - lastWrite < options.refreshMs) return;
    if (!membership.isLeader()) return;
    if (await store.writeTable(table, current?.revision ?? 0)) {
      lastWrite = now;
      if (ownersChanged) lastRebalance = now;
      if (ownersChanged || membersChanged) {
        logger.info(
          {
            epoch: table.epoch,
            members: table.members.map((m) => `${m.id}:${m.buckets}`),
            moved: table.moved,
            maxOverFair: Number(table.maxOverFair.toFixed(3)),
          },
          'placement table written',
        );
      }
    }
  }

  const timer = setInterval(() => {
    busy ??= tick()
      .catch((err: unknown) => logger.warn({ err }, 'placement tick failed'))
      .finally(() => (busy = undefined));
  }, options.intervalMs);

  return {
    stop: async () => {
      clearInterval(timer);
      await busy;
    },
  };
}
