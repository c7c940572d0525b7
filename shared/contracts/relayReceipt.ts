/**
 * Relay receipts (an addition to DESIGN §4, docs/southbound.md): once Kafka has
 * acknowledged the records a southbound relay made of one goal state, the relay
 * publishes where it put them on `relay.<vpcId>`, kept by stream RELAYS for a
 * while, so that `alcor trace` can follow a Kafka-bound host's goal state from
 * GOALSTATES to the record its agent reads. Diagnostic only: a receipt lost (NATS
 * away at that moment) loses nothing but the trace's view of that hop.
 */
import { z } from 'zod';
import { id, revision } from './fields.js';
import { decodeJson } from './intent.js';
import { parseWith, type Result } from './validation.js';

export const RelayReceiptSchema = z.strictObject({
  /** The goal state's sequence in GOALSTATES, and its subject. */
  seq: z.number().int().min(1),
  subject: z.string().max(512),
  vpcId: id,
  revision,
  /** The southbound module that relayed it, and the Kafka cluster it went to. */
  member: id,
  kafkaCluster: id,
  /** When the relay took it from GOALSTATES, and when Kafka acknowledged its records (ISO 8601). */
  takenAt: z.string(),
  producedAt: z.string(),
  /**
   * Its records: the host each is for, and where Kafka put it (the offset as a
   * decimal string: Kafka offsets are 64-bit). A goal state of many hosts has its
   * records over several receipts of the same `seq`.
   */
  records: z
    .array(
      z.strictObject({
        hostId: id,
        topic: z.string().max(249),
        partition: z.number().int().min(0),
        offset: z.string().regex(/^\d{1,20}$/),
      }),
    )
    .min(1),
});
export type RelayReceipt = z.infer<typeof RelayReceiptSchema>;

/** Records per receipt message at most (a receipt stays far under any max_payload). */
export const RELAY_RECEIPT_MAX_RECORDS = 500;
const MAX_RECEIPT_BYTES = 256 * 1024;

export function decodeRelayReceipt(bytes: Uint8Array): Result<RelayReceipt> {
  const json = decodeJson(bytes, MAX_RECEIPT_BYTES);
  if (!json.ok) return json;
  return parseWith(RelayReceiptSchema, json.value, 'relay receipt');
}
