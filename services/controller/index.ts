/**
 * The controller (DESIGN §2, §5, §6): heartbeats into KV `controllers`; works the
 * buckets the placement table gives it (or a static set) through one intake
 * consumer, with a decision responder per bucket; one VPC actor per active VPC;
 * competes for placement leadership; serves the sync API in the controllers'
 * queue group. `start(config) → {stop()}` boots it in-process.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  DEFAULT_LAYOUT,
  checkIntentMapping,
  connectNats,
  createAsyncPublisher,
  createHostDirectory,
  createJetStreamDecisionPublisher,
  createJetStreamEventLog,
  createJetStreamIntentSource,
  createKvSnapshotStore,
  createMembership,
  createPlacementStore,
  createRedisHostMapping,
  ensureLayout,
  intakeDurable,
  maxPayload,
  natsConnectedFlag,
  type HostDirectory,
  type ReadinessChecks,
  type Registry,
  type Logger,
  type Membership,
} from '../../infra/index.js';
import { kvBuckets } from '../../shared/index.js';
import { serveApplyApi } from './api/applyApi.js';
import { parseControllerConfig, type ControllerConfigInput } from './config.js';
import { IntakeRuntime, LossEpoch } from './buckets/intake.js';
import { Limiter } from './limiter.js';
import { createMetrics, type ControllerMetrics } from './metrics.js';
import { BucketLoads, startOwnership, type Ownership } from './buckets/ownership.js';
import { startPlacementLeader } from './buckets/placementLeader.js';
import { VpcLanes } from './vpcs/lanes.js';
import { bucketSubscriptions, serveResync, type HostApiDeps } from './hosts/hostApi.js';
import { ResyncGate } from './hosts/resyncGate.js';
import { ProgrammedTracker, type ProgrammedMetrics } from './programmed/tracker.js';
import { ProgrammedRecovery } from './programmed/recovery.js';
import { startMappingRebuild } from './vpcs/mappingRebuild.js';
import { createControllerTelemetry } from './telemetry.js';

export { controllerConfigFromEnv, parseControllerConfig } from './config.js';
export type { ControllerConfig, ControllerConfigInput } from './config.js';
export type { ControllerMetrics } from './metrics.js';
export type { ApplyReply, ApplyReplyItem } from './api/applyApi.js';
export { nextTable } from './buckets/placementLeader.js';

export interface Controller {
  instanceId: string;
  /** The current run (changes when the membership lease was lost). */
  incarnation: () => string;
  /** Buckets worked now. */
  buckets: () => number[];
  isLeader: () => boolean;
  metrics: ControllerMetrics;
  /** VPC actors alive now. */
  activeVpcs: () => number;
  /** Programmed tracking: counts, and intents still waiting for acks. */
  programmed: () => ProgrammedMetrics & { pending: number };
  /** Prometheus metrics (docs/runbook.md). */
  registry: Registry;
  /** /readyz: connected to NATS, placed (every bucket of the table worked), caught up. */
  readiness: () => ReadinessChecks;
  /** Resolves once every bucket the table (or config) gives this run is worked. */
  settled: () => Promise<void>;
  /** Hands its buckets on (released records, so nobody waits for the TTL) and stops. */
  stop: () => Promise<void>;
}

interface Run {
  intake: IntakeRuntime;
  ownership: Ownership;
}

export async function start(input: ControllerConfigInput & { log: Logger }): Promise<Controller> {
  const { log: parentLog, ...rest } = input;
  const config = parseControllerConfig(rest);
  const logger = parentLog.child({ instanceId: config.instanceId });
  const nc: NatsConnection = await connectNats(config.natsUrl, {
    name: `alcor-controller-${config.instanceId}`,
    ...(config.nkeySeedFile === undefined ? {} : { nkeySeedFile: config.nkeySeedFile }),
  });
  const jsm = await jetstreamManager(nc);
  await ensureLayout(nc, jsm, {
    ...DEFAULT_LAYOUT,
    replicas: config.replicas,
    heartbeatTtlMs: config.heartbeatTtlMs,
  });
  // A server without the intent mapping would refuse every intent while we look healthy.
  await checkIntentMapping(nc, config.bucketCount).catch(async (err: unknown) => {
    await nc.close();
    throw err;
  });

  const hosts: HostDirectory = await createHostDirectory(nc, {
    onInvalid: (hostId, error) => logger.warn({ hostId, ...error }, 'host record ignored'),
  });
  if (!hosts.complete()) {
    logger.warn(
      { loaded: hosts.size() },
      'KV hosts still loading; ports on hosts not loaded yet are rejected as unknown_host',
    );
  }
  // Every message this controller writes names the run that wrote it.
  const writer = (): string => `${config.instanceId}/${membership.incarnation()}`;
  const metrics = createMetrics();
  // Paced resync answers (a reconnect storm): the agent listens for 1.5 s.
  const resyncGate =
    config.resyncConcurrency > 0
      ? new ResyncGate({ concurrency: config.resyncConcurrency, maxWaitMs: 750, maxQueued: 1024 })
      : undefined;
  const telemetry = createControllerTelemetry(config.instanceId, metrics, {
    activeVpcs: () => lanes.size,
    bucketsOwned: () => run?.ownership.owned().length ?? 0,
    programmedPending: () => tracker.pending,
    programmed: () => tracker.metrics,
    intake: () => run?.intake.lag(),
    resyncWaiting: () => resyncGate?.queued ?? 0,
  });
  // One ack inbox for every JetStream publish of this run (appends, goal states, statuses).
  const asyncPublisher = createAsyncPublisher(nc);
  const publisher = telemetry.counting(
    createJetStreamDecisionPublisher(nc, { writer, publisher: asyncPublisher }),
  );
  const connected = natsConnectedFlag(nc);
  const loads = new BucketLoads();
  const store = await createPlacementStore(nc, logger);
  const limiter = new Limiter(config.concurrency);
  const placed = config.buckets === undefined;
  let run: Run | undefined;
  let stopping = false;

  /** Stops a run's work without handing anything off (its lease is gone, or it never was a run). */
  const stopRun = async (r: Run): Promise<void> => {
    await r.ownership.stop(false);
    await r.intake.stop();
    lanes.stopAll();
  };
  const teardown = async (): Promise<void> => {
    const current = run;
    run = undefined;
    if (current) await stopRun(current);
  };
  const membership: Membership = await createMembership(nc, {
    bucket: kvBuckets.controllers,
    id: config.instanceId,
    capacity: config.capacity,
    placed,
    ttlMs: config.heartbeatTtlMs,
    lead: placed,
    loads: () => loads.report(run?.ownership.owned() ?? []),
    logger,
    // Paused or cut off past the TTL: others may own our buckets now. Drop all
    // work; a new run (incarnation) starts once registered again.
    onLeaseLost: async () => {
      await teardown();
      void restart();
    },
  });
  const mapping = config.redisUrl ? createRedisHostMapping(config.redisUrl) : undefined;
  if (!mapping) logger.warn('no REDIS_URL: the VPC↔host mapping is not written');
  const tracker = new ProgrammedTracker({
    publisher,
    logger,
    deadlineMs: config.programmedDeadlineMs,
    leaseValid: membership.leaseValid,
    stage: telemetry.stage,
  });
  const recovery = new ProgrammedRecovery({
    nc,
    tracker,
    bucketCount: config.bucketCount,
    // The deadline, plus the time a dead owner's buckets take to move, with room.
    windowMs: config.programmedDeadlineMs + 4 * config.heartbeatTtlMs + 30_000,
    logger,
  });
  // Acks are a core subscription: those sent while this connection was down are
  // replayed from ACKS once it is back.
  void (async () => {
    let downSince: number | undefined;
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') downSince ??= Date.now();
      else if (s.type === 'reconnect' && downSince !== undefined) {
        const from = new Date(downSince - 2000);
        downSince = undefined;
        void recovery.replaySince(from);
      }
    }
  })();
  const lossEpoch = new LossEpoch();
  const lanes = new VpcLanes({
    log: await createJetStreamEventLog(nc, { writer, publisher: asyncPublisher }),
    intents: await createJetStreamIntentSource(nc),
    publisher,
    snapshots: await createKvSnapshotStore(nc),
    lookupHost: hosts.lookup,
    logger,
    limiter,
    metrics,
    snapshotEvery: config.snapshotEvery,
    readBatch: config.readBatch,
    groupMax: config.groupMax,
    // A group's EVENTS message stays under the server's max_payload: its commits
    // take about twice their intents' bytes (docs/performance.md, event bytes per
    // intent), so a group takes at most a quarter of the limit in intents.
    get groupBytes() {
      return Math.min(config.groupBytes, Math.floor(maxPayload(nc) / 4));
    },
    outboxWindow: config.outboxWindow,
    idleMs: config.idleMs,
    leaseValid: membership.leaseValid,
    lossEpoch: () => lossEpoch.value,
    reportLoad: (vpcId, bucket, load) => loads.set(bucket, vpcId, load),
    ...(mapping ? { mapping } : {}),
    track: (intent, gate) => tracker.track(intent, gate),
    recheck: (intent) => recovery.recheck(intent),
    stage: telemetry.stage,
  });
  const hostApi: HostApiDeps = {
    nc,
    instanceId: config.instanceId,
    bucketCount: config.bucketCount,
    lanes,
    tracker,
    recovery,
    mapping,
    publisher,
    lookupHost: hosts.lookup,
    // The buckets whose intents this run decides (from the start of an acquisition's
    // scan, before ownership records it): a resync must not miss what they decide.
    owned: () => new Set(run?.intake.working() ?? []),
    metrics,
    logger,
    ...(resyncGate ? { resyncGate } : {}),
  };

  const startRun = async (): Promise<Run> => {
    const incarnation = membership.incarnation();
    const intake = await IntakeRuntime.start({
      nc,
      jsm,
      durable: intakeDurable(config.instanceId, incarnation),
      bucketCount: config.bucketCount,
      lanes,
      publisher,
      metrics,
      logger,
      intake: config.intake,
      lossEpoch,
      leaseValid: membership.leaseValid,
      bucketSubscriptions: (bucket) => bucketSubscriptions(hostApi, bucket),
    });
    try {
      const ownership = await startOwnership({
        instanceId: config.instanceId,
        incarnation,
        membership,
        store,
        intake,
        lanes,
        loads,
        jsm,
        intakeOptions: config.intake,
        logger: logger.child({ incarnation }),
        ...(config.buckets ? { staticBuckets: config.buckets } : {}),
      });
      return { intake, ownership };
    } catch (err) {
      // Not a run: its consumer must not go on pulling. A retry starts another
      // consumer on the same durable (same incarnation), and this one would take
      // deliveries for buckets it does not work and ack them unhandled.
      await intake.stop().catch(() => undefined);
      throw err;
    }
  };
  /**
   * Starts a new run once registered again; one at a time. A run whose lease was
   * lost while it started (its incarnation is not the member's any more) is
   * stopped, not kept: two runs of one controller would share its lanes, and the
   * one working no bucket would ack the other's deliveries unhandled.
   */
  let restarting: Promise<void> | undefined;
  const restart = (): Promise<void> =>
    (restarting ??= (async () => {
      while (!stopping && !run) {
        try {
          await membership.beat();
          if (membership.leaseValid()) {
            const incarnation = membership.incarnation();
            const started = await startRun();
            if (stopping || !membership.leaseValid() || membership.incarnation() !== incarnation) {
              logger.warn({ incarnation }, 'lease lost while the run started; starting another');
              await stopRun(started);
            } else run = started;
          }
        } catch (err) {
          logger.warn({ err }, 'could not start a new run; retrying');
        }
        if (!run) await new Promise((r) => setTimeout(r, 1000));
      }
    })().finally(() => (restarting = undefined)));

  run = await startRun();
  const leader = placed
    ? startPlacementLeader({
        membership,
        store,
        logger,
        options: {
          bucketCount: config.bucketCount,
          epsilon: config.epsilon,
          intervalMs: Math.max(100, Math.floor(config.heartbeatTtlMs / 10)),
          settleMs: Math.floor(config.heartbeatTtlMs / 2),
          refreshMs: 10_000,
          rebalanceMs: 5_000,
        },
      })
    : undefined;
  const resync = serveResync(hostApi);
  const rebuilder = mapping
    ? startMappingRebuild({
        nc,
        mapping,
        lanes,
        owned: () => run?.ownership.owned() ?? [],
        bucketCount: config.bucketCount,
        metrics,
        logger,
        checkMs: config.mappingCheckMs,
      })
    : undefined;
  const api: Subscription | undefined = config.serveApi
    ? serveApplyApi({
        nc,
        publisher,
        logger,
        onReplyRefused: () => (metrics.repliesRefused += 1),
        options: {
          bucketCount: config.bucketCount,
          decisionTimeoutMs: config.decisionTimeoutMs,
          // The tracker answers `incomplete` at its deadline: wait a little past it.
          programmedWaitMs: config.programmedDeadlineMs + 2_000,
        },
      })
    : undefined;
  // The server knows our subscriptions before anyone is told we started.
  await nc.flush();
  logger.info(
    {
      incarnation: membership.incarnation(),
      buckets: config.buckets ? config.buckets.length : 'placed',
      hosts: hosts.size(),
      api: config.serveApi,
    },
    'controller started',
  );

  let stopped: Promise<void> | undefined;
  return {
    instanceId: config.instanceId,
    incarnation: membership.incarnation,
    buckets: () => run?.ownership.owned() ?? [],
    isLeader: membership.isLeader,
    metrics,
    activeVpcs: () => lanes.size,
    programmed: () => ({ ...tracker.metrics, pending: tracker.pending }),
    registry: telemetry.registry,
    readiness: () => {
      const lag = run?.intake.lag().pending ?? 0;
      return {
        nats: connected() || 'not connected to NATS',
        placed: run
          ? run.ownership.isSettled() || 'buckets of the placement table not all acquired yet'
          : 'no run (membership lease lost)',
        caughtUp: lag <= config.readyMaxLag || `intake lag ${lag} > ${config.readyMaxLag}`,
      };
    },
    settled: async () => {
      while (!run) await new Promise((r) => setTimeout(r, 100));
      await run.ownership.settled();
    },
    stop: () =>
      (stopped ??= (async () => {
        stopping = true;
        api?.unsubscribe();
        resync.unsubscribe();
        await leader?.stop();
        await rebuilder?.stop();
        const current = run;
        if (current) {
          await current.ownership.stop(true);
          await teardown();
        }
        await membership.stop();
        await recovery.stop();
        tracker.stop();
        await mapping?.close();
        await hosts.stop();
        await nc.drain();
        logger.info({ ...metrics }, 'controller stopped');
      })()),
  };
}
