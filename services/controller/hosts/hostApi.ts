/**
 * What a controller answers for the hosts (DESIGN §4.5): NCA acks on
 * `gsack.<bucket>.<vpc>.<host>` (per bucket it works) feed the programmed
 * tracker; `alcor.resync.<host>` gets full states of the host's VPCs this run
 * owns; `alcor.ctl.mapping.<bucket>` (a southbound module found a VPC's host set
 * missing in Redis) writes it again. Malformed input is counted and logged, never
 * thrown.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { answerJson, answerable, type Logger } from '../../../infra/index.js';
import {
  bucketOf,
  decodeJson,
  formatBucketSet,
  goalStateMsgId,
  isId,
  readAck,
  parseBucketSet,
  parseResyncRequest,
  subjects,
  type DecisionPublisher,
  type ErrorDetail,
  type HostLookup,
  type HostMapping,
  type ResyncReply,
} from '../../../shared/index.js';
import type { BucketResource } from '../buckets/intake.js';
import { ensureVpcMapping } from '../vpcs/mappingRebuild.js';
import type { ControllerMetrics } from '../metrics.js';
import type { ProgrammedTracker } from '../programmed/tracker.js';
import type { ProgrammedRecovery } from '../programmed/recovery.js';
import type { VpcLanes } from '../vpcs/lanes.js';
import type { ResyncGate } from './resyncGate.js';

/** Largest ack or resync request read. */
const MAX_BYTES = 64 * 1024;

export interface HostApiDeps {
  nc: NatsConnection;
  instanceId: string;
  bucketCount: number;
  lanes: VpcLanes;
  tracker: ProgrammedTracker;
  /** Adopts what a bucket's previous owner left waiting (none: nothing adopted). */
  recovery?: ProgrammedRecovery;
  mapping: HostMapping | undefined;
  publisher: DecisionPublisher;
  lookupHost: HostLookup;
  /** Buckets this run works now. */
  owned: () => ReadonlySet<number>;
  metrics: ControllerMetrics;
  logger: Logger;
  /** Paces resync answers (absent: each is answered as it comes). */
  resyncGate?: ResyncGate;
}

/** The subscriptions that live while `bucket` is worked, and the tracker's share of it. */
export function bucketSubscriptions(deps: HostApiDeps, bucket: number): BucketResource[] {
  const { nc, tracker, metrics, logger } = deps;
  tracker.open(bucket);
  const acks = nc.subscribe(subjects.ackBucket(bucket), {
    callback: (err, msg) => {
      if (err) return;
      const ack = readAck(msg.subject, msg.data, deps.bucketCount);
      if (!ack.ok) {
        metrics.acksRefused += 1;
        logger.warn({ subject: msg.subject.slice(0, 200), ...ack.error }, 'ack refused');
        return;
      }
      tracker.onAck(ack.value);
    },
  });
  const rebuild = nc.subscribe(subjects.mappingRebuild(bucket), {
    callback: (err, msg) => {
      if (err || !answerable(msg, () => (metrics.repliesRefused += 1))) return;
      void (async () => {
        const vpcId = msg.string();
        if (!isId(vpcId) || bucketOf(vpcId, deps.bucketCount) !== bucket) {
          answerJson(msg, { ok: false, error: 'not a VPC of the bucket' });
          return;
        }
        try {
          await ensureVpcMapping(deps.lanes, vpcId, bucket);
          answerJson(msg, { ok: true });
        } catch (e) {
          answerJson(msg, { ok: false, error: (e as Error).message });
        }
      })();
    },
  });
  // After the ack subscription: acks from now on match live, earlier ones are replayed.
  deps.recovery?.add(bucket);
  return [acks, rebuild, { unsubscribe: () => tracker.forget(new Set([bucket])) }];
}

/** Serves `alcor.resync.*` (every controller; each answers for the VPCs it owns). */
export function serveResync(deps: HostApiDeps): Subscription {
  const { nc, metrics } = deps;
  const refuse = (msg: Msg, error: ErrorDetail): void => {
    metrics.resyncRefused += 1;
    answerJson(msg, { error });
  };
  return nc.subscribe(subjects.resyncAll, {
    callback: (err, msg) => {
      // Full states go out only for a requester that can read the answer itself.
      if (err || !answerable(msg, () => (metrics.repliesRefused += 1))) return;
      void (async () => {
        const hostToken = msg.subject.split('.')[2] ?? '';
        const json =
          msg.data.length === 0
            ? { ok: true as const, value: { hostId: hostToken } }
            : decodeJson(msg.data, MAX_BYTES);
        const request = json.ok ? parseResyncRequest(json.value) : json;
        if (!request.ok) return refuse(msg, request.error);
        const { hostId, vpcIds } = request.value;
        if (hostId !== hostToken)
          return refuse(msg, {
            code: 'subject_mismatch',
            message: `hostId ${hostId} is not the subject's host ${hostToken}`,
            path: 'hostId',
          });
        let asked: number[] | undefined;
        try {
          if (request.value.buckets !== undefined)
            asked = parseBucketSet(request.value.buckets, deps.bucketCount, 'buckets');
        } catch (e) {
          return refuse(msg, {
            code: 'out_of_range',
            message: (e as Error).message,
            path: 'buckets',
          });
        }
        const admission = (await deps.resyncGate?.enter()) ?? { admitted: true, done: () => {} };
        if (!admission.admitted) {
          // Claims no bucket: the agent asks this owner's buckets again after the wait.
          metrics.resyncDeferred += 1;
          const reply: ResyncReply = {
            hostId,
            owner: deps.instanceId,
            vpcs: [],
            buckets: '',
            bucketCount: deps.bucketCount,
            retryAfterMs: admission.retryAfterMs,
          };
          return answerJson(msg, reply);
        }
        try {
          await answerResync(deps, msg, hostId, vpcIds, asked);
        } finally {
          admission.done();
        }
      })().catch((e: unknown) => {
        // Not answered (the connection closing): the agent asks again.
        deps.logger.warn({ subject: msg.subject.slice(0, 200), err: e }, 'resync not answered');
      });
    },
  });
}

/** Sends the host full states of its VPCs in the owned (and asked) buckets, and replies what it sent. */
async function answerResync(
  deps: HostApiDeps,
  msg: Msg,
  hostId: string,
  vpcIds: string[] | undefined,
  asked: number[] | undefined,
): Promise<void> {
  const { metrics, logger } = deps;
  // The buckets this answer covers: those owned, of the asked ones.
  const owned = deps.owned();
  const covers = new Set(asked ? asked.filter((b) => owned.has(b)) : owned);
  let candidates: string[];
  if (vpcIds) candidates = vpcIds;
  else if (deps.mapping)
    candidates = await deps.mapping.vpcsOf(hostId).catch((e: unknown) => {
      logger.warn({ hostId, err: e }, "resync: the host's VPCs not read");
      covers.clear(); // nothing answered: the agent asks again
      return [];
    });
  else candidates = [];
  const mine = candidates.filter((v) => covers.has(bucketOf(v, deps.bucketCount)));
  const nonce = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const sent: ResyncReply['vpcs'] = [];
  const publishing: Array<Promise<unknown>> = [];
  await Promise.all(
    mine.map(async (vpcId) => {
      try {
        const lane = await deps.lanes.load(vpcId, bucketOf(vpcId, deps.bucketCount));
        const full = await lane.fullStateFor(hostId);
        const place = full?.place ?? deps.lookupHost(hostId);
        if (!full) {
          // Not loaded (reloading after a conflict): the agent asks again. A VPC
          // with no history has nothing to send: answered.
          if (!lane.loaded) covers.delete(bucketOf(vpcId, deps.bucketCount));
          return;
        }
        if (!place) return; // a host the directory does not know holds nothing
        const { message } = full;
        // Issued at once, as read: a later group's goal states cannot pass it
        // (the stream and the host would see an older full after newer deltas).
        publishing.push(
          deps.publisher.goalStates([
            {
              subject: subjects.goalStateHost(place, hostId),
              // Not the join's msgId: the stream must store a resync even inside
              // the duplicate window of an identical full.
              msgId: `${goalStateMsgId(vpcId, message.revision, hostId)}:resync:${nonce}`,
              message,
            },
          ]),
        );
        sent.push({ vpcId, revision: message.revision });
      } catch (e) {
        logger.warn({ hostId, vpcId, err: e }, 'resync of a VPC failed');
        covers.delete(bucketOf(vpcId, deps.bucketCount)); // the agent asks again
      }
    }),
  );
  try {
    await Promise.all(publishing);
    metrics.resyncFulls += publishing.length;
  } catch (e) {
    logger.warn({ hostId, err: e }, 'resync full states not published');
    sent.length = 0;
    covers.clear();
  }
  const reply: ResyncReply = {
    hostId,
    owner: deps.instanceId,
    vpcs: sent,
    buckets: formatBucketSet(covers),
    bucketCount: deps.bucketCount,
  };
  answerJson(msg, reply);
}
