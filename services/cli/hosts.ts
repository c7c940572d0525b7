/**
 * `alcor hosts [--vpc v] [--host h] [--stale]`: the fleet's sync view, as
 * `istioctl proxy-status` gives one. For every registered host (or one) and every
 * VPC it takes part in: the latest revision that changed what the host must hold
 * (folded from EVENTS with the owner's own projection), the revision the host last
 * acked (stream ACKS), and what follows from the two:
 *
 * - SYNCED: the host acked that revision or a later one;
 * - STALE: it did not (yet): `lag` is how long ago the revision it misses was decided;
 * - FAILED: its last ack says it could not apply it;
 * - UNKNOWN: no ack is kept, and the revision is older than ACKS keeps acks, so the
 *   logs cannot tell (`alcor check --host <h>` asks the agent itself).
 *
 * It reads the logs only: quick, and safe while the system runs. A host's row is
 * the worst of its VPCs.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { readStreamRange } from '../../infra/index.js';
import {
  DEFAULT_BUCKET_COUNT,
  bindingLabel,
  bucketOf,
  clusterKey,
  readAck,
  streams,
  subjects,
} from '../../shared/index.js';
import { vpc } from '../../actors/index.js';
import { foldVpc } from '../controller/vpcs/history.js';
import { checkId, lastRevision } from './history.js';
import { registeredHosts } from './topology.js';
import { headers, table, wide } from './output.js';

export type SyncState = 'SYNCED' | 'STALE' | 'FAILED' | 'UNKNOWN';

/** What a host must be at for one VPC, and what it acked. */
export interface HostVpcSync {
  vpcId: string;
  /** The latest revision that changed what the host must hold, and when it was decided. */
  latest: number;
  latestAt: string;
  /** The highest revision the host acked as applied (absent: none kept). */
  applied?: number;
  appliedAt?: string;
  state: SyncState;
  /** Milliseconds since the revision the host misses was decided (0 when synced). */
  lagMs: number;
  error?: string;
}

export interface HostSync {
  hostId: string;
  binding: string;
  cluster: string;
  state: SyncState;
  vpcs: HostVpcSync[];
  /** The host's last ack of any VPC, if ACKS keeps one. */
  lastAckAt?: string;
  lagMs: number;
}

export interface HostsReport {
  scope: string;
  /** How long ACKS keeps acks: older revisions without an ack are UNKNOWN, not STALE. */
  acksKeptMs: number;
  hosts: HostSync[];
  counts: Record<SyncState, number>;
}

const SEVERITY: readonly SyncState[] = ['SYNCED', 'UNKNOWN', 'STALE', 'FAILED'];
const worst = (a: SyncState, b: SyncState): SyncState =>
  SEVERITY.indexOf(a) >= SEVERITY.indexOf(b) ? a : b;

export interface AckSeen {
  revision: number;
  status: 'applied' | 'failed';
  at: Date;
  error?: string;
}

/** One host's standing in one VPC (pure: the decision the report is made of). */
export function syncOf(
  latest: { revision: number; at: Date },
  acks: { applied?: AckSeen; failed?: AckSeen },
  now: number,
  acksKeptMs: number,
): Pick<HostVpcSync, 'state' | 'lagMs' | 'error'> {
  const { applied, failed } = acks;
  if (applied && applied.revision >= latest.revision) return { state: 'SYNCED', lagMs: 0 };
  const lagMs = Math.max(0, now - latest.at.getTime());
  if (failed && failed.revision >= latest.revision && (!applied || failed.at >= applied.at))
    return { state: 'FAILED', lagMs, ...(failed.error ? { error: failed.error } : {}) };
  // No ack kept for a revision older than ACKS keeps them: the logs cannot tell.
  if (!applied && lagMs > acksKeptMs) return { state: 'UNKNOWN', lagMs };
  return { state: 'STALE', lagMs };
}

const CONCURRENCY = 16;

/** Every VPC's latest revision per host it reached, folded with the owner's projection. */
type Latest = Map<string, { revision: number; at: Date }>;

async function latestPerHost(
  nc: NatsConnection,
  vpcIds: readonly string[],
): Promise<Map<string, Latest>> {
  const byHost = new Map<string, Latest>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < vpcIds.length) {
      const vpcId = vpcIds[next++]!;
      await foldVpc(
        nc,
        vpcId,
        (r) => {
          for (const hostId of vpc.affectedHosts(r.state, r.messages)) {
            let mine = byHost.get(hostId);
            if (!mine) byHost.set(hostId, (mine = new Map() as Latest));
            mine.set(vpcId, { revision: r.revision, at: r.decidedAt });
          }
          return true;
        },
        undefined,
        DEFAULT_BUCKET_COUNT,
      );
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return byHost;
}

/** The acks ACKS keeps, per host and VPC: the highest applied and the latest failure. */
async function keptAcks(
  nc: NatsConnection,
  filter: string,
): Promise<Map<string, { applied?: AckSeen; failed?: AckSeen }>> {
  const out = new Map<string, { applied?: AckSeen; failed?: AckSeen }>();
  for await (const m of readStreamRange(nc, streams.acks, { filter })) {
    const ack = readAck(m.subject, m.data, DEFAULT_BUCKET_COUNT);
    if (!ack.ok) continue;
    const { hostId, vpcId, revision, status, error } = ack.value;
    const key = `${hostId} ${vpcId}`;
    const seen = out.get(key) ?? {};
    if (status === 'applied') {
      if (!seen.applied || revision >= seen.applied.revision)
        seen.applied = { revision, status, at: m.time };
    } else {
      seen.failed = {
        revision,
        status,
        at: m.time,
        ...(error ? { error: `${error.code}: ${error.message}` } : {}),
      };
    }
    out.set(key, seen);
  }
  return out;
}

export async function hostsReport(
  nc: NatsConnection,
  options: { vpcId?: string; hostId?: string; staleOnly?: boolean; now?: number },
): Promise<HostsReport> {
  if (options.vpcId) await lastRevision(nc, options.vpcId);
  if (options.hostId) checkId(options.hostId, 'host');
  const registered = await registeredHosts(nc, options.hostId);
  const jsm = await jetstreamManager(nc);
  const vpcIds = options.vpcId
    ? [options.vpcId]
    : Object.keys(
        (await jsm.streams.info(streams.events, { subjects_filter: subjects.eventsAll })).state
          .subjects ?? {},
      )
        .map((s) => s.slice(s.indexOf('.') + 1))
        .sort();
  const acksKeptMs = Math.round((await jsm.streams.info(streams.acks)).config.max_age / 1e6);
  const latest = await latestPerHost(nc, vpcIds);
  const acks = await keptAcks(
    nc,
    options.vpcId
      ? subjects.acksOfVpc(bucketOf(options.vpcId, DEFAULT_BUCKET_COUNT), options.vpcId)
      : options.hostId
        ? subjects.acksOfHost(options.hostId)
        : subjects.acksAll,
  );
  const now = options.now ?? Date.now();
  const counts: Record<SyncState, number> = { SYNCED: 0, STALE: 0, FAILED: 0, UNKNOWN: 0 };
  const hosts: HostSync[] = [];
  for (const host of registered) {
    const vpcs: HostVpcSync[] = [];
    let lastAck: Date | undefined;
    for (const [vpcId, at] of [...(latest.get(host.hostId) ?? (new Map() as Latest))].sort(
      ([a], [b]) => a.localeCompare(b),
    )) {
      const seen = acks.get(`${host.hostId} ${vpcId}`) ?? {};
      for (const a of [seen.applied, seen.failed])
        if (a && (!lastAck || a.at > lastAck)) lastAck = a.at;
      vpcs.push({
        vpcId,
        latest: at.revision,
        latestAt: at.at.toISOString(),
        ...(seen.applied
          ? { applied: seen.applied.revision, appliedAt: seen.applied.at.toISOString() }
          : {}),
        ...syncOf(at, seen, now, acksKeptMs),
      });
    }
    const state = vpcs.reduce<SyncState>((s, v) => worst(s, v.state), 'SYNCED');
    counts[state] += 1;
    if (options.staleOnly && state === 'SYNCED') continue;
    hosts.push({
      hostId: host.hostId,
      binding: bindingLabel(host),
      cluster: clusterKey(host),
      state,
      vpcs,
      ...(lastAck ? { lastAckAt: lastAck.toISOString() } : {}),
      lagMs: Math.max(0, ...vpcs.map((v) => v.lagMs)),
    });
  }
  hosts.sort((a, b) => a.hostId.localeCompare(b.hostId));
  return {
    scope: options.vpcId
      ? `VPC ${options.vpcId}`
      : options.hostId
        ? `host ${options.hostId}`
        : `${vpcIds.length} VPC(s)`,
    acksKeptMs,
    hosts,
    counts,
  };
}

/** `12s`, `3m`, `2h`: an age or a lag at a glance. */
export function age(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m`;
  return `${Math.round(ms / 3_600_000)}h`;
}

export function renderHosts(r: HostsReport, now = Date.now()): string {
  const since = (iso?: string): string => (iso ? age(now - Date.parse(iso)) : '-');
  const perVpc = r.hosts.length === 1 || r.scope.startsWith('VPC') || wide();
  const lines: string[] = [];
  if (perVpc) {
    lines.push(
      table(
        [
          'HOST',
          'BINDING',
          ...(wide() ? ['CLUSTER'] : []),
          'VPC',
          'APPLIED',
          'LATEST',
          'STATE',
          'LAG',
          'LAST ACK',
        ],
        r.hosts.flatMap((h) =>
          (h.vpcs.length > 0 ? h.vpcs : [undefined]).map((v) => [
            h.hostId,
            h.binding,
            ...(wide() ? [h.cluster] : []),
            v?.vpcId ?? '-',
            v?.applied ?? '-',
            v?.latest ?? '-',
            v ? v.state + (v.error ? ` (${v.error.slice(0, 60)})` : '') : h.state,
            v && v.lagMs > 0 ? age(v.lagMs) : '-',
            since(v?.appliedAt ?? h.lastAckAt),
          ]),
        ),
      ),
    );
  } else {
    lines.push(
      table(
        ['HOST', 'BINDING', 'VPCS', 'SYNCED', 'STATE', 'LAG', 'LAST ACK'],
        r.hosts.map((h) => [
          h.hostId,
          h.binding,
          h.vpcs.length,
          `${h.vpcs.filter((v) => v.state === 'SYNCED').length}/${h.vpcs.length}`,
          h.state,
          h.lagMs > 0 ? age(h.lagMs) : '-',
          since(h.lastAckAt),
        ]),
      ),
    );
  }
  const c = r.counts;
  if (headers())
    lines.push(
      `${c.SYNCED} synced, ${c.STALE} stale, ${c.FAILED} failed, ${c.UNKNOWN} unknown (no ack kept: ACKS keeps ${age(r.acksKeptMs)}) over ${r.scope}`,
    );
  return lines.join('\n');
}
