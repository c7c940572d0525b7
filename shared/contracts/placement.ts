/**
 * Membership and placement records (DESIGN §4.7, §5): what controllers (and
 * southbound modules) heartbeat into KV `controllers` / `southbound`, the table the
 * placement leader writes to KV `placement` key `table`, and the per-bucket
 * handoff records (`handoff.<bucket>`) that carry the "handled up to" floor from
 * one owner to the next. Values are JSON; readers validate them.
 */
import { z } from 'zod';
import { id } from './fields.js';
import { parseWith, type Result } from './validation.js';

const seq = z.number().int().min(0);

/** The most hosts that may share one Kafka partition (a cluster topic's size). */
export const MAX_HOSTS_PER_PARTITION = 1000;
/** Hosts per Kafka partition unless configured (docs/evaluation.md measured the choice). */
export const DEFAULT_HOSTS_PER_PARTITION = 8;
/** An instance's run: a new one on every start and after losing its lease. */
const incarnation = z.string().regex(/^[a-z0-9]{1,16}$/);

export const MemberRecordSchema = z.strictObject({
  id,
  incarnation,
  capacity: z.number().positive().finite(),
  /** Takes part in LBMRC placement (false: a static bucket set). */
  placed: z.boolean(),
  startedAt: z.string(),
  /** bucket → load (1 + ports + hosts of its VPCs) for the buckets it owns. */
  loads: z.record(z.string().regex(/^\d+$/), z.number().min(0).finite()),
});
export type MemberRecord = z.infer<typeof MemberRecordSchema>;

export const LeaderRecordSchema = z.strictObject({ id, incarnation, since: z.string() });
export type LeaderRecord = z.infer<typeof LeaderRecordSchema>;

export const PlacementTableSchema = z.strictObject({
  /** Increases with every table the leaders write. */
  epoch: z.number().int().min(1),
  leader: id,
  at: z.string(),
  epsilon: z.number().min(0).max(1),
  bucketCount: z.number().int().min(1),
  /** bucket → owner instance id ('' before the first placement). */
  owners: z.array(z.string()),
  /** bucket → epoch when it got its current owner. */
  since: z.array(z.number().int().min(0)),
  /** bucket → the weight it was placed with. */
  weights: z.array(z.number().min(0)),
  members: z.array(
    z.strictObject({
      id,
      capacity: z.number().positive(),
      load: z.number().min(0),
      fair: z.number().min(0),
      buckets: z.number().int().min(0),
    }),
  ),
  maxOverFair: z.number().min(0),
  /** Weight that changed owner with this table (forced: from members that left). */
  moved: z.strictObject({
    weight: z.number().min(0),
    buckets: z.number().int().min(0),
    forced: z.number().min(0),
  }),
});
export type PlacementTable = z.infer<typeof PlacementTableSchema>;

export const HandoffRecordSchema = z.strictObject({
  bucket: z.number().int().min(0),
  owner: id,
  incarnation,
  /** acquired: the owner works the bucket; released: it finished and let go. */
  state: z.enum(['acquired', 'released']),
  /** Every intent of the bucket at or below this INTENTS sequence is handled. */
  floor: seq,
  /** The bucket's load when released (the next owner reports it until it knows better). */
  load: z.number().min(0).optional(),
  at: z.string(),
});
export type HandoffRecord = z.infer<typeof HandoffRecordSchema>;

/** KV `placement` key `southbound.table`: topology partition (cluster key) → module. */
export const SouthboundTableSchema = z.strictObject({
  epoch: z.number().int().min(1),
  leader: id,
  at: z.string(),
  owners: z.record(z.string(), id),
  weights: z.record(z.string(), z.number().min(0)),
  maxOverFair: z.number().min(0),
});
export type SouthboundTable = z.infer<typeof SouthboundTableSchema>;

/**
 * KV `placement` key `kafka.<kafkaCluster>.<topic>`: the topic's hosts in order,
 * `hostsPerPartition` of them to a partition (host i on partition ⌊i / that⌋). The
 * list only grows, and the first writer fixes the grouping, so a host keeps its
 * partition.
 */
export const KafkaPartitionsSchema = z.strictObject({
  hosts: z.array(z.string()).describe('host ids; partition = ⌊index / hostsPerPartition⌋'),
  hostsPerPartition: z
    .number()
    .int()
    .min(1)
    .max(MAX_HOSTS_PER_PARTITION)
    .optional()
    .describe('hosts sharing a partition, each taking the records keyed by its id (absent: 1)'),
});
export type KafkaPartitions = z.infer<typeof KafkaPartitionsSchema>;

/** The partition of a host in its topic's assignment; -1 when it has none. */
export function hostPartition(layout: KafkaPartitions, hostId: string): number {
  const index = layout.hosts.indexOf(hostId);
  return index < 0 ? -1 : Math.floor(index / (layout.hostsPerPartition ?? 1));
}

/** The partitions a topic's assignment needs. */
export function partitionsNeeded(layout: KafkaPartitions): number {
  return Math.ceil(layout.hosts.length / (layout.hostsPerPartition ?? 1));
}

const decode =
  <T>(schema: z.ZodType<T>, what: string) =>
  (data: Uint8Array): Result<T> => {
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder().decode(data));
    } catch (err) {
      return {
        ok: false,
        error: { code: 'invalid_json', message: `${what}: ${(err as Error).message}` },
      };
    }
    return parseWith(schema, value, what);
  };

export const decodeMemberRecord = decode(MemberRecordSchema, 'member');
export const decodeLeaderRecord = decode(LeaderRecordSchema, 'leader');
export const decodePlacementTable = decode(PlacementTableSchema, 'placement table');
export const decodeHandoffRecord = decode(HandoffRecordSchema, 'handoff');
export const decodeSouthboundTable = decode(SouthboundTableSchema, 'southbound table');
