/**
 * Following work through the logs:
 * - `alcor trace <intent>`: intent → decision → goal states → (for Kafka-bound
 *   hosts) the southbound's relay and the Kafka record → each host's ack, with the
 *   time of every stage (INTENTS receipt in the commit, EVENTS, GOALSTATES, RELAYS,
 *   ACKS, STATUS). Each stage is a stable id (`received`, `decided`, …) with the
 *   log or topic it was read from (`source`);
 * - `alcor replay host <host>`: what the host was sent and when (GOALSTATES), and
 *   what it answered (ACKS).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { INTENT_ID_HEADER, createHostDirectory, readStreamRange } from '../../infra/index.js';
import {
  bindingLabel,
  bucketOf,
  decodeGoalState,
  decodeRelayReceipt,
  streams,
  subjects,
  type GoalStateAck,
  type HostRecord,
  type RelayReceipt,
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

/** A stage of an intent's way, as a stable id (JSON values scripts can match). */
export type TraceStageId =
  | 'refused_at_intake'
  | 'received'
  | 'decided'
  | 'goal_states_stored'
  | 'relayed'
  | 'kafka_produced'
  | 'acked'
  | Status['outcome'];

export interface TraceStage {
  stage: TraceStageId;
  /** Where its time was read: a stream (INTENTS, EVENTS, GOALSTATES, RELAYS, ACKS, STATUS) or a Kafka topic. */
  source: string;
  at: string;
  /** Milliseconds since the intent was received. */
  ms: number;
  detail?: string;
  /** `relayed`: the southbound module; `relayed` and `kafka_produced`: the Kafka cluster. */
  member?: string;
  kafkaCluster?: string;
}

/** Where a relay put one of a Kafka-bound host's records of the intent's goal states. */
export interface KafkaHop {
  /** The goal state's subject in GOALSTATES. */
  subject: string;
  member: string;
  kafkaCluster: string;
  topic: string;
  partition: number;
  offset: string;
  relayedAt: string;
  producedAt: string;
  /** producedAt, in milliseconds since the intent was received. */
  ms: number;
}

export interface TraceReport {
  intentId: string;
  vpcId: string;
  kind?: string;
  revision?: number;
  outcome: string;
  error?: { code: string; message: string; path?: string };
  /** Each stage with its time and milliseconds since the intent was received, in time order. */
  stages: TraceStage[];
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
    /** Milliseconds per stage as the host's agent measured them (its ack's timings). */
    timings?: Record<string, number>;
    /** Kafka-bound hosts: where their records went (empty: no relay receipt found). */
    kafka?: KafkaHop[];
  }>;
}

const isStreamMissing = (err: unknown): boolean =>
  err instanceof Error &&
  (err.name === 'StreamNotFoundError' || /stream not found/i.test(err.message));

/**
 * The relay receipts of some of a VPC's goal states (by GOALSTATES sequence);
 * none where RELAYS does not exist (a southbound older than this CLI).
 */
async function receiptsOf(
  nc: NatsConnection,
  vpcId: string,
  seqs: ReadonlySet<number>,
  from: Date,
): Promise<RelayReceipt[]> {
  const out: RelayReceipt[] = [];
  if (seqs.size === 0) return out;
  try {
    for await (const m of readStreamRange(nc, streams.relays, {
      filter: subjects.relayReceipt(vpcId),
      fromTime: from,
    })) {
      const r = decodeRelayReceipt(m.data);
      if (r.ok && seqs.has(r.value.seq)) out.push(r.value);
    }
  } catch (err) {
    if (!isStreamMissing(err)) throw err;
  }
  return out;
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
      stages: [
        {
          stage: 'refused_at_intake',
          source: streams.status,
          at: refused.at.toISOString(),
          ms: 0,
        },
      ],
      goalStates: [],
      hosts: [],
    };
  }
  const { commit, revision, decidedAt, messages, hosts } = found;
  const received = Date.parse(commit.at);
  const since = (t: Date): number => t.getTime() - received;
  const stages: TraceStage[] = [
    { stage: 'received', source: streams.intents, at: commit.at, ms: 0 },
    {
      stage: 'decided',
      source: streams.events,
      at: decidedAt.toISOString(),
      ms: since(decidedAt),
      detail: `revision ${revision}: ${commit.events.map((e) => e.type).join(', ')}`,
    },
  ];
  const rejection = rejectionOf(commit);

  // The goal states as GOALSTATES stored them (a message in parts: `<msgId>~<first>`).
  const wanted = new Map(messages.map((m) => [m.msgId, m]));
  const stored = new Map<string, Date>();
  /** GOALSTATES sequence → the goal state's subject, for the relay receipts. */
  const storedSeqs = new Map<number, string>();
  /** Per goal state, the ops of its parts not read yet (0 once whole). */
  const partsLeft = new Map<string, number>();
  if (wanted.size > 0) {
    for await (const m of readStreamRange(nc, streams.goalStates, {
      filter: [...new Set(messages.map((m) => m.subject))],
      fromTime: new Date(decidedAt.getTime() - SLACK_MS),
    })) {
      const msgId = m.msgId?.split('~')[0];
      if (!msgId || !wanted.has(msgId)) continue;
      stored.set(msgId, m.time);
      storedSeqs.set(m.seq, m.subject);
      if (msgId !== m.msgId) {
        // A part: the message is whole once every op is in.
        const part = decodeGoalState(m.data);
        if (part.ok && part.value.part) {
          const left = (partsLeft.get(msgId) ?? part.value.part.total) - part.value.ops.length;
          partsLeft.set(msgId, left);
        }
      } else partsLeft.set(msgId, 0);
      if (partsLeft.size === wanted.size && [...partsLeft.values()].every((n) => n <= 0)) break;
    }
    const times = [...stored.values()].map((t) => t.getTime()).sort((a, b) => a - b);
    if (times.length > 0) {
      stages.push({
        stage: 'goal_states_stored',
        source: streams.goalStates,
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
  // The relays' receipts: which module took each goal state, where Kafka put its records.
  const receipts = await receiptsOf(
    nc,
    vpcId,
    new Set(storedSeqs.keys()),
    new Date(decidedAt.getTime() - SLACK_MS),
  );
  const hops = new Map<string, KafkaHop[]>();
  for (const r of receipts) {
    for (const rec of r.records) {
      const list = hops.get(rec.hostId) ?? [];
      list.push({
        subject: r.subject,
        member: r.member,
        kafkaCluster: r.kafkaCluster,
        topic: rec.topic,
        partition: rec.partition,
        offset: rec.offset,
        relayedAt: r.takenAt,
        producedAt: r.producedAt,
        ms: Date.parse(r.producedAt) - received,
      });
      hops.set(rec.hostId, list);
    }
  }
  stages.push(...relayStages(receipts, received));
  const applied = [...acks.values()].filter((a) => a.ack.status === 'applied').length;
  const lastAck = Math.max(...[...acks.values()].map((a) => a.at.getTime()));
  if (acks.size > 0)
    stages.push({
      stage: 'acked',
      source: streams.acks,
      at: new Date(lastAck).toISOString(),
      ms: lastAck - received,
      detail: `${applied}/${hosts.length} host(s) applied${acks.size > applied ? `, ${acks.size - applied} failed` : ''}`,
    });
  for (const s of statuses) {
    stages.push({
      stage: s.status.outcome,
      source: streams.status,
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
        const kafka = (hops.get(hostId) ?? []).sort(
          (x, y) => x.producedAt.localeCompare(y.producedAt) || x.subject.localeCompare(y.subject),
        );
        return {
          hostId,
          binding: record ? bindingLabel(record) : 'unregistered',
          ack: a ? a.ack.status : 'none',
          ...(a ? { at: a.at.toISOString(), ms: since(a.at) } : {}),
          ...(a?.ack.error ? { error: `${a.ack.error.code}: ${a.ack.error.message}` } : {}),
          ...(a?.ack.timings ? { timings: a.ack.timings } : {}),
          ...(record?.binding.type === 'kafka' || kafka.length > 0 ? { kafka } : {}),
        };
      }),
    };
  } finally {
    await directory.stop();
  }
}

/**
 * The relay and Kafka hops as stages: `relayed` per (module, Kafka cluster), at
 * the last goal state it took; `kafka_produced` per topic, at the last record
 * Kafka acknowledged.
 */
function relayStages(receipts: readonly RelayReceipt[], received: number): TraceStage[] {
  const out: TraceStage[] = [];
  const latest = (xs: string[]): number => Math.max(...xs.map((x) => Date.parse(x)));
  const relays = new Map<string, RelayReceipt[]>();
  for (const r of receipts) {
    const key = `${r.member}/${r.kafkaCluster}`;
    relays.set(key, [...(relays.get(key) ?? []), r]);
  }
  for (const list of relays.values()) {
    const { member, kafkaCluster } = list[0]!;
    const at = latest(list.map((r) => r.takenAt));
    out.push({
      stage: 'relayed',
      source: streams.relays,
      at: new Date(at).toISOString(),
      ms: at - received,
      detail: `by ${member} to Kafka ${kafkaCluster}: ${new Set(list.map((r) => r.seq)).size} goal state(s)`,
      member,
      kafkaCluster,
    });
  }
  const topics = new Map<string, { kafkaCluster: string; at: string[]; records: string[] }>();
  for (const r of receipts)
    for (const rec of r.records) {
      const key = `${r.kafkaCluster}/${rec.topic}`;
      const t = topics.get(key) ?? { kafkaCluster: r.kafkaCluster, at: [], records: [] };
      t.at.push(r.producedAt);
      t.records.push(`${rec.hostId} p${rec.partition}@${rec.offset}`);
      topics.set(key, t);
    }
  for (const [key, t] of topics) {
    const at = latest(t.at);
    out.push({
      stage: 'kafka_produced',
      source: key.slice(key.indexOf('/') + 1),
      at: new Date(at).toISOString(),
      ms: at - received,
      detail: `Kafka ${t.kafkaCluster}: ${t.records.length} record(s): ${list(t.records, 3)}`,
      kafkaCluster: t.kafkaCluster,
    });
  }
  return out;
}

const list = (xs: readonly string[], max: number): string =>
  xs.length <= max ? xs.join(', ') : `${xs.slice(0, max).join(', ')}, … (${xs.length})`;

/** A stage id as the table shows it: `goal_states_stored` → `goal states stored`. */
const stageLabel = (id: TraceStageId): string => id.replaceAll('_', ' ');

export function renderTrace(t: TraceReport): string {
  const head = `intent ${t.intentId}  VPC ${t.vpcId}${t.kind ? `  ${t.kind}` : ''}${
    t.revision ? `  revision ${t.revision}` : ''
  }  → ${t.outcome}${t.error ? ` (${t.error.code}${t.error.path ? ` at ${t.error.path}` : ''}: ${t.error.message})` : ''}`;
  const parts = [
    head,
    table(
      ['STAGE', 'SOURCE', 'AT', '+MS', 'DETAIL'],
      t.stages.map((s) => [
        stageLabel(s.stage),
        s.source,
        s.at.slice(11, 23),
        s.ms,
        s.detail ?? '',
      ]),
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
    const kafka = (h: TraceReport['hosts'][number]): string =>
      h.kafka === undefined
        ? '-'
        : h.kafka.length === 0
          ? 'no receipt'
          : list(
              h.kafka.map((k) => `p${k.partition}@${k.offset} by ${k.member} +${k.ms}`),
              2,
            );
    parts.push(
      `hosts (${acked}/${t.hosts.length} applied):\n${table(
        ['HOST', 'BINDING', 'KAFKA RECORD', 'ACK', '+MS', 'AGENT MS', 'ERROR'],
        t.hosts.map((h) => [
          h.hostId,
          h.binding,
          kafka(h),
          h.ack,
          h.ms ?? '-',
          agentTimings(h.timings),
          h.error ?? '',
        ]),
      ).replace(/^/gm, '  ')}`,
    );
  }
  return parts.join('\n');
}

/** An ack's timings, short: `apply 0.1 aca_roundtrip 2.3 …` (ms, those above 0). */
function agentTimings(timings: Record<string, number> | undefined): string {
  if (!timings) return '-';
  const shown = Object.entries(timings).filter(([, ms]) => ms > 0);
  return shown.length === 0
    ? '0'
    : shown.map(([k, ms]) => `${k} ${ms < 10 ? ms.toFixed(2) : Math.round(ms)}`).join(' ');
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
