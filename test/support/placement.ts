/**
 * What KV `placement` says, watched into memory: the table and every bucket's
 * handoff record. A placement is settled for a member set when the table names
 * exactly those members and every bucket is acquired by the owner the table gives.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { createPlacementStore } from '../../infra/index.js';
import type { HandoffRecord, PlacementTable } from '../../shared/index.js';
import { testLog } from './controller.js';

export interface PlacementView {
  table: () => PlacementTable | undefined;
  handoff: (bucket: number) => HandoffRecord | undefined;
  /** Buckets the table gives to someone who has not acquired them yet. */
  unsettled: () => number[];
  settledFor: (members: readonly string[]) => boolean;
  stop: () => void;
}

export async function watchPlacement(nc: NatsConnection): Promise<PlacementView> {
  let table: PlacementTable | undefined;
  const handoffs = new Map<number, HandoffRecord>();
  const watch = await (
    await createPlacementStore(nc, testLog)
  ).watch({
    onTable: ({ value }) => (table = value),
    onHandoff: ({ value }) => handoffs.set(value.bucket, value),
  });
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
