/**
 * The VPC's intents from stream INTENTS, in sequence order from a cursor: one
 * direct batch get on the VPC's literal subject (`intent.<bucket>.<vpcId>`), which
 * the server answers from its per-subject index. Consumer deliveries only say
 * "there is more"; this is where the actor reads what to decide (DESIGN §6).
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { streams, subjects, type IntentSource } from '../../shared/index.js';
import { directPage } from './bucketIntake.js';

export async function createJetStreamIntentSource(
  nc: NatsConnection,
  options: { stream?: string } = {},
): Promise<IntentSource> {
  const stream = options.stream ?? streams.intents;
  const jsm: JetStreamManager = await jetstreamManager(nc);
  return {
    async read(bucket, vpcId, afterSeq, max) {
      const page = await directPage(
        jsm,
        stream,
        subjects.intentMapped(bucket, vpcId),
        afterSeq,
        max,
      );
      return page.map((m) => ({ ...m, time: m.time.toISOString() }));
    },
  };
}
