/** Host records in KV `hosts` (DESIGN §4.7): `hostId → {region, az, dc, cluster, underlayIp, binding}`. */
import { z } from 'zod';
import type { HostRecord } from '../topology.js';
import { id, ipv4 } from './fields.js';
import { parseWith, type Result } from './validation.js';

export const HostValueSchema = z.strictObject({
  region: id,
  az: id,
  dc: id,
  cluster: id,
  underlayIp: ipv4,
  binding: z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('kafka'), cluster: id }),
    z.strictObject({ type: z.literal('jetstream') }),
  ]),
});

/** A KV `hosts` entry (key = hostId) as a HostRecord, or the error in it. */
export function parseHostEntry(hostId: string, value: unknown): Result<HostRecord> {
  const parsed = parseWith(HostValueSchema, value, 'host');
  if (!parsed.ok) return parsed;
  if (!id.safeParse(hostId).success) {
    return {
      ok: false,
      error: {
        code: 'id_format',
        message: `host key ${hostId.slice(0, 80)} is not an id`,
        path: 'hostId',
      },
    };
  }
  return { ok: true, value: { hostId, ...parsed.value } };
}

/** The KV value of a host record (its key is the hostId). */
export function hostValue(host: HostRecord): z.infer<typeof HostValueSchema> {
  const { hostId: _hostId, ...value } = host;
  return value;
}
