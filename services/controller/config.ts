/**
 * Controller configuration: a zod schema (defaults, limits) and a reader for the
 * environment (`ALCOR_*`), so a bad setting fails at start with the variable named.
 */
import { z } from 'zod';
import {
  ConfigError,
  DEFAULT_BUCKET_COUNT,
  ID_PATTERN,
  MAX_GROUP_COMMITS,
  numbersFromEnv,
  parseBucketSet,
  withEnvNames,
} from '../../shared/index.js';
import { redisUrlFromEnv } from '../../infra/redis/probe.js';

export const ControllerConfigSchema = z.strictObject({
  instanceId: z.string().regex(ID_PATTERN),
  natsUrl: z.string().min(1),
  /** The nkey seed file of the `controller` user (default: NATS_NKEY_SEED_FILE). */
  nkeySeedFile: z.string().optional(),
  /**
   * A fixed bucket set (benchmarks, tests, a single instance). Absent: the
   * instance takes part in LBMRC placement and works the buckets the table gives it.
   */
  buckets: z.array(z.number().int().min(0)).min(1).optional(),
  /** Relative capacity in placement. */
  capacity: z.number().positive().max(1000).default(1),
  /** Heartbeat TTL: a member silent this long is gone (the KV bucket's max age). */
  heartbeatTtlMs: z.number().int().min(500).max(600_000).default(5_000),
  /** LBMRC tolerance around the fair share. */
  epsilon: z.number().min(0).max(0.5).default(0.05),
  bucketCount: z.number().int().min(1).default(DEFAULT_BUCKET_COUNT),
  /** Snapshot a VPC after this many commits (and on passivation / handoff). */
  snapshotEvery: z.number().int().min(1).default(1000),
  /** Passivate a VPC actor idle this long. */
  idleMs: z.number().int().min(1).default(60_000),
  /** NATS operations in flight across all VPC actors. */
  concurrency: z.number().int().min(1).default(256),
  /** Intents read per direct batch get (a gap filled from INTENTS). */
  readBatch: z.number().int().min(1).max(1000).default(256),
  /** Most intents of one VPC decided and appended as one group commit. */
  groupMax: z.number().int().min(1).max(MAX_GROUP_COMMITS).default(128),
  /** Most bytes of intents in one group (its EVENTS message stays well under the server's max payload). */
  groupBytes: z
    .number()
    .int()
    .min(1024)
    .default(256 * 1024),
  /** Groups of one VPC whose statuses and goal states are out but not all acked. */
  outboxWindow: z.number().int().min(1).max(1024).default(64),
  decisionTimeoutMs: z.number().int().min(1).default(30_000),
  intake: z
    .strictObject({
      ackWaitMs: z.number().int().min(1000).default(60_000),
      maxAckPending: z.number().int().min(1).default(10_000),
      batch: z.number().int().min(1).default(1024),
      /** The server deletes a dead run's consumer after this long. */
      inactiveMs: z.number().int().min(10_000).default(120_000),
    })
    .prefault({}),
  /** JetStream replicas of the streams and buckets (3 on a NATS cluster). */
  replicas: z.number().int().min(1).max(5).default(1),
  /** Serve `alcor.intents.apply`. */
  serveApi: z.boolean().default(true),
  /** Redis of the VPC↔host mapping; absent, no mapping is written (no Kafka multicast, no resync by host). */
  redisUrl: z.string().min(1).optional(),
  /** An accepted intent whose hosts have not all applied by then is `incomplete`. */
  programmedDeadlineMs: z.number().int().min(100).max(3_600_000).default(30_000),
  /** How often the VPC↔host mapping's generation is checked (a lost mapping is rebuilt). */
  mappingCheckMs: z.number().int().min(100).default(5000),
  /**
   * Resync requests answered at once (0: every one as it comes). The rest wait in
   * order, or are told to ask again later (a reconnect storm: services/controller/hosts/resyncGate.ts).
   */
  resyncConcurrency: z.number().int().min(0).max(10_000).default(8),
  /** /readyz says "caught up" while the intake consumer's lag is at most this. */
  readyMaxLag: z.number().int().min(0).default(1000),
});

export type ControllerConfigInput = z.input<typeof ControllerConfigSchema>;
export type ControllerConfig = z.output<typeof ControllerConfigSchema>;

export function parseControllerConfig(input: ControllerConfigInput): ControllerConfig {
  const parsed = ControllerConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(issue.path.join('.') || 'config', issue.message);
  }
  const config = parsed.data;
  const outside = config.buckets?.find((b) => b >= config.bucketCount);
  if (outside !== undefined)
    throw new ConfigError('buckets', `bucket ${outside} ≥ bucketCount ${config.bucketCount}`);
  return config;
}

const ENV = {
  ALCOR_BUCKET_COUNT: 'bucketCount',
  ALCOR_SNAPSHOT_EVERY: 'snapshotEvery',
  ALCOR_IDLE_MS: 'idleMs',
  ALCOR_CONCURRENCY: 'concurrency',
  ALCOR_DECISION_TIMEOUT_MS: 'decisionTimeoutMs',
  ALCOR_REPLICAS: 'replicas',
  ALCOR_CAPACITY: 'capacity',
  ALCOR_HEARTBEAT_TTL_MS: 'heartbeatTtlMs',
  ALCOR_EPSILON: 'epsilon',
  ALCOR_PROGRAMMED_DEADLINE_MS: 'programmedDeadlineMs',
  ALCOR_READY_MAX_LAG: 'readyMaxLag',
  ALCOR_MAPPING_CHECK_MS: 'mappingCheckMs',
  ALCOR_GROUP_MAX: 'groupMax',
  ALCOR_GROUP_BYTES: 'groupBytes',
  ALCOR_OUTBOX_WINDOW: 'outboxWindow',
  ALCOR_RESYNC_CONCURRENCY: 'resyncConcurrency',
} as const;

/** The configuration from `ALCOR_*` variables and NATS_URL. */
export function controllerConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ControllerConfig {
  const input: Record<string, unknown> = {
    instanceId: env.ALCOR_INSTANCE_ID ?? `controller-${process.pid}`,
    natsUrl: env.NATS_URL ?? 'nats://127.0.0.1:4222',
    ...(env.REDIS_URL ? { redisUrl: redisUrlFromEnv(env) } : {}),
  };
  Object.assign(input, numbersFromEnv(env, ENV));
  const bucketCount = (input.bucketCount as number | undefined) ?? DEFAULT_BUCKET_COUNT;
  if (env.ALCOR_BUCKETS !== undefined && env.ALCOR_BUCKETS !== 'placed')
    input.buckets = parseBucketSet(env.ALCOR_BUCKETS, bucketCount, 'ALCOR_BUCKETS');
  if (env.ALCOR_SERVE_API !== undefined) input.serveApi = env.ALCOR_SERVE_API !== '0';
  return withEnvNames({ ...ENV, ALCOR_INSTANCE_ID: 'instanceId' }, () =>
    parseControllerConfig(input as ControllerConfigInput),
  );
}
