/**
 * VPC → bucket: the fixed hash that the NATS server's `partition()` subject mapping
 * applies to `intent.<vpcId>` (FNV-1a 32-bit over the token's bytes, modulo the
 * bucket count). The code and the server must agree, so this is the one place the
 * hash is written; an integration test checks it against the real server.
 */
export const DEFAULT_BUCKET_COUNT = 1024;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const utf8 = new TextEncoder();

export function fnv1a32(bytes: Uint8Array): number {
  let hash = FNV_OFFSET;
  for (const byte of bytes) {
    hash ^= byte;
    hash = Math.imul(hash, FNV_PRIME) >>> 0;
  }
  return hash >>> 0;
}

export function bucketOf(vpcId: string, bucketCount: number = DEFAULT_BUCKET_COUNT): number {
  if (!Number.isInteger(bucketCount) || bucketCount < 1) {
    throw new RangeError(`bucketCount must be a positive integer, got ${bucketCount}`);
  }
  return fnv1a32(utf8.encode(vpcId)) % bucketCount;
}
