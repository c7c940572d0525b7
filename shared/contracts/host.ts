/** Host records in KV `hosts` (DESIGN §4.7): `hostId → {region, az, dc, cluster, underlayIp, binding}`. */
import { z } from 'zod';
import type { HostRecord } from '../topology.js';
import { id, ipv4 } from './fields.js';
import { fail, issueToError, ok, parseWith, type Result } from './validation.js';

export const HostValueSchema = z.strictObject({
  region: id,
  az: id,
  dc: id,
  cluster: id.describe(
    'the host group: its goal-state subjects, Kafka topic and southbound partition',
  ),
  underlayIp: ipv4.describe("the host's own address, unique in the topology"),
  binding: z
    .discriminatedUnion('type', [
      z.strictObject({ type: z.literal('kafka'), cluster: id.describe('a Kafka cluster id') }),
      z.strictObject({ type: z.literal('jetstream') }),
    ])
    .describe(
      'how its agent receives goal states: `{type: "kafka", cluster}` or `{type: "jetstream"}`',
    ),
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

/** Most hosts one topology file may hold. */
export const MAX_TOPOLOGY_HOSTS = 200_000;

const TopologyHostSchema = HostValueSchema.extend({ hostId: id });

/**
 * A topology file (`alcor topology load -f`): `{hosts: [...]}` or a bare array of
 * host records `{hostId, region, az, dc, cluster, underlayIp, binding}`. A hostId or
 * underlay IP may appear once; the error names the first offending entry.
 */
export function parseTopologyFile(input: unknown): Result<HostRecord[]> {
  const list: unknown = Array.isArray(input)
    ? input
    : typeof input === 'object' && input !== null && 'hosts' in input
      ? input.hosts
      : undefined;
  if (typeof input === 'object' && input !== null && !Array.isArray(input)) {
    const extra = Object.keys(input).find((k) => k !== 'hosts');
    if (extra !== undefined)
      return fail('unknown_field', `${extra}: unknown field (a topology holds only hosts)`, extra);
  }
  if (!Array.isArray(list))
    return fail('missing_field', 'hosts: required array of host records is missing', 'hosts');
  if (list.length === 0) return fail('too_few', 'hosts: at least 1 host', 'hosts');
  if (list.length > MAX_TOPOLOGY_HOSTS)
    return fail('too_many', `hosts: at most ${MAX_TOPOLOGY_HOSTS} hosts per file`, 'hosts');
  const prefix = Array.isArray(input) ? '' : 'hosts';
  const at = (i: number, field?: string): string =>
    [prefix, String(i), field].filter((s) => s !== undefined && s !== '').join('.');
  const out: HostRecord[] = [];
  const ids = new Map<string, number>();
  const ips = new Map<string, number>();
  for (let i = 0; i < list.length; i++) {
    const parsed = TopologyHostSchema.safeParse(list[i], { reportInput: true });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return { ok: false, error: issueToError(issue, at(i)) };
    }
    const host = parsed.data;
    const seenId = ids.get(host.hostId);
    if (seenId !== undefined)
      return fail(
        'duplicate_value',
        `${at(i, 'hostId')}: ${host.hostId} is also entry ${seenId}`,
        at(i, 'hostId'),
      );
    const seenIp = ips.get(host.underlayIp);
    if (seenIp !== undefined)
      return fail(
        'duplicate_value',
        `${at(i, 'underlayIp')}: ${host.underlayIp} is also the underlay IP of entry ${seenIp}`,
        at(i, 'underlayIp'),
      );
    ids.set(host.hostId, i);
    ips.set(host.underlayIp, i);
    out.push(host);
  }
  return ok(out);
}
