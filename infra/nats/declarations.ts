/**
 * The streams and KV buckets of DESIGN §4, declared in code and created
 * idempotently at service start. A stream that exists with another configuration
 * is reported (ConfigMismatchError), never silently used.
 */
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { ConfigMismatchError, kvBuckets, streams, subjects } from '../../shared/index.js';

const NS_PER_MS = 1_000_000;
/** JSStreamNameExistErr: the name is taken by a stream with another configuration. */
const STREAM_NAME_IN_USE = 10058;
const nanos = (ms: number): number => ms * NS_PER_MS;

export interface LayoutOptions {
  /** JetStream replicas: 1 on one server, 3 on a NATS cluster. */
  replicas: number;
  /** Window within which JetStream drops a re-published Nats-Msg-Id. */
  duplicateWindowMs: number;
  /** How long goal states and status messages are kept for replay (0 = forever). */
  goalStateMaxAgeMs: number;
  statusMaxAgeMs: number;
  /** How long NCA acks are kept for `alcor trace` and `alcor replay host` (0 = forever). */
  ackMaxAgeMs: number;
  /** How long relay receipts are kept for `alcor trace` (0 = forever). */
  relayMaxAgeMs: number;
  /** Heartbeat TTL of the membership buckets. */
  heartbeatTtlMs: number;
}

export const DEFAULT_LAYOUT: LayoutOptions = {
  replicas: 1,
  duplicateWindowMs: 10 * 60_000,
  goalStateMaxAgeMs: 24 * 3_600_000,
  statusMaxAgeMs: 24 * 3_600_000,
  ackMaxAgeMs: 3_600_000,
  relayMaxAgeMs: 3_600_000,
  heartbeatTtlMs: 5_000,
};

export type StreamSpec = Pick<
  StreamConfig,
  | 'name'
  | 'subjects'
  | 'storage'
  | 'retention'
  | 'discard'
  | 'max_age'
  | 'duplicate_window'
  | 'num_replicas'
  | 'allow_direct'
  | 'max_msgs_per_subject'
>;

export function streamSpecs(options: LayoutOptions = DEFAULT_LAYOUT): StreamSpec[] {
  const base = {
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: options.replicas,
    duplicate_window: nanos(options.duplicateWindowMs),
    allow_direct: true,
    max_msgs_per_subject: -1,
  };
  return [
    { ...base, name: streams.intents, subjects: [subjects.intentsAll], max_age: 0 },
    { ...base, name: streams.events, subjects: [subjects.eventsAll], max_age: 0 },
    {
      ...base,
      name: streams.goalStates,
      subjects: [...subjects.goalStatesAll],
      max_age: nanos(options.goalStateMaxAgeMs),
    },
    {
      ...base,
      name: streams.status,
      subjects: [subjects.statusAll],
      max_age: nanos(options.statusMaxAgeMs),
    },
    {
      ...base,
      name: streams.acks,
      subjects: [subjects.acksAll],
      max_age: nanos(options.ackMaxAgeMs),
    },
    {
      ...base,
      name: streams.relays,
      subjects: [subjects.relayReceiptsAll],
      max_age: nanos(options.relayMaxAgeMs),
    },
  ];
}

function differences(want: StreamSpec, have: StreamConfig): string[] {
  const out: string[] = [];
  const wantSubjects = [...(want.subjects ?? [])].sort();
  const haveSubjects = [...(have.subjects ?? [])].sort();
  if (JSON.stringify(wantSubjects) !== JSON.stringify(haveSubjects)) {
    out.push(`subjects ${JSON.stringify(haveSubjects)} ≠ declared ${JSON.stringify(wantSubjects)}`);
  }
  for (const key of [
    'storage',
    'retention',
    'discard',
    'max_age',
    'duplicate_window',
    'num_replicas',
    'max_msgs_per_subject',
  ] as const) {
    if (want[key] !== undefined && want[key] !== have[key]) {
      out.push(`${key} ${String(have[key])} ≠ declared ${String(want[key])}`);
    }
  }
  return out;
}

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

/** Creates the stream if absent; checks it against the declaration if present. */
export async function ensureStream(jsm: JetStreamManager, spec: StreamSpec): Promise<StreamInfo> {
  const check = (info: StreamInfo): StreamInfo => {
    const diff = differences(spec, info.config);
    if (diff.length > 0) throw new ConfigMismatchError(`stream ${spec.name}`, diff);
    return info;
  };
  try {
    return check(await jsm.streams.info(spec.name));
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  try {
    return await jsm.streams.add(spec);
  } catch (err) {
    // Another service created it between our look and our add: check theirs.
    if (err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE) {
      return check(await jsm.streams.info(spec.name));
    }
    throw err;
  }
}

export interface KvSpec {
  bucket: string;
  history: number;
  /** Entry age limit in ms (heartbeats); 0 = forever. */
  ttlMs: number;
  maxValueSize: number;
}

export function kvSpecs(options: LayoutOptions = DEFAULT_LAYOUT): KvSpec[] {
  return [
    { bucket: kvBuckets.hosts, history: 1, ttlMs: 0, maxValueSize: -1 },
    { bucket: kvBuckets.controllers, history: 1, ttlMs: options.heartbeatTtlMs, maxValueSize: -1 },
    { bucket: kvBuckets.southbound, history: 1, ttlMs: options.heartbeatTtlMs, maxValueSize: -1 },
    { bucket: kvBuckets.placement, history: 5, ttlMs: 0, maxValueSize: -1 },
    { bucket: kvBuckets.vpcSnapshots, history: 1, ttlMs: 0, maxValueSize: -1 },
  ];
}

export async function ensureKv(
  nc: NatsConnection,
  jsm: JetStreamManager,
  spec: KvSpec,
  replicas: number,
): Promise<void> {
  const streamName = `KV_${spec.bucket}`;
  try {
    const info = await jsm.streams.info(streamName);
    const diff: string[] = [];
    if (info.config.max_msgs_per_subject !== spec.history)
      diff.push(`history ${info.config.max_msgs_per_subject} ≠ declared ${spec.history}`);
    if (info.config.max_age !== nanos(spec.ttlMs))
      diff.push(`ttl ${info.config.max_age / NS_PER_MS} ms ≠ declared ${spec.ttlMs} ms`);
    if (info.config.num_replicas !== replicas)
      diff.push(`replicas ${info.config.num_replicas} ≠ declared ${replicas}`);
    if (diff.length > 0) throw new ConfigMismatchError(`KV bucket ${spec.bucket}`, diff);
    return;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await new Kvm(nc).create(spec.bucket, {
    history: spec.history,
    ttl: spec.ttlMs,
    replicas,
    storage: StorageType.File,
    maxValueSize: spec.maxValueSize,
  });
}

/** Everything a service needs to exist before it starts. */
export async function ensureLayout(
  nc: NatsConnection,
  jsm: JetStreamManager,
  options: LayoutOptions = DEFAULT_LAYOUT,
): Promise<{ streams: StreamInfo[] }> {
  const infos: StreamInfo[] = [];
  for (const spec of streamSpecs(options)) infos.push(await ensureStream(jsm, spec));
  for (const spec of kvSpecs(options)) await ensureKv(nc, jsm, spec, options.replicas);
  return { streams: infos };
}
