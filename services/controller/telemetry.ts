/**
 * The controller's Prometheus metrics (served on /metrics by main.ts):
 * - `alcor_intents_decided_total{outcome, reason}` — accepted or rejected
 *   (reason = error code); `alcor_intents_finished_total{outcome}` — programmed
 *   or incomplete: each intent counted once in each, so either sums;
 * - `alcor_stage_seconds{stage}` — decide (stored in INTENTS → appended to
 *   EVENTS), publish (→ goal states and status stored), ack (goal states out →
 *   one host's ack), programmed (→ the last host's ack);
 * - `alcor_intake_pending` — the intake consumer's lag; `alcor_bucket_inflight
 *   {bucket}` — intents being decided per worked bucket;
 * - `alcor_actors_active`, `alcor_buckets_owned`, `alcor_programmed_pending`;
 * - `alcor_programmed_{intents,incomplete_intents,acks,unmatched_acks,adopted,replayed_acks}_total`;
 * - the counters of ControllerMetrics as `alcor_controller_<name>_total`
 *   (passivations, hydrations, snapshots, …).
 */
import {
  Counter,
  createRegistry,
  liveGauge,
  objectCounters,
  stageHistogram,
  type CounterSpec,
  type Registry,
} from '../../infra/index.js';
import type { DecisionPublisher, Status } from '../../shared/index.js';
import type { ControllerMetrics } from './metrics.js';
import type { ProgrammedMetrics } from './programmed/tracker.js';

export interface ControllerTelemetry {
  registry: Registry;
  stage: (stage: string, seconds: number) => void;
  /** Counts every status that goes out through it. */
  counting: (publisher: DecisionPublisher) => DecisionPublisher;
}

export interface LiveCounts {
  activeVpcs: () => number;
  bucketsOwned: () => number;
  programmedPending: () => number;
  programmed: () => ProgrammedMetrics;
  intake: () => { pending: number; inFlight: Map<number, number> } | undefined;
  resyncWaiting: () => number;
}

const CONTROLLER_COUNTERS = {
  appended: 'Commits this controller appended to EVENTS',
  duplicates:
    'Intents found already decided (the log deduplicated them, or their id was sent again)',
  goalStates: 'Goal-state messages stored in GOALSTATES',
  goalStateDuplicates: 'Goal-state messages GOALSTATES dropped as duplicates (published again)',
  republished: 'Commits whose goal states were published again when a VPC was loaded',
  snapshots: 'VPC snapshots written',
  snapshotLoads: 'VPCs loaded from a snapshot',
  hydrations: 'VPCs loaded (from a snapshot and EVENTS)',
  passivations: 'VPCs unloaded after being idle',
  refused: 'Intake deliveries refused (a bad subject token, a bucket not this one)',
  mappingRestores: 'VPC host sets written to Redis again after Redis lost them',
  mappingRebuilds: 'Passes over the owned VPCs after the Redis mapping was found lost',
  mappingFailovers:
    'Redis Cluster failovers seen (slot masters changed): the mapping written again',
  resyncFulls: 'Full goal states sent on resync requests',
  resyncRefused: 'Resync requests refused as malformed',
  resyncDeferred:
    'Resync requests told to ask again later (retryAfterMs): more were waiting than are answered in time',
  acksRefused: 'Host acks refused as malformed',
  repliesRefused: 'Requests not answered: their reply subject was not an inbox',
  poisonEvents: 'Messages in EVENTS that are not commits (reported and passed over)',
} as const satisfies Record<keyof ControllerMetrics, string>;

const PROGRAMMED_COUNTERS = {
  programmed: {
    name: 'alcor_programmed_intents_total',
    help: 'Accepted intents every affected host applied',
  },
  incomplete: {
    name: 'alcor_programmed_incomplete_intents_total',
    help: 'Accepted intents whose deadline passed before every affected host applied them',
  },
  acks: 'Host acks matched to a waiting intent',
  unmatchedAcks: 'Host acks that matched no waiting intent (late, repeated, or for an older owner)',
  adopted: 'Waiting intents adopted from the previous owner of their bucket',
  replayedAcks: 'Stored acks replayed for adopted intents',
} as const satisfies Record<keyof ProgrammedMetrics, CounterSpec>;

export function createControllerTelemetry(
  instanceId: string,
  metrics: ControllerMetrics,
  live: LiveCounts,
): ControllerTelemetry {
  const registry = createRegistry('controller', instanceId);
  // Decided (accepted or rejected) and finished (programmed or incomplete) are
  // counted apart: each intent is counted once in each, so either sums.
  const decided = new Counter({
    name: 'alcor_intents_decided_total',
    help: 'Intents decided by this controller, by outcome (accepted, rejected) and rejection reason',
    labelNames: ['outcome', 'reason'],
    registers: [registry],
  });
  const finished = new Counter({
    name: 'alcor_intents_finished_total',
    help: 'Accepted intents whose hosts all applied them (programmed) or whose wait ended first (incomplete)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const stages = stageHistogram(registry);
  objectCounters<ControllerMetrics>(registry, 'alcor_controller', CONTROLLER_COUNTERS, () => [
    [{}, metrics],
  ]);
  objectCounters<ProgrammedMetrics>(registry, 'alcor_programmed', PROGRAMMED_COUNTERS, () => [
    [{}, live.programmed()],
  ]);
  liveGauge(registry, 'alcor_actors_active', 'VPC actors alive (not passivated)', live.activeVpcs);
  liveGauge(registry, 'alcor_buckets_owned', 'Buckets this controller works', live.bucketsOwned);
  liveGauge(
    registry,
    'alcor_resync_waiting',
    'Resync requests waiting for their turn to be answered',
    live.resyncWaiting,
  );
  liveGauge(
    registry,
    'alcor_programmed_pending',
    'Accepted intents waiting for host acks',
    live.programmedPending,
  );
  liveGauge(
    registry,
    'alcor_intake_pending',
    'Intake consumer lag: messages left after the last delivery',
    () => live.intake()?.pending ?? 0,
  );
  liveGauge(
    registry,
    'alcor_bucket_inflight',
    'Intents being decided, per worked bucket',
    () =>
      [...(live.intake()?.inFlight ?? [])].map(([bucket, n]) => [{ bucket: String(bucket) }, n]),
    ['bucket'],
  );

  const count = (status: Status): void => {
    if (status.outcome === 'accepted' || status.outcome === 'rejected')
      decided.inc({ outcome: status.outcome, reason: status.error?.code ?? '' });
    else finished.inc({ outcome: status.outcome });
  };
  return {
    registry,
    stage: (stage, seconds) => stages.observe({ stage }, seconds),
    counting: (publisher) => ({
      goalStates: (messages) => publisher.goalStates(messages),
      status: async (subject, status, msgId) => {
        await publisher.status(subject, status, msgId);
        count(status);
      },
    }),
  };
}
