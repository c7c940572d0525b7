/**
 * What a controller runs for its buckets: the intake consumer over all of them
 * (deliveries wake VPC actors and are acked once handled) and, per bucket, the
 * decision responder the sync API asks (`alcor.ctl.decision.<bucket>`).
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  consumeIntake,
  ensureIntakeConsumer,
  type Intake,
  type IntakeDelivery,
  type IntakeOptions,
  type Logger,
} from '../../infra/index.js';
import {
  bucketOf,
  decodeIntent,
  ID_PATTERN,
  isId,
  statusMsgId,
  streams,
  subjects,
  type DecisionPublisher,
  type ErrorDetail,
} from '../../shared/index.js';
import type { VpcActors } from './vpcActors.js';
import type { ControllerMetrics } from './metrics.js';
import type { Decided } from './vpcWorker.js';

export interface DecisionQuery {
  items: Array<{ vpcId: string; intentId: string; seq: number }>;
}
export type DecisionAnswer = Array<Decided | null>;

export interface IntakeRuntime {
  stop: () => Promise<void>;
}

const encoder = new TextEncoder();

export async function startIntake(deps: {
  nc: NatsConnection;
  jsm: JetStreamManager;
  buckets: readonly number[];
  bucketCount: number;
  actors: VpcActors;
  publisher: DecisionPublisher;
  metrics: ControllerMetrics;
  logger: Logger;
  intake: IntakeOptions;
}): Promise<IntakeRuntime> {
  const { nc, jsm, actors, logger } = deps;
  const owned = new Set(deps.buckets);

  /**
   * An intake delivery that no VPC actor can take: answered on status and
   * terminated here; if that fails, it comes back later.
   */
  const refuse = (d: IntakeDelivery, error: ErrorDetail, vpcId?: string): void => {
    deps.metrics.refused += 1;
    void (async () => {
      const stored = await jsm.direct.getMessage(streams.intents, { seq: d.seq });
      const parsed = stored ? decodeIntent(stored.data) : undefined;
      const intentId = (parsed?.ok ? parsed.value.id : parsed?.id) ?? `seq-${d.seq}`;
      logger.warn({ intentId, seq: d.seq, subject: stored?.subject, ...error }, 'intent refused');
      await deps.publisher.status(
        vpcId ? subjects.status(vpcId) : subjects.statusInvalid,
        {
          intentId,
          vpcId: vpcId ?? d.vpcToken.slice(0, 64),
          revision: 0,
          outcome: 'rejected',
          error,
        },
        statusMsgId(intentId, `refused-${d.seq}`),
      );
      d.term(error.code);
    })().catch((err: unknown) => {
      logger.error({ err, seq: d.seq }, 'could not refuse an intent; it comes back');
      d.nak(1000);
    });
  };

  const onDelivery = (d: IntakeDelivery): void => {
    const { vpcToken, bucket, seq } = d;
    if (!ID_PATTERN.test(vpcToken)) {
      refuse(d, {
        code: 'id_format',
        message: `the subject's VPC id ${JSON.stringify(vpcToken.slice(0, 80))} is not an id (^[A-Za-z0-9_-]{1,64}$)`,
        path: 'vpcId',
      });
      return;
    }
    const home = bucketOf(vpcToken, deps.bucketCount);
    if (home !== bucket || !owned.has(bucket)) {
      refuse(
        d,
        {
          code: 'wrong_bucket',
          message: `${vpcToken} belongs to bucket ${home}, not ${bucket}: publish to intent.<vpcId>`,
          path: 'vpcId',
        },
        vpcToken,
      );
      return;
    }
    actors.wake(vpcToken, bucket, seq).then(
      () => d.ack(),
      (err: unknown) => {
        logger.warn({ err, vpcId: vpcToken, seq }, 'intent not handled; redelivering');
        d.nak(1000);
      },
    );
  };

  const responders: Subscription[] = deps.buckets.map((bucket) =>
    nc.subscribe(subjects.decisionQuery(bucket), {
      callback: (err, msg) => {
        if (err) return;
        void (async () => {
          let query: DecisionQuery;
          try {
            query = msg.json<DecisionQuery>();
            if (!Array.isArray(query.items)) throw new Error('items is not an array');
          } catch (e) {
            msg.respond(encoder.encode(JSON.stringify({ error: (e as Error).message })));
            return;
          }
          const answers: DecisionAnswer = await Promise.all(
            query.items.map(async ({ vpcId, intentId, seq }) => {
              if (!isId(vpcId) || bucketOf(vpcId, deps.bucketCount) !== bucket) return null;
              try {
                return (await actors.decision(vpcId, bucket, intentId, seq)) ?? null;
              } catch {
                return null;
              }
            }),
          );
          msg.respond(encoder.encode(JSON.stringify(answers)));
        })();
      },
    }),
  );
  await ensureIntakeConsumer(jsm, deps.buckets, deps.intake);
  const intake: Intake = await consumeIntake(nc, deps.buckets, onDelivery, deps.intake);

  return {
    stop: async () => {
      for (const r of responders) r.unsubscribe();
      await intake.stop();
    },
  };
}
