/**
 * The topology as the controller sees it: KV `hosts` watched into memory, so the
 * decider's host look-ups are synchronous map reads. A malformed entry is logged
 * and left out (the host is then unknown: ports on it are rejected with
 * `unknown_host`), never a crash.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  hostValue,
  kvBuckets,
  parseHostEntry,
  placeOf,
  type ErrorDetail,
  type HostRecord,
  type Result,
  type TopologyPlace,
} from '../../shared/index.js';

export interface HostDirectory {
  lookup: (hostId: string) => TopologyPlace | undefined;
  /** The whole record (place, underlay IP, binding). */
  record: (hostId: string) => HostRecord | undefined;
  /** Every valid host record now. */
  all: () => HostRecord[];
  /** False if the initial values had not all arrived within the ready timeout. */
  complete: () => boolean;
  size: () => number;
  stop: () => Promise<void>;
}

export async function createHostDirectory(
  nc: NatsConnection,
  options: {
    bucket?: string;
    onInvalid?: (hostId: string, error: ErrorDetail) => void;
    readyTimeoutMs?: number;
  } = {},
): Promise<HostDirectory> {
  const kv: KV = await new Kvm(nc).open(options.bucket ?? kvBuckets.hosts);
  const places = new Map<string, TopologyPlace>();
  const records = new Map<string, HostRecord>();
  const initial = (await kv.status()).values;
  const watch = await kv.watch();
  let seen = 0;
  let complete = false;
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve)).then(() => {
    complete = true;
  });
  if (initial === 0) markReady();

  const loop = (async () => {
    for await (const entry of watch) {
      if (entry.operation === 'PUT') {
        let value: unknown;
        try {
          value = entry.json<unknown>();
        } catch {
          value = undefined;
        }
        const parsed = parseHostEntry(entry.key, value);
        if (parsed.ok) {
          places.set(entry.key, placeOf(parsed.value));
          records.set(entry.key, parsed.value);
        } else {
          places.delete(entry.key);
          records.delete(entry.key);
          options.onInvalid?.(entry.key, parsed.error);
        }
      } else {
        places.delete(entry.key);
        records.delete(entry.key);
      }
      // The initial values end at delta 0 (that entry already says isUpdate).
      if (++seen >= initial || entry.delta === 0) markReady();
    }
  })();

  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    ready,
    new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);

  return {
    lookup: (hostId) => places.get(hostId),
    record: (hostId) => records.get(hostId),
    all: () => [...records.values()],
    complete: () => complete,
    size: () => places.size,
    stop: async () => {
      watch.stop();
      await loop.catch(() => undefined);
    },
  };
}

/** Registers hosts in KV `hosts` (fleet simulators, tests, the CLI). */
export async function putHosts(
  nc: NatsConnection,
  hosts: readonly HostRecord[],
  options: { bucket?: string } = {},
): Promise<void> {
  const kv = await new Kvm(nc).open(options.bucket ?? kvBuckets.hosts);
  const encoder = new TextEncoder();
  for (let i = 0; i < hosts.length; i += 256) {
    await Promise.all(
      hosts
        .slice(i, i + 256)
        .map((h) => kv.put(h.hostId, encoder.encode(JSON.stringify(hostValue(h))))),
    );
  }
}

/**
 * One host's registry record, read with a direct get of its key — what the host's
 * own NATS user may do (its account imports that one get, docs/security.md).
 */
export async function readHostRecord(
  jsm: JetStreamManager,
  hostId: string,
): Promise<Result<HostRecord> | undefined> {
  const msg = await jsm.direct.getMessage(`KV_${kvBuckets.hosts}`, {
    last_by_subj: `$KV.${kvBuckets.hosts}.${hostId}`,
  });
  if (!msg || msg.data.length === 0 || msg.header?.get('KV-Operation')) return undefined;
  let value: unknown;
  try {
    value = msg.json<unknown>();
  } catch {
    value = undefined;
  }
  return parseHostEntry(hostId, value);
}
