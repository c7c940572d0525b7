/**
 * KV `placement` (DESIGN §4.7): the bucket table (key `table`, written by the
 * placement leader with compare-and-set) and one handoff record per bucket (key
 * `handoff.<bucket>`, written by owners with compare-and-set) that says who works
 * the bucket and up to which INTENTS sequence its intents are handled.
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  decodeHandoffRecord,
  decodePlacementTable,
  kvBuckets,
  type HandoffRecord,
  type PlacementTable,
} from '../../shared/index.js';
import type { Logger } from '../logger.js';

export interface Versioned<T> {
  value: T;
  revision: number;
}

export interface PlacementStore {
  readTable: () => Promise<Versioned<PlacementTable> | undefined>;
  /** Writes the table if the stored one is still at `expected` (0: absent); false if not. */
  writeTable: (table: PlacementTable, expected: number) => Promise<boolean>;
  /** Calls the handlers with the current table and handoff records, then with each new one. */
  watch: (handlers: {
    onTable?: (table: Versioned<PlacementTable>) => void;
    onHandoff?: (record: Versioned<HandoffRecord>) => void;
  }) => Promise<{ stop: () => void }>;
  readHandoff: (bucket: number) => Promise<Versioned<HandoffRecord> | undefined>;
  /** Every bucket's handoff record. */
  readHandoffs: () => Promise<Map<number, HandoffRecord>>;
  /** Writes the record if the stored one is still at `expected` (0: absent); false if not. */
  writeHandoff: (record: HandoffRecord, expected: number) => Promise<boolean>;
}

const TABLE_KEY = 'table';
const handoffKey = (bucket: number): string => `handoff.${bucket}`;
const encoder = new TextEncoder();

/** Writes `value` if the key is still at revision `expected` (0: absent); false if someone wrote first. */
export async function compareAndSet(
  kv: KV,
  key: string,
  value: unknown,
  expected: number,
): Promise<boolean> {
  const data = encoder.encode(JSON.stringify(value));
  try {
    if (expected === 0) await kv.create(key, data);
    else await kv.update(key, data, expected);
    return true;
  } catch (err) {
    // "Wrong last sequence": someone wrote first.
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence)
      return false;
    if (/wrong last sequence/i.test((err as Error).message)) return false;
    throw err;
  }
}

export async function createPlacementStore(
  nc: NatsConnection,
  logger: Logger,
): Promise<PlacementStore> {
  const kv: KV = await new Kvm(nc).open(kvBuckets.placement);

  const read = async <T>(
    key: string,
    decode: (
      data: Uint8Array,
    ) => { ok: true; value: T } | { ok: false; error: { message: string } },
  ): Promise<Versioned<T> | undefined> => {
    const entry = await kv.get(key);
    if (!entry || entry.operation !== 'PUT') return undefined;
    const parsed = decode(entry.value);
    if (!parsed.ok) {
      logger.warn({ key, error: parsed.error }, 'placement record ignored');
      return undefined;
    }
    return { value: parsed.value, revision: entry.revision };
  };

  return {
    readTable: () => read(TABLE_KEY, decodePlacementTable),
    writeTable: (table, expected) => compareAndSet(kv, TABLE_KEY, table, expected),
    watch: async ({ onTable, onHandoff }) => {
      const watch = await kv.watch({
        key: [...(onTable ? [TABLE_KEY] : []), ...(onHandoff ? ['handoff.*'] : [])],
      });
      void (async () => {
        for await (const entry of watch) {
          if (entry.operation !== 'PUT') continue;
          const isTable = entry.key === TABLE_KEY;
          const parsed = isTable
            ? decodePlacementTable(entry.value)
            : decodeHandoffRecord(entry.value);
          if (!parsed.ok)
            logger.warn({ key: entry.key, error: parsed.error }, 'placement record ignored');
          else if (isTable)
            onTable?.({ value: parsed.value as PlacementTable, revision: entry.revision });
          else onHandoff?.({ value: parsed.value as HandoffRecord, revision: entry.revision });
        }
      })();
      return { stop: () => watch.stop() };
    },
    readHandoff: (bucket) => read(handoffKey(bucket), decodeHandoffRecord),
    readHandoffs: async () => {
      const keys: string[] = [];
      for await (const k of await kv.keys('handoff.*')) keys.push(k);
      const records = await Promise.all(keys.map((k) => read(k, decodeHandoffRecord)));
      return new Map(records.flatMap((r) => (r ? [[r.value.bucket, r.value] as const] : [])));
    },
    writeHandoff: (record, expected) =>
      compareAndSet(kv, handoffKey(record.bucket), record, expected),
  };
}
