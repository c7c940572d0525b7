/**
 * The controller (DESIGN §2, §6): owns a set of buckets; per bucket an intake
 * consumer and a decision responder; one VPC actor per active VPC; the sync API in
 * the controllers' queue group. `start(config) → {stop()}` boots it in-process.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  DEFAULT_LAYOUT,
  connectNats,
  createHostDirectory,
  createJetStreamDecisionPublisher,
  createJetStreamEventLog,
  createJetStreamIntentSource,
  createKvSnapshotStore,
  ensureLayout,
  type HostDirectory,
  type Logger,
} from '../../infra/index.js';
import { serveApplyApi } from './applyApi.js';
import { parseControllerConfig, type ControllerConfigInput } from './config.js';
import { startIntake, type IntakeRuntime } from './intake.js';
import { Limiter } from './limiter.js';
import { createMetrics, type ControllerMetrics } from './metrics.js';
import { VpcActors } from './vpcActors.js';

export { controllerConfigFromEnv, parseControllerConfig } from './config.js';
export type { ControllerConfig, ControllerConfigInput } from './config.js';
export type { ControllerMetrics } from './metrics.js';
export type { ApplyReply, ApplyReplyItem } from './applyApi.js';

export interface Controller {
  instanceId: string;
  buckets: readonly number[];
  metrics: ControllerMetrics;
  /** VPC actors alive now. */
  activeVpcs: () => number;
  stop: () => Promise<void>;
}

export async function start(input: ControllerConfigInput & { log: Logger }): Promise<Controller> {
  const { log: parentLog, ...rest } = input;
  const config = parseControllerConfig(rest);
  const logger = parentLog.child({ instanceId: config.instanceId });
  const nc: NatsConnection = await connectNats(config.natsUrl, {
    name: `alcor-controller-${config.instanceId}`,
  });
  const jsm = await jetstreamManager(nc);
  await ensureLayout(nc, jsm, { ...DEFAULT_LAYOUT, replicas: config.replicas });

  const hosts: HostDirectory = await createHostDirectory(nc, {
    onInvalid: (hostId, error) => logger.warn({ hostId, ...error }, 'host record ignored'),
  });
  if (!hosts.complete()) {
    logger.warn(
      { loaded: hosts.size() },
      'KV hosts still loading; ports on hosts not loaded yet are rejected as unknown_host',
    );
  }
  const publisher = createJetStreamDecisionPublisher(nc);
  const metrics = createMetrics();
  const actors = new VpcActors({
    log: await createJetStreamEventLog(nc),
    intents: await createJetStreamIntentSource(nc),
    publisher,
    snapshots: await createKvSnapshotStore(nc),
    lookupHost: hosts.lookup,
    logger,
    limiter: new Limiter(config.concurrency),
    metrics,
    snapshotEvery: config.snapshotEvery,
    readBatch: config.readBatch,
    idleMs: config.idleMs,
  });

  const intake: IntakeRuntime = await startIntake({
    nc,
    jsm,
    buckets: config.buckets,
    bucketCount: config.bucketCount,
    actors,
    publisher,
    metrics,
    logger,
    intake: config.intake,
  });
  const api: Subscription | undefined = config.serveApi
    ? serveApplyApi({
        nc,
        publisher,
        logger,
        options: { bucketCount: config.bucketCount, decisionTimeoutMs: config.decisionTimeoutMs },
      })
    : undefined;
  logger.info(
    { buckets: config.buckets.length, hosts: hosts.size(), api: config.serveApi },
    'controller started',
  );

  let stopping: Promise<void> | undefined;
  return {
    instanceId: config.instanceId,
    buckets: config.buckets,
    metrics,
    activeVpcs: () => actors.size,
    stop: () =>
      (stopping ??= (async () => {
        api?.unsubscribe();
        await intake.stop();
        actors.stopAll();
        await hosts.stop();
        await nc.drain();
        logger.info({ ...metrics }, 'controller stopped');
      })()),
  };
}
