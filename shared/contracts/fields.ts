/** Field schemas shared by the wire contracts, each failing with its own code. */
import { z } from 'zod';
import { ID_PATTERN } from '../ids.js';
import { isUnicastMac, parseCidr, parseIpv4 } from '../net/ipv4.js';

export const id = z.string().refine((s) => ID_PATTERN.test(s), {
  message: 'must match ^[A-Za-z0-9_-]{1,64}$ (a NATS subject token)',
  params: { code: 'id_format' },
});

export const cidr = z.string().refine((s) => parseCidr(s) !== undefined, {
  message: 'must be an IPv4 CIDR block a.b.c.d/n with the host bits zero',
  params: { code: 'invalid_cidr' },
});

export const ipv4 = z.string().refine((s) => parseIpv4(s) !== undefined, {
  message: 'must be an IPv4 address a.b.c.d',
  params: { code: 'invalid_ip' },
});

export const mac = z.string().refine(isUnicastMac, {
  message: 'must be a unicast MAC address in lower-case colon form (aa:bb:cc:dd:ee:ff)',
  params: { code: 'invalid_mac' },
});

export const revision = z.number().int().min(0);

/** A list of ids without repeats. */
export const idSet = (max: number) =>
  z
    .array(id)
    .max(max)
    .refine((ids) => new Set(ids).size === ids.length, {
      message: 'must not repeat an id',
      params: { code: 'duplicate_value' },
    });
