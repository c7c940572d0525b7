/**
 * Replay from the logs (DESIGN §1.3): a VPC's state as of a revision or a time
 * (`alcor vpc show --at`), and its timeline (`alcor replay vpc`): each intent,
 * its decision and the goal states it produced. Both fold EVENTS with the same
 * `evolve` and `project` the VPC actor runs, so what they show is what the owner
 * computed.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  isMulticast,
  isId,
  streams,
  subjects,
  type EventCommit,
  type GoalStateEnvelope as ProjectedMessage,
} from '../../shared/index.js';
import { vpc } from '../../actors/index.js';
import { foldVpc, type Point, type Replayed } from '../controller/vpcs/history.js';
import { CliError, EXIT, table } from './output.js';

export { foldVpc, type Point, type Replayed } from '../controller/vpcs/history.js';

const RELATIVE = /^-(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * `--at`/`--from`/`--to`: a revision (a whole number), an ISO 8601 time, or a time
 * relative to now (`-30s`, `-10m`, `-2h`, `-1d`). Throws a message for the CLI.
 */
export function parsePoint(text: string): Point {
  if (/^\d+$/.test(text)) return { revision: Number(text) };
  const rel = RELATIVE.exec(text);
  if (rel) return { time: new Date(Date.now() - Number(rel[1]) * UNIT_MS[rel[2] as 's']) };
  const ms = Date.parse(text);
  if (Number.isNaN(ms))
    throw new Error(
      `${JSON.stringify(text)} is neither a revision (a whole number), an ISO 8601 time, nor a relative time like -10m`,
    );
  return { time: new Date(ms) };
}

export const describePoint = (p: Point): string =>
  'revision' in p ? `revision ${p.revision}` : p.time.toISOString();

/** A usage error for an id that cannot be one (it would widen a subject). */
export function checkId(value: string, what: string): void {
  if (!isId(value))
    throw new CliError(
      `${JSON.stringify(value)} is not a ${what} id (letters, digits, _ and -, 1 to 64)`,
      EXIT.usage,
    );
}

/** The VPC's last revision; not found (exit 3) when EVENTS has nothing of it. */
export async function lastRevision(nc: NatsConnection, vpcId: string): Promise<number> {
  checkId(vpcId, 'VPC');
  const jsm = await jetstreamManager(nc);
  const last = await jsm.direct
    .getMessage(streams.events, { last_by_subj: subjects.event(vpcId) })
    .catch((err: unknown) => {
      if ((err as { code?: number }).code === 404) return null;
      throw err;
    });
  if (!last)
    throw new CliError(
      `no VPC ${vpcId} in EVENTS: nothing was ever decided for it (check the id; \`alcor apply\` creates it)`,
      EXIT.notFound,
    );
  return last.seq;
}

// ── vpc show ────────────────────────────────────────────────────────────────

export interface VpcReport {
  vpcId: string;
  /** The revision shown, and the VPC's last one. */
  revision: number;
  lastRevision: number;
  /** What `--at` asked for, when it did: the revision shown is the VPC's last at or before it. */
  asked?: { revision?: number; time?: string };
  decidedAt?: string;
  status: vpc.VpcState['status'];
  cidr?: string;
  vni?: number;
  subnets: Array<{ subnetId: string; cidr: string; gatewayIp: string; ports: number; rev: number }>;
  ports: Array<{
    portId: string;
    subnetId: string;
    ip: string;
    mac: string;
    hostId: string;
    securityGroupIds: string[];
    rev: number;
  }>;
  securityGroups: Array<{ sgId: string; rules: number; members: number; rev: number }>;
  routes: Array<{ destination: string; nextHop: string; rev: number }>;
  hosts: Array<{ hostId: string; cluster: string; ports: number }>;
}

export async function vpcShow(nc: NatsConnection, vpcId: string, at?: Point): Promise<VpcReport> {
  const last = await lastRevision(nc, vpcId);
  if (at && 'revision' in at && at.revision > last) {
    const logLast = (await (await jetstreamManager(nc)).streams.info(streams.events)).state
      .last_seq;
    if (at.revision > logLast)
      throw new CliError(
        `revision ${at.revision} is past the last revision of EVENTS (${logLast}); ${vpcId}'s last is ${last} (omit --at for the latest)`,
        EXIT.usage,
      );
  }
  let shown: Replayed | undefined;
  const state = await foldVpc(
    nc,
    vpcId,
    (r) => {
      shown = r;
      return true;
    },
    at,
  );
  if (!shown) {
    const jsm = await jetstreamManager(nc);
    const first = await jsm.direct.getMessage(streams.events, {
      seq: 1,
      next_by_subj: subjects.event(vpcId),
    });
    throw new CliError(
      `${vpcId} did not exist yet at ${at ? describePoint(at) : 'that point'}: its first revision is ${first?.seq ?? last}${
        first ? ` (${first.time.toISOString()})` : ''
      }`,
      EXIT.usage,
    );
  }
  return {
    vpcId,
    revision: shown.revision,
    lastRevision: last,
    ...(at
      ? { asked: 'revision' in at ? { revision: at.revision } : { time: at.time.toISOString() } }
      : {}),
    decidedAt: shown.decidedAt.toISOString(),
    status: state.status,
    ...(state.status === 'absent' ? {} : { cidr: state.cidr, vni: state.vni }),
    subnets: [...state.subnets.values()].map((s) => ({
      subnetId: s.subnetId,
      cidr: s.cidr,
      gatewayIp: s.gatewayIp,
      ports: s.portCount,
      rev: s.rev,
    })),
    ports: [...state.ports.values()].map((p) => ({
      portId: p.portId,
      subnetId: p.subnetId,
      ip: p.ip,
      mac: p.mac,
      hostId: p.hostId,
      securityGroupIds: p.securityGroupIds,
      rev: p.rev,
    })),
    securityGroups: [...state.groups.values()].map((g) => ({
      sgId: g.sgId,
      rules: g.rules.length,
      members: state.groupMembers.get(g.sgId)?.size ?? 0,
      rev: g.rev,
    })),
    routes: [...state.routes.values()].map((r) => ({
      destination: r.destination,
      nextHop: r.nextHop,
      rev: r.rev,
    })),
    hosts: [...state.hosts].map(([hostId, h]) => ({
      hostId,
      cluster: [h.place.region, h.place.az, h.place.dc, h.place.cluster].join('.'),
      ports: h.ports.size,
    })),
  };
}

const section = (title: string, n: number, body: string): string =>
  n === 0 ? `${title}: none` : `${title} (${n}):\n${body.replace(/^/gm, '  ')}`;

/** Why the revision shown is not the one `--at` named: the VPC's last at or before it. */
function asShown(r: VpcReport): string {
  if (r.asked?.time)
    return `\n(as of ${r.asked.time}: the last revision of ${r.vpcId} decided by then)`;
  const asked = r.asked?.revision;
  if (asked === undefined || asked === r.revision) return '';
  return `\n(revision ${asked} is not one of ${r.vpcId}'s — revisions are EVENTS sequences, shared by every VPC — so this is its last at or before ${asked})`;
}

export function renderVpc(r: VpcReport): string {
  const head = `VPC ${r.vpcId}  ${r.status}${r.cidr ? `  ${r.cidr}  vni ${r.vni}` : ''}\nrevision ${r.revision}${
    r.revision === r.lastRevision ? ' (latest)' : ` of ${r.lastRevision}`
  }  decided ${r.decidedAt}${asShown(r)}`;
  return [
    head,
    section(
      'subnets',
      r.subnets.length,
      table(
        ['SUBNET', 'CIDR', 'GATEWAY', 'PORTS', 'REV'],
        r.subnets.map((s) => [s.subnetId, s.cidr, s.gatewayIp, s.ports, s.rev]),
      ),
    ),
    section(
      'ports',
      r.ports.length,
      table(
        ['PORT', 'SUBNET', 'IP', 'MAC', 'HOST', 'GROUPS', 'REV'],
        r.ports.map((p) => [
          p.portId,
          p.subnetId,
          p.ip,
          p.mac,
          p.hostId,
          p.securityGroupIds.join(',') || '-',
          p.rev,
        ]),
      ),
    ),
    section(
      'security groups',
      r.securityGroups.length,
      table(
        ['GROUP', 'RULES', 'MEMBERS', 'REV'],
        r.securityGroups.map((g) => [g.sgId, g.rules, g.members, g.rev]),
      ),
    ),
    section(
      'routes',
      r.routes.length,
      table(
        ['DESTINATION', 'NEXT HOP', 'REV'],
        r.routes.map((x) => [x.destination, x.nextHop, x.rev]),
      ),
    ),
    section(
      'hosts',
      r.hosts.length,
      table(
        ['HOST', 'CLUSTER', 'PORTS'],
        r.hosts.map((h) => [h.hostId, h.cluster, h.ports]),
      ),
    ),
  ].join('\n');
}

// ── replay vpc ──────────────────────────────────────────────────────────────

export interface TimelineEntry {
  revision: number;
  decidedAt: string;
  receivedAt: string;
  intentId: string;
  kind: string;
  outcome: 'accepted' | 'rejected';
  error?: { code: string; message: string; path?: string };
  events: string[];
  /** Goal states produced: unicast targets (hosts) and multicast targets (clusters). */
  goalStates: { unicast: string[]; multicast: string[]; hosts: number };
}

export interface VpcTimeline {
  vpcId: string;
  lastRevision: number;
  entries: TimelineEntry[];
}

/** A rejected commit's reason as an error detail (`{}` for an accepted one, to spread). */
export function rejectionOf(commit: EventCommit): {
  error?: { code: string; message: string; path?: string };
} {
  const first = commit.events[0];
  if (first?.type !== 'IntentRejected') return {};
  return {
    error: {
      code: first.code,
      message: first.message,
      ...(first.path ? { path: first.path } : {}),
    },
  };
}

/** Goal-state targets of a commit: hosts (unicast) and clusters (multicast; keys have dots). */
export function targetsOf(messages: readonly ProjectedMessage[]): {
  unicast: string[];
  multicast: string[];
} {
  const unicast: string[] = [];
  const multicast: string[] = [];
  for (const { message } of messages)
    (isMulticast(message.target) ? multicast : unicast).push(message.target);
  return { unicast, multicast };
}

export async function replayVpc(
  nc: NatsConnection,
  vpcId: string,
  from?: Point,
  to?: Point,
): Promise<VpcTimeline> {
  const last = await lastRevision(nc, vpcId);
  for (const p of [from, to]) {
    if (p && 'revision' in p && p.revision > last)
      throw new CliError(
        `revision ${p.revision} is past ${vpcId}'s last revision ${last}`,
        EXIT.usage,
      );
  }
  const entries: TimelineEntry[] = [];
  await foldVpc(
    nc,
    vpcId,
    (r) => {
      const before =
        from &&
        ('revision' in from
          ? r.revision < from.revision
          : r.decidedAt.getTime() < from.time.getTime());
      if (before) return true;
      const rejection = rejectionOf(r.commit);
      entries.push({
        revision: r.revision,
        decidedAt: r.decidedAt.toISOString(),
        receivedAt: r.commit.at,
        intentId: r.commit.intentId,
        kind: r.commit.kind,
        outcome: rejection.error ? 'rejected' : 'accepted',
        ...rejection,
        events: r.commit.events.map((e) => e.type),
        goalStates: {
          ...targetsOf(r.messages),
          hosts: vpc.affectedHosts(r.state, r.messages).length,
        },
      });
      return true;
    },
    to,
  );
  return { vpcId, lastRevision: last, entries };
}

const list = (xs: string[], max = 4): string =>
  xs.length <= max ? xs.join(',') : `${xs.slice(0, max).join(',')},… (${xs.length})`;

export function renderTimeline(t: VpcTimeline): string {
  if (t.entries.length === 0)
    return `${t.vpcId}: no decisions in that range (last revision ${t.lastRevision})`;
  return table(
    ['REV', 'DECIDED', 'INTENT', 'KIND', 'OUTCOME', 'EVENTS / REASON', 'GOAL STATES'],
    t.entries.map((e) => [
      e.revision,
      e.decidedAt.slice(11, 23),
      e.intentId,
      e.kind,
      e.outcome,
      e.error ? `${e.error.code}${e.error.path ? ` at ${e.error.path}` : ''}` : e.events.join(','),
      e.goalStates.unicast.length + e.goalStates.multicast.length === 0
        ? '-'
        : `${e.goalStates.hosts} host(s): unicast ${list(e.goalStates.unicast)} multicast ${list(e.goalStates.multicast)}`,
    ]),
  );
}
