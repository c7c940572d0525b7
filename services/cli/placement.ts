/**
 * `alcor placement`: the members (alive or not, leader), their loads against their
 * fair shares, max/avg, and with `--buckets` the bucket table with each bucket's
 * handoff state — read from KV `placement` and KV `controllers`.
 */
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { createLogger, createPlacementStore, listMembers, readLeader } from '../../infra/index.js';
import { decodePlacementTable, kvBuckets } from '../../shared/index.js';
import { CliError, EXIT, fixed, table } from './output.js';

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

export function renderPlacement(r: PlacementReport): string {
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
  return lines.join('\n');
}
