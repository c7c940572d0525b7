/**
 * VPC snapshots in KV `vpc-snapshots` (DESIGN §4.7), chunked so that a large VPC
 * never meets the server's value size limit (max_payload): the chunks go under
 * `<vpcId>.<revision>.<n>` first, then the manifest under `<vpcId>` points at
 * them, then the previous revision's chunks are purged. A reader following the
 * manifest sees a whole snapshot or, if chunks vanished under it, none (it then
 * replays the log, which is always correct, only slower).
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { payloadRoom } from './payloadLimit.js';
import { AlcorError, kvBuckets, type SnapshotStore } from '../../shared/index.js';

/** The largest chunk; a server whose max_payload is lower gets chunks under its own. */
export const DEFAULT_CHUNK_BYTES = 512 * 1024;

interface Manifest {
  revision: number;
  chunks: number;
  bytes: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class SnapshotFormatError extends AlcorError {
  constructor(vpcId: string, reason: string) {
    super('snapshot_unreadable', `snapshot of ${vpcId}: ${reason}`);
  }
}

export async function createKvSnapshotStore(
  nc: NatsConnection,
  options: { bucket?: string; chunkBytes?: number } = {},
): Promise<SnapshotStore & { kv: KV }> {
  const kv = await new Kvm(nc).open(options.bucket ?? kvBuckets.vpcSnapshots);
  const chunkBytes = options.chunkBytes ?? Math.min(DEFAULT_CHUNK_BYTES, payloadRoom(nc));
  const chunkKey = (vpcId: string, revision: number, n: number) => `${vpcId}.${revision}.${n}`;

  const manifestOf = async (vpcId: string): Promise<Manifest | undefined> => {
    const entry = await kv.get(vpcId);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
    try {
      return entry.json<Manifest>();
    } catch (err) {
      throw new SnapshotFormatError(vpcId, `manifest is not JSON (${(err as Error).message})`);
    }
  };

  return {
    kv,
    async load(vpcId) {
      const manifest = await manifestOf(vpcId);
      if (!manifest) return undefined;
      const parts = await Promise.all(
        Array.from({ length: manifest.chunks }, (_, n) =>
          kv.get(chunkKey(vpcId, manifest.revision, n)),
        ),
      );
      if (parts.some((p) => !p || p.operation !== 'PUT')) return undefined;
      const bytes = new Uint8Array(manifest.bytes);
      let offset = 0;
      for (const part of parts) {
        bytes.set(part!.value, offset);
        offset += part!.value.length;
      }
      if (offset !== manifest.bytes) return undefined;
      return { revision: manifest.revision, text: decoder.decode(bytes) };
    },
    async save(vpcId, revision, text) {
      const previous = await manifestOf(vpcId).catch(() => undefined);
      if (previous && previous.revision >= revision) return;
      const bytes = encoder.encode(text);
      const chunks = Math.max(1, Math.ceil(bytes.length / chunkBytes));
      await Promise.all(
        Array.from({ length: chunks }, (_, n) =>
          kv.put(
            chunkKey(vpcId, revision, n),
            bytes.subarray(n * chunkBytes, Math.min(bytes.length, (n + 1) * chunkBytes)),
          ),
        ),
      );
      const manifest: Manifest = { revision, chunks, bytes: bytes.length };
      await kv.put(vpcId, JSON.stringify(manifest));
      if (previous) {
        await Promise.all(
          Array.from({ length: previous.chunks }, (_, n) =>
            kv.purge(chunkKey(vpcId, previous.revision, n)),
          ),
        );
      }
    },
  };
}
