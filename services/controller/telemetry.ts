/**
 * The controller's Prometheus metrics (served on /metrics by main.ts):
 * - `alcor_intents_total{outcome, reason}` — every status this controller
 *   published: accepted, rejected (reason = error code), programmed, incomplete;
 * - `alcor_stage_seconds{stage}` — decide (stored in INTENTS → appended to
 *   EVENTS), publish (→ goal states and status stored), ack (goal states out →
 *   one host's ack), programmed (→ the last host's ack);
 * - `alcor_intake_pending` — the intake consumer's lag; `alcor_bucket_inflight
 *   {bucket}` — intents being decided per worked bucket;
 * - `alcor_actors_active`, `alcor_buckets_owned`, `alcor_programmed_pending`;
 * - `alcor_programmed_{programmed,incomplete,acks,unmatched_acks,adopted,replayed_acks}_total`;
 * - the counters of ControllerMetrics as `alcor_controller_<name>_total`
 *   (passivations, hydrations, snapshots, …).
 */
import {
  Counter,
  createRegistry,
  liveGauge,
  objectCounters,
  stageHistogram,
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
}

export function createControllerTelemetry(
  instanceId: string,
  metrics: ControllerMetrics,
  live: LiveCounts,
): ControllerTelemetry {
  const registry = createRegistry('controller', instanceId);
  const intents = new Counter({
    name: 'alcor_intents_total',
    help: 'Statuses published, by outcome (accepted, rejected, programmed, incomplete) and rejection reason',
    labelNames: ['outcome', 'reason'],
    registers: [registry],
  });
  const stages = stageHistogram(registry);
  objectCounters(
    registry,
    'alcor_controller',
    Object.keys(metrics) as Array<keyof ControllerMetrics>,
    () => [[{}, metrics]],
  );
  objectCounters(
    registry,
    'alcor_programmed',
    ['programmed', 'incomplete', 'acks', 'unmatchedAcks', 'adopted', 'replayedAcks'],
    () => [[{}, live.programmed()]],
  );
  liveGauge(registry, 'alcor_actors_active', 'VPC actors alive (not passivated)', live.activeVpcs);
  liveGauge(registry, 'alcor_buckets_owned', 'Buckets this controller works', live.bucketsOwned);
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
    intents.inc({ outcome: status.outcome, reason: status.error?.code ?? '' });
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
