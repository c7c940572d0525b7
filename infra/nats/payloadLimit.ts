/**
 * What one message may carry on this connection: the server's max_payload, as its
 * INFO gave it (never a constant that can drift from the server), less room for
 * the subject, the headers and framing.
 */
import type { NatsConnection } from '@nats-io/transport-node';

/** Room kept under max_payload for the subject, headers and framing. */
export const PAYLOAD_HEADROOM_BYTES = 4096;
/** The server's max_payload before a connection has its INFO (nats-server's default). */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** The server's max_payload for this connection. */
export function maxPayload(nc: NatsConnection): number {
  return nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
}

/** The largest body a message of this connection may carry, headers aside. */
export function payloadRoom(nc: NatsConnection): number {
  return Math.max(1024, maxPayload(nc) - PAYLOAD_HEADROOM_BYTES);
}
