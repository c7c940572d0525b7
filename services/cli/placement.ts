/**
 * `alcor placement`: the controller members (alive or not, leader), their loads
 * against their fair shares, max/avg, and with `--buckets` the bucket table with
 * each bucket's handoff state — read from KV `placement` and KV `controllers`;
 * then the southbound modules and the topology partitions each relays (KV
 * `placement` key `southbound.table`, KV `southbound`), every partition with
 * `--partitions`.
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  createLogger,
  createPlacementStore,
  listMembers,
  readLeader,
  type Logger,
} from '../../infra/index.js';
import {
  decodePlacementTable,
  decodeSouthboundTable,
  kvBuckets,
  southboundKeys,
} from '../../shared/index.js';
import { CliError, EXIT, few, fixed, table } from './output.js';

/**
 * The southbound's placement: which module relays which topology partitions
 * (clusters with Kafka-bound hosts, weighted by those hosts).
 */
export interface SouthboundPlacement {
  epoch: number;
  writtenBy: string;
  writtenAt: string;
  leader: string | null;
  maxOverFair: number;
  /** Modules alive or named by the table, by id. */
  members: Array<{
    id: string;
    alive: boolean;
    /** Its capacity, while it is alive. */
    capacity?: number;
    /** The partitions (cluster keys) it owns, sorted. */
    partitions: string[];
    /** Kafka-bound hosts in them (the partitions' weights). */
    weight: number;
    /** weight / its fair share of the alive modules' capacity (alive only). */
    loadOverFair?: number;
  }>;
  /** Every partition, sorted: its owner and weight. */
  partitions: Array<{ partition: string; owner: string; ownerAlive: boolean; weight: number }>;
}

export interface PlacementReport {
  epoch: number;
  writtenBy: string;
  writtenAt: string;
  leader: string | null;
  epsilon: number;
  maxOverFair: number;
  maxOverAvg: number;
  members: Array<{
    id: string;
    alive: boolean;
    capacity: number;
    buckets: number;
    load: number;
    fair: number;
    loadOverFair: number;
  }>;
  buckets?: Array<{
    bucket: number;
    owner: string;
    since: number;
    weight: number;
    handoff: string;
  }>;
  /** The southbound modules and their partitions; null when no module has placed any. */
  southbound: SouthboundPlacement | null;
}

export async function placementReport(
  nc: NatsConnection,
  withBuckets: boolean,
): Promise<PlacementReport> {
  const kvm = new Kvm(nc);
  const placement = await kvm.open(kvBuckets.placement);
  const entry = await placement.get('table');
  if (!entry || entry.operation !== 'PUT') {
    throw new CliError(
      'no placement table yet: start a controller without ALCOR_BUCKETS (it takes part in placement)',
      EXIT.notFound,
    );
  }
  const parsed = decodePlacementTable(entry.value);
  if (!parsed.ok) throw new CliError(`the placement table is unreadable: ${parsed.error.message}`);
  const t = parsed.value;
  const quiet = createLogger({ name: 'alcor-cli', level: 'silent' });
  const alive = new Set(
    (await listMembers(nc, kvBuckets.controllers, quiet)).map((m) => m.record.id),
  );
  const avg = t.members.reduce((s, m) => s + m.load, 0) / Math.max(1, t.members.length);
  const report: PlacementReport = {
    epoch: t.epoch,
    writtenBy: t.leader,
    writtenAt: t.at,
    leader: (await readLeader(nc, kvBuckets.controllers))?.id ?? null,
    epsilon: t.epsilon,
    maxOverFair: fixed(t.maxOverFair, 4),
    maxOverAvg: fixed(Math.max(0, ...t.members.map((m) => m.load)) / (avg || 1), 4),
    members: t.members.map((m) => ({
      id: m.id,
      alive: alive.has(m.id),
      capacity: m.capacity,
      buckets: m.buckets,
      load: fixed(m.load, 1),
      fair: fixed(m.fair, 1),
      loadOverFair: fixed(m.fair > 0 ? m.load / m.fair : 1, 3),
    })),
    southbound: await southboundPlacement(nc, placement, quiet),
  };
  if (withBuckets) {
    const handoffs = await (await createPlacementStore(nc, quiet)).readHandoffs();
    report.buckets = t.owners.map((owner, b) => {
      const h = handoffs.get(b);
      return {
        bucket: b,
        owner,
        since: t.since[b] ?? 0,
        weight: fixed(t.weights[b] ?? 0, 1),
        handoff: h ? `${h.state} by ${h.owner}/${h.incarnation} floor ${h.floor}` : 'none',
      };
    });
  }
  return report;
}

/** The southbound table with its members' liveness; null if no module wrote one yet. */
export async function southboundPlacement(
  nc: NatsConnection,
  placement: KV,
  quiet: Logger,
): Promise<SouthboundPlacement | null> {
  const entry = await placement.get(southboundKeys.table);
  if (!entry || entry.operation !== 'PUT' || entry.length === 0) return null;
  const parsed = decodeSouthboundTable(entry.value);
  if (!parsed.ok) throw new CliError(`the southbound table is unreadable: ${parsed.error.message}`);
  const t = parsed.value;
  const live = new Map(
    (await listMembers(nc, kvBuckets.southbound, quiet)).map((m) => [m.record.id, m.record]),
  );
  const partitions = Object.entries(t.owners)
    .map(([partition, owner]) => ({
      partition,
      owner,
      ownerAlive: live.has(owner),
      weight: t.weights[partition] ?? 0,
    }))
    .sort((a, b) => a.partition.localeCompare(b.partition));
  const ids = [...new Set([...live.keys(), ...partitions.map((p) => p.owner)])].sort();
  const total = partitions.reduce((n, p) => n + p.weight, 0);
  const capacity = [...live.values()].reduce((n, m) => n + m.capacity, 0);
  return {
    epoch: t.epoch,
    writtenBy: t.leader,
    writtenAt: t.at,
    leader: (await readLeader(nc, kvBuckets.southbound))?.id ?? null,
    maxOverFair: fixed(t.maxOverFair, 4),
    members: ids.map((id) => {
      const mine = partitions.filter((p) => p.owner === id);
      const weight = mine.reduce((n, p) => n + p.weight, 0);
      const record = live.get(id);
      const fair = record && capacity > 0 ? (total * record.capacity) / capacity : 0;
      return {
        id,
        alive: record !== undefined,
        ...(record ? { capacity: record.capacity } : {}),
        partitions: mine.map((p) => p.partition),
        weight,
        ...(record ? { loadOverFair: fixed(fair > 0 ? weight / fair : 1, 3) } : {}),
      };
    }),
    partitions,
  };
}

function renderSouthbound(s: SouthboundPlacement | null, all: boolean): string[] {
  if (!s)
    return [
      'southbound: no partitions placed (no southbound module running, or no Kafka-bound hosts)',
    ];
  const lines = [
    `southbound epoch ${s.epoch}, written by ${s.writtenBy} at ${s.writtenAt}; leader now: ${s.leader ?? 'none'}; ${s.partitions.length} partition(s)`,
    '',
    table(
      ['MODULE', 'ALIVE', 'CAPACITY', 'PARTITIONS', 'HOSTS', 'LOAD/FAIR', 'OWNS'],
      s.members.map((m) => [
        m.id,
        m.alive ? 'yes' : 'no',
        m.capacity ?? '-',
        m.partitions.length,
        m.weight,
        m.loadOverFair ?? '-',
        few(m.partitions),
      ]),
    ),
    '',
    `max load/fair ${s.maxOverFair}`,
  ];
  if (all)
    lines.push(
      '',
      table(
        ['PARTITION', 'MODULE', 'ALIVE', 'HOSTS'],
        s.partitions.map((p) => [p.partition, p.owner, p.ownerAlive ? 'yes' : 'no', p.weight]),
      ),
    );
  return lines;
}

export function renderPlacement(
  r: PlacementReport,
  options: { partitions?: boolean } = {},
): string {
  const lines = [
    `placement epoch ${r.epoch}, written by ${r.writtenBy} at ${r.writtenAt}; leader now: ${r.leader ?? 'none'}; ε = ${r.epsilon}`,
    '',
    table(
      ['MEMBER', 'ALIVE', 'CAPACITY', 'BUCKETS', 'LOAD', 'FAIR', 'LOAD/FAIR'],
      r.members.map((m) => [
        m.id,
        m.alive ? 'yes' : 'no',
        m.capacity,
        m.buckets,
        m.load,
        m.fair,
        m.loadOverFair,
      ]),
    ),
    '',
    `max/avg ${r.maxOverAvg}   max load/fair ${r.maxOverFair}`,
  ];
  if (r.buckets) {
    lines.push(
      '',
      table(
        ['BUCKET', 'OWNER', 'SINCE EPOCH', 'WEIGHT', 'HANDOFF'],
        r.buckets.map((b) => [b.bucket, b.owner, b.since, b.weight, b.handoff]),
      ),
    );
  }
  lines.push('', ...renderSouthbound(r.southbound, options.partitions ?? false));
  return lines.join('\n');
}
