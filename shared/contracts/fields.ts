/**
 * Field schemas shared by the wire contracts, each failing with its own code.
 *
 * Each refinement also carries, as metadata, the part of it that JSON Schema can
 * say (a `pattern`, `uniqueItems`): `z.toJSONSchema` drops refinements, and the
 * published schemas (docs/schemas, `npm run contracts`) take these instead. The
 * patterns are checked against the refinements in test/unit/contracts.test.ts.
 */
import { z } from 'zod';
import { ID_PATTERN } from '../ids.js';
import { isUnicastMac, parseCidr, parseIpv4 } from '../net/ipv4.js';

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const IPV4 = `${OCTET}(\\.${OCTET}){3}`;

/** What JSON Schema can say of each field below (the CIDR's zero host bits it cannot). */
export const JSON_PATTERNS = {
  id: ID_PATTERN.source,
  ipv4: `^${IPV4}$`,
  cidr: `^${IPV4}/(3[0-2]|[12]?[0-9])$`,
  mac: '^[0-9a-f][02468ace](:[0-9a-f]{2}){5}$',
} as const;

export const id = z
  .string()
  .refine((s) => ID_PATTERN.test(s), {
    message: 'must match ^[A-Za-z0-9_-]{1,64}$ (a NATS subject token)',
    params: { code: 'id_format' },
  })
  .meta({ title: 'id', pattern: JSON_PATTERNS.id });

export const cidr = z
  .string()
  .refine((s) => parseCidr(s) !== undefined, {
    message: 'must be an IPv4 CIDR block a.b.c.d/n with the host bits zero',
    params: { code: 'invalid_cidr' },
  })
  .meta({ title: 'IPv4 CIDR', pattern: JSON_PATTERNS.cidr });

export const ipv4 = z
  .string()
  .refine((s) => parseIpv4(s) !== undefined, {
    message: 'must be an IPv4 address a.b.c.d',
    params: { code: 'invalid_ip' },
  })
  .meta({ title: 'IPv4 address', pattern: JSON_PATTERNS.ipv4 });

export const mac = z
  .string()
  .refine(isUnicastMac, {
    message: 'must be a unicast MAC address in lower-case colon form (aa:bb:cc:dd:ee:ff)',
    params: { code: 'invalid_mac' },
  })
  .meta({ title: 'MAC address', pattern: JSON_PATTERNS.mac });

export const revision = z.number().int().min(0);

/** A list of ids without repeats. */
export const idSet = (max: number) =>
  z
    .array(id)
    .max(max)
    .refine((ids) => new Set(ids).size === ids.length, {
      message: 'must not repeat an id',
      params: { code: 'duplicate_value' },
    })
    .meta({ uniqueItems: true });

/** An error on the wire: a specific code, a message for people, the offending field. */
export const ErrorDetailSchema = z.strictObject({
  code: z
    .string()
    .describe('what went wrong, one specific code (docs/contracts.md, "Error codes")'),
  message: z.string().describe('the same for people'),
  path: z.string().optional().describe('the offending field, dotted (`spec.hostId`)'),
});
