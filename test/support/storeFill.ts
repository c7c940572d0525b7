/**
 * Another tenant filling a nats-server's JetStream file store: a stream of its own
 * written until the server refuses a write for want of storage (its
 * `max_file_store`). Deleting the stream frees the space again.
 */
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

export const FILLER_STREAM = 'ALCOR_TEST_FILLER';
/** What nats-server answers a write past its storage limit. */
export const INSUFFICIENT_RESOURCES = /insufficient resources/i;

/**
 * Writes 4 MiB messages (8 in flight) to a stream of its own until the server
 * refuses one with "insufficient resources"; the bytes written. Throws if
 * `limit` bytes twice over were taken (no limit is set).
 */
export async function fillJetStream(nc: NatsConnection, limit: number): Promise<number> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: FILLER_STREAM,
    subjects: ['alcor-test-filler.>'],
    storage: StorageType.File,
    num_replicas: 1,
  });
  const js = jetstream(nc, { timeout: 30_000 });
  const chunk = new Uint8Array(4 * 1024 * 1024).fill(7);
  let written = 0;
  let full = false;
  const writer = async (): Promise<void> => {
    while (!full) {
      if (written > 2 * limit) throw new Error(`${written} bytes stored and no write refused`);
      try {
        await js.publish('alcor-test-filler.x', chunk);
        written += chunk.length;
      } catch (err) {
        if (!INSUFFICIENT_RESOURCES.test((err as Error).message)) throw err;
        full = true;
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, writer));
  return written;
}

/** Frees what fillJetStream took. */
export async function freeJetStream(nc: NatsConnection): Promise<void> {
  await (await jetstreamManager(nc)).streams.delete(FILLER_STREAM);
}
