/**
 * Following work through the logs:
 * - `alcor trace <intent>`: intent → decision → goal states → each host's ack,
 *   with the time of every stage (INTENTS receipt in the commit, EVENTS, STATUS,
 *   GOALSTATES, ACKS);
 * - `alcor replay host <host>`: what the host was sent and when (GOALSTATES), and
 *   what it answered (ACKS).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { INTENT_ID_HEADER, createHostDirectory, readStreamRange } from '../../infra/index.js';
import {
  bindingLabel,
  bucketOf,
  decodeGoalState,
  streams,
  subjects,
  type GoalStateAck,
  type HostRecord,
  type Status,
} from '../../shared/index.js';
import { vpc } from '../../actors/index.js';
import {
  checkId,
  foldVpc,
  lastRevision,
  rejectionOf,
  type Point,
  type Replayed,
} from './history.js';
import { CliError, EXIT, table } from './output.js';

const decoder = new TextDecoder();
const json = <T>(data: Uint8Array): T => JSON.parse(decoder.decode(data)) as T;
/** Goal states and acks are looked for from a little before the decision (clock steps). */
const SLACK_MS = 2000;

/** Every status of a VPC, or of every VPC (slow: the whole STATUS stream), for one intent. */
async function statusesOf(nc: NatsConnection, intentId: string, vpcId?: string) {
  const out: Array<{ status: Status; at: Date }> = [];
  for await (const m of readStreamRange(nc, streams.status, {
    filter: vpcId ? subjects.status(vpcId) : subjects.statusAll,
  })) {
    if (m.headers?.get(INTENT_ID_HEADER) !== intentId) continue;
    out.push({ status: json<Status>(m.data), at: m.time });
  }
  return out;
}

export interface TraceReport {
  intentId: string;
  vpcId: string;
  kind?: string;
  revision?: number;
  outcome: string;
  error?: { code: string; message: string; path?: string };
  /** Each stage with its time and milliseconds since the intent was received. */
  stages: Array<{ stage: string; at: string; ms: number; detail?: string }>;
  goalStates: Array<{
    subject: string;
    target: string;
    mode: string;
    ops: number;
    storedAt?: string;
    ms?: number;
  }>;
  hosts: Array<{
    hostId: string;
    binding: string;
    ack: 'applied' | 'failed' | 'none';
    at?: string;
    ms?: number;
    error?: string;
  }>;
}

export async function trace(
  nc: NatsConnection,
  intentId: string,
  vpcHint?: string,
): Promise<TraceReport> {
  checkId(intentId, 'intent');
  if (vpcHint) await lastRevision(nc, vpcHint);
  const statuses = await statusesOf(nc, intentId, vpcHint);
  const vpcId = vpcHint ?? statuses[0]?.status.vpcId;
  if (!vpcId)
    throw new CliError(
      `no trace of intent ${intentId} in STATUS: not decided yet, older than STATUS keeps, or unknown (pass --vpc to look in EVENTS too)`,
      EXIT.notFound,
    );
  let found: (Replayed & { hosts: string[] }) | undefined;
  await foldVpc(nc, vpcId, (r) => {
    if (r.commit.intentId !== intentId) return true;
    found = { ...r, hosts: vpc.affectedHosts(r.state, r.messages) };
    return false;
  });
  if (!found) {
    const refused = statuses.find((s) => s.status.outcome === 'rejected');
    if (!refused)
      throw new CliError(
        `no trace of intent ${intentId} in ${vpcId}'s EVENTS or STATUS`,
        EXIT.notFound,
      );
    // Refused before any VPC actor took it (bad subject token, wrong bucket).
    return {
      intentId,
      vpcId,
      outcome: 'rejected',
      ...(refused.status.error ? { error: refused.status.error } : {}),
      stages: [{ stage: 'refused at intake', at: refused.at.toISOString(), ms: 0 }],
      goalStates: [],
      hosts: [],
    };
  }
  const { commit, revision, decidedAt, messages, hosts } = found;
  const received = Date.parse(commit.at);
  const since = (t: Date): number => t.getTime() - received;
  const stages: TraceReport['stages'] = [
    { stage: 'received (INTENTS)', at: commit.at, ms: 0 },
    {
      stage: 'decided (EVENTS)',
      at: decidedAt.toISOString(),
      ms: since(decidedAt),
      detail: `revision ${revision}: ${commit.events.map((e) => e.type).join(', ')}`,
    },
  ];
  const rejection = rejectionOf(commit);

  // The goal states as GOALSTATES stored them.
  const wanted = new Map(messages.map((m) => [m.msgId, m]));
  const stored = new Map<string, Date>();
  if (wanted.size > 0) {
    for await (const m of readStreamRange(nc, streams.goalStates, {
      filter: [...new Set(messages.map((m) => m.subject))],
      fromTime: new Date(decidedAt.getTime() - SLACK_MS),
    })) {
      if (m.msgId && wanted.has(m.msgId)) stored.set(m.msgId, m.time);
      if (stored.size === wanted.size) break;
    }
    const times = [...stored.values()].map((t) => t.getTime()).sort((a, b) => a - b);
    if (times.length > 0) {
      stages.push({
        stage: 'goal states stored (GOALSTATES)',
        at: new Date(times.at(-1)!).toISOString(),
        ms: times.at(-1)! - received,
        detail: `${stored.size} of ${wanted.size} message(s) for ${hosts.length} host(s)`,
      });
    }
  }

  // Each affected host's first ack that covers this revision.
  const acks = new Map<string, { ack: GoalStateAck; at: Date }>();
  if (hosts.length > 0) {
    const waiting = new Set(hosts);
    for await (const m of readStreamRange(nc, streams.acks, {
      filter: `gsack.${bucketOf(vpcId)}.${vpcId}.*`,
      fromTime: new Date(decidedAt.getTime() - SLACK_MS),
    })) {
      const ack = json<GoalStateAck>(m.data);
      const covers = ack.revision === revision || (ack.mode === 'full' && ack.revision > revision);
      if (!covers || !waiting.delete(ack.hostId)) continue;
      acks.set(ack.hostId, { ack, at: m.time });
      if (waiting.size === 0) break;
    }
  }
  for (const s of statuses) {
    stages.push({
      stage: `${s.status.outcome} (STATUS)`,
      at: s.at.toISOString(),
      ms: since(s.at),
      ...(s.status.hosts
        ? {
            detail: `hosts ${s.status.hosts.applied}/${s.status.hosts.total} applied${
              s.status.hosts.failed ? `, ${s.status.hosts.failed} failed` : ''
            }${s.status.hosts.pending ? `, ${s.status.hosts.pending} pending` : ''}`,
          }
        : {}),
    });
  }
  stages.sort((a, b) => a.ms - b.ms);
  const directory = await createHostDirectory(nc);
  try {
    const last = statuses.at(-1)?.status.outcome;
    return {
      intentId,
      vpcId,
      kind: commit.kind,
      revision,
      outcome: rejection.error ? 'rejected' : (last ?? 'accepted'),
      ...rejection,
      stages,
      goalStates: messages.map((m) => {
        const at = stored.get(m.msgId);
        return {
          subject: m.subject,
          target: m.message.target,
          mode: m.message.mode,
          ops: m.message.ops.length,
          ...(at ? { storedAt: at.toISOString(), ms: since(at) } : {}),
        };
      }),
      hosts: hosts.sort().map((hostId) => {
        const record = directory.record(hostId);
        const a = acks.get(hostId);
        return {
          hostId,
          binding: record ? bindingLabel(record) : 'unregistered',
          ack: a ? a.ack.status : 'none',
          ...(a ? { at: a.at.toISOString(), ms: since(a.at) } : {}),
          ...(a?.ack.error ? { error: `${a.ack.error.code}: ${a.ack.error.message}` } : {}),
        };
      }),
    };
  } finally {
    await directory.stop();
  }
}

export function renderTrace(t: TraceReport): string {
  const head = `intent ${t.intentId}  VPC ${t.vpcId}${t.kind ? `  ${t.kind}` : ''}${
    t.revision ? `  revision ${t.revision}` : ''
  }  → ${t.outcome}${t.error ? ` (${t.error.code}${t.error.path ? ` at ${t.error.path}` : ''}: ${t.error.message})` : ''}`;
  const parts = [
    head,
    table(
      ['STAGE', 'AT', '+MS', 'DETAIL'],
      t.stages.map((s) => [s.stage, s.at.slice(11, 23), s.ms, s.detail ?? '']),
    ),
  ];
  if (t.goalStates.length > 0)
    parts.push(
      `goal states (${t.goalStates.length}):\n${table(
        ['SUBJECT', 'MODE', 'OPS', 'STORED +MS'],
        t.goalStates.map((g) => [g.subject, g.mode, g.ops, g.ms ?? 'not found']),
      ).replace(/^/gm, '  ')}`,
    );
  if (t.hosts.length > 0) {
    const acked = t.hosts.filter((h) => h.ack === 'applied').length;
    parts.push(
      `hosts (${acked}/${t.hosts.length} applied):\n${table(
        ['HOST', 'BINDING', 'ACK', '+MS', 'ERROR'],
        t.hosts.map((h) => [h.hostId, h.binding, h.ack, h.ms ?? '-', h.error ?? '']),
      ).replace(/^/gm, '  ')}`,
    );
  }
  return parts.join('\n');
}

// ── replay host ─────────────────────────────────────────────────────────────

export interface HostTimelineEntry {
  at: string;
  /** `sent` (a goal state stored for the host) or `ack`. */
  what: 'sent' | 'ack';
  vpcId: string;
  revision: number;
  mode?: string;
  /** unicast or multicast (the cluster's message of a VPC the host held). */
  via?: 'unicast' | 'multicast';
  ops?: number;
  status?: string;
  error?: string;
}

export interface HostTimeline {
  hostId: string;
  binding: string;
  cluster: string;
  entries: HostTimelineEntry[];
}

export async function replayHost(
  nc: NatsConnection,
  hostId: string,
  from?: Point,
  to?: Point,
): Promise<HostTimeline> {
  checkId(hostId, 'host');
  for (const p of [from, to])
    if (p && 'revision' in p)
      throw new CliError(
        'replay host takes times for --from/--to (ISO 8601 or -10m): a revision belongs to one VPC',
        EXIT.usage,
      );
  const directory = await createHostDirectory(nc);
  let record: HostRecord | undefined;
  try {
    record = directory.record(hostId);
  } finally {
    await directory.stop();
  }
  if (!record)
    throw new CliError(
      `no host ${hostId} in the topology registry (alcor topology show --hosts)`,
      EXIT.notFound,
    );
  const inRange = (t: Date): boolean =>
    (!from || !('time' in from) || t >= from.time) && (!to || !('time' in to) || t <= to.time);
  const unicast = subjects.goalStateHost(record, hostId);
  const entries: HostTimelineEntry[] = [];
  // Membership follows the host's full states (a full with ops: it holds the VPC).
  const holds = new Set<string>();
  for await (const m of readStreamRange(nc, streams.goalStates, {
    filter: [unicast, subjects.goalStatesOfCluster(record)[1]!],
  })) {
    const parsed = decodeGoalState(m.data);
    if (!parsed.ok) continue;
    const g = parsed.value;
    const direct = m.subject === unicast;
    if (direct && g.mode === 'full') {
      if (g.ops.length > 0) holds.add(g.vpcId);
      else holds.delete(g.vpcId);
    }
    if (!direct && !holds.has(g.vpcId)) continue;
    if (!inRange(m.time)) continue;
    entries.push({
      at: m.time.toISOString(),
      what: 'sent',
      vpcId: g.vpcId,
      revision: g.revision,
      mode: g.mode,
      via: direct ? 'unicast' : 'multicast',
      ops: g.ops.length,
    });
  }
  for await (const m of readStreamRange(nc, streams.acks, {
    filter: subjects.acksOfHost(hostId),
    ...(from && 'time' in from ? { fromTime: from.time } : {}),
  })) {
    if (!inRange(m.time)) continue;
    const ack = json<GoalStateAck>(m.data);
    entries.push({
      at: m.time.toISOString(),
      what: 'ack',
      vpcId: ack.vpcId,
      revision: ack.revision,
      ...(ack.mode ? { mode: ack.mode } : {}),
      status: ack.status,
      ...(ack.error ? { error: `${ack.error.code}: ${ack.error.message}` } : {}),
    });
  }
  entries.sort((a, b) => a.at.localeCompare(b.at));
  return {
    hostId,
    binding: bindingLabel(record),
    cluster: [record.region, record.az, record.dc, record.cluster].join('.'),
    entries,
  };
}

export function renderHostTimeline(t: HostTimeline): string {
  const head = `host ${t.hostId}  ${t.cluster}  ${t.binding}`;
  if (t.entries.length === 0) return `${head}\nnothing sent or acked in that range`;
  return `${head}\n${table(
    ['AT', 'WHAT', 'VPC', 'REV', 'MODE', 'VIA', 'OPS / STATUS'],
    t.entries.map((e) => [
      e.at.slice(0, 23),
      e.what,
      e.vpcId,
      e.revision,
      e.mode ?? '',
      e.via ?? '',
      e.what === 'sent' ? String(e.ops) : `${e.status}${e.error ? ` ${e.error}` : ''}`,
    ]),
  )}`;
}
