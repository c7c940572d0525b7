/**
 * The VPC's intents from stream INTENTS, in sequence order from a cursor: one
 * direct batch get on the VPC's literal subject (`intent.<bucket>.<vpcId>`), which
 * the server answers from its per-subject index. Consumer deliveries only say
 * "there is more"; this is where the actor reads what to decide (DESIGN §6).
 */
import { JetStreamError, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { streams, subjects, type IntentSource, type StoredIntent } from '../../shared/index.js';

export async function createJetStreamIntentSource(
  nc: NatsConnection,
  options: { stream?: string } = {},
): Promise<IntentSource> {
  const stream = options.stream ?? streams.intents;
  const jsm: JetStreamManager = await jetstreamManager(nc);
  return {
    async read(bucket, vpcId, afterSeq, max): Promise<StoredIntent[]> {
      const subject = subjects.intentMapped(bucket, vpcId);
      const batch = await jsm.direct.getBatch(stream, {
        seq: afterSeq + 1,
        next_by_subj: subject,
        batch: max,
      });
      const out: StoredIntent[] = [];
      try {
        for await (const m of batch) {
          out.push({ seq: m.seq, subject: m.subject, data: m.data, time: m.time.toISOString() });
        }
      } catch (err) {
        // 404: no (more) message on the subject after that sequence.
        if (!(err instanceof JetStreamError && (err as { code?: number }).code === 404)) throw err;
      }
      return out;
    },
  };
}
