/**
 * What KV `placement` says, watched into memory: the table and every bucket's
 * handoff record. A placement is settled for a member set when the table names
 * exactly those members and every bucket is acquired by the owner the table gives.
 */
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  decodeHandoffRecord,
  decodePlacementTable,
  kvBuckets,
  type HandoffRecord,
  type PlacementTable,
} from '../../shared/index.js';

export interface PlacementView {
  table: () => PlacementTable | undefined;
  handoff: (bucket: number) => HandoffRecord | undefined;
  /** Buckets the table gives to someone who has not acquired them yet. */
  unsettled: () => number[];
  settledFor: (members: readonly string[]) => boolean;
  stop: () => void;
}

export async function watchPlacement(nc: NatsConnection): Promise<PlacementView> {
  const kv = await new Kvm(nc).open(kvBuckets.placement);
  let table: PlacementTable | undefined;
  const handoffs = new Map<number, HandoffRecord>();
  const watch = await kv.watch();
  void (async () => {
    for await (const e of watch) {
      if (e.operation !== 'PUT') continue;
      if (e.key === 'table') {
        const parsed = decodePlacementTable(e.value);
        if (parsed.ok) table = parsed.value;
      } else if (e.key.startsWith('handoff.')) {
        const parsed = decodeHandoffRecord(e.value);
        if (parsed.ok) handoffs.set(parsed.value.bucket, parsed.value);
      }
    }
  })();
  const unsettled = (): number[] => {
    if (!table) return [-1];
    return table.owners.flatMap((owner, b) => {
      const h = handoffs.get(b);
      return h?.state === 'acquired' && h.owner === owner ? [] : [b];
    });
  };
  return {
    table: () => table,
    handoff: (b) => handoffs.get(b),
    unsettled,
    settledFor: (members) =>
      table !== undefined &&
      table.members.map((m) => m.id).join() === [...members].sort().join() &&
      unsettled().length === 0,
    stop: () => watch.stop(),
  };
}
