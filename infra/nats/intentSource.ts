/**
 * The VPC's intents from stream INTENTS, in sequence order from a cursor: one
 * direct batch get on the VPC's literal subject (`intent.<bucket>.<vpcId>`), which
 * the server answers from its per-subject index. Consumer deliveries only say
 * "there is more"; this is where the actor reads what to decide (DESIGN §6).
 *
 * On a replicated stream any replica may answer a direct get, and a follower may
 * be behind the leader (one that just came back, catching up): its page can end
 * before the sequence the actor was woken for. Deciding from it would skip that
 * intent for good (found by the fault suite: an intent lost when a node of a
 * three-node cluster came back). So a page that lacks `through` is completed from
 * the stream leader (STREAM.MSG.GET, next by subject), which has every
 * acknowledged message — unless the answer came from a leader already deposed (cut
 * off by a partition, it keeps answering as leader for up to ten seconds). Every
 * copy is a prefix of the stream, so a read that reaches `through` lacks nothing
 * before it; one that does not is refused (`StaleReadError`), never returned short.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { streams, subjects, type IntentSource, type StoredIntent } from '../../shared/index.js';
import { directPage, leaderNext, StaleReadError } from './bucketIntake.js';

export async function createJetStreamIntentSource(
  nc: NatsConnection,
  options: { stream?: string } = {},
): Promise<IntentSource> {
  const stream = options.stream ?? streams.intents;
  const jsm: JetStreamManager = await jetstreamManager(nc);
  return {
    async read(bucket, vpcId, afterSeq, max, through) {
      const subject = subjects.intentMapped(bucket, vpcId);
      const page: StoredIntent[] = (await directPage(jsm, stream, subject, afterSeq, max)).map(
        (m) => ({ ...m, time: m.time.toISOString() }),
      );
      if (through === undefined || through <= afterSeq || page.length >= max) return page;
      if (page.some((m) => m.seq === through)) return page;
      // What the replica had is a prefix of the stream: go on from its end at the leader.
      let after = page.at(-1)?.seq ?? afterSeq;
      while (page.length < max && after < through) {
        const m = await leaderNext(jsm, stream, subject, after);
        if (!m) break;
        page.push({ seq: m.seq, subject: m.subject, data: m.data, time: m.time.toISOString() });
        after = m.seq;
      }
      if (page.length < max && after < through)
        throw new StaleReadError(
          `${subject}: the copy of ${stream} that answered ends at ${after}, before ${through} (a replica or a deposed leader behind); read again`,
        );
      return page;
    },
  };
}
