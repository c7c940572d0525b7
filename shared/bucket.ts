/**
 * VPC → bucket: the fixed hash that the NATS server's `partition()` subject mapping
 * applies to `intent.<vpcId>` (FNV-1a 32-bit over the token's bytes, modulo the
 * bucket count). The code and the server must agree, so this is the one place the
 * hash is written; an integration test checks it against the real server.
 */
import { ConfigError } from './errors.js';

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

/**
 * A set of buckets from text: `all`, or a comma list of numbers and ranges
 * (`0-511,700`). Throws a ConfigError naming `field` on anything else.
 */
export function parseBucketSet(
  text: string,
  bucketCount: number = DEFAULT_BUCKET_COUNT,
  field = 'buckets',
): number[] {
  const trimmed = text.trim();
  if (trimmed === 'all') return Array.from({ length: bucketCount }, (_, i) => i);
  const out = new Set<number>();
  for (const part of trimmed.split(',')) {
    const m = /^\s*(\d+)(?:\s*-\s*(\d+))?\s*$/.exec(part);
    const from = m ? Number(m[1]) : NaN;
    const to = m?.[2] === undefined ? from : Number(m[2]);
    if (!m || from > to || to >= bucketCount) {
      throw new ConfigError(
        field,
        `${JSON.stringify(part)} is not a bucket or range within 0-${bucketCount - 1}`,
      );
    }
    for (let b = from; b <= to; b++) out.add(b);
  }
  return [...out].sort((a, b) => a - b);
}

/** The text form `parseBucketSet` reads, ranges joined: `[0,1,2,5]` → `0-2,5`. */
export function formatBucketSet(buckets: Iterable<number>): string {
  const sorted = [...new Set(buckets)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
