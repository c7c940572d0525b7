/**
 * The sync API (DESIGN §4.1): request `alcor.intents.apply` with one envelope or an
 * array of up to 1,000; every controller serves it in one queue group. Each valid
 * intent is published to `intent.<vpcId>` (msgID = id) like any async client
 * would, then the bucket's owner is asked for the decision, which it gives once
 * its VPC actor has handled that INTENTS sequence. The reply holds one item per
 * intent, in request order.
 *
 * Beyond `accepted` / `rejected`, an item can be `pending`: stored, but undecided
 * when the deadline passed (its decision will still appear on `status.<vpcId>`).
 *
 * With the request header `Alcor-Wait: programmed` (and optionally
 * `Alcor-Wait-Ms`), each accepted item also carries `programmed`: `programmed` or
 * `incomplete` as published on `status.<vpcId>`, or `pending` when the wait ended
 * first (programmedWait.ts).
 */
import {
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type PubAck,
} from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import { answerJson, isInbox, type Logger } from '../../infra/index.js';
import {
  APPLY_QUEUE_GROUP,
  LIMITS,
  bucketOf,
  decodeJson,
  parseIntent,
  statusMsgId,
  subjects,
  type DecisionPublisher,
  type ErrorDetail,
  type VpcIntent,
} from '../../shared/index.js';
import type { DecisionAnswer, DecisionQuery } from './intake.js';
import { ProgrammedWatch, parseWaitHeaders, type ProgrammedAnswer } from './programmedWait.js';

export type ApplyReplyItem =
  | {
      id: string;
      vpcId: string;
      outcome: 'accepted';
      revision: number;
      /** With `Alcor-Wait: programmed` only. */
      programmed?: ProgrammedAnswer;
    }
  | { id?: string; vpcId?: string; outcome: 'rejected'; error: ErrorDetail }
  | { id: string; vpcId: string; outcome: 'pending'; error: ErrorDetail };

export type ApplyReply = ApplyReplyItem | ApplyReplyItem[] | { error: ErrorDetail };

export interface ApplyApiOptions {
  bucketCount: number;
  /** How long a request waits for decisions before answering `pending`. */
  decisionTimeoutMs: number;
  /** How long `Alcor-Wait: programmed` waits after the decisions, unless the request says. */
  programmedWaitMs: number;
}

const encoder = new TextEncoder();

interface Pending {
  index: number;
  intent: VpcIntent;
  ack?: PubAck;
}

export function serveApplyApi(deps: {
  nc: NatsConnection;
  publisher: DecisionPublisher;
  logger: Logger;
  options: ApplyApiOptions;
  /** A request whose reply subject was not an inbox (not answered, nothing applied). */
  onReplyRefused?: () => void;
}): Subscription {
  const { nc, logger, options } = deps;
  const js: JetStreamClient = jetstream(nc);
  let jsm: Promise<JetStreamManager> | undefined;
  const manager = () => (jsm ??= jetstreamManager(nc));

  const rejectInvalid = async (error: ErrorDetail, id?: string, vpcId?: string) => {
    const intentId = id ?? 'unknown';
    await deps.publisher.status(
      vpcId ? subjects.status(vpcId) : subjects.statusInvalid,
      { intentId, vpcId: vpcId ?? '', revision: 0, outcome: 'rejected', error },
      statusMsgId(intentId, `invalid-${error.code}`),
    );
  };

  /** Asks the owner of each bucket for its items' decisions, retrying until the deadline. */
  const decide = async (
    stored: Pending[],
    deadline: number,
  ): Promise<Map<number, DecisionAnswer[number]>> => {
    const byBucket = new Map<number, Pending[]>();
    for (const p of stored) {
      const b = bucketOf(p.intent.vpcId, options.bucketCount);
      const list = byBucket.get(b) ?? [];
      list.push(p);
      byBucket.set(b, list);
    }
    const out = new Map<number, DecisionAnswer[number]>();
    await Promise.all(
      [...byBucket].map(async ([bucket, items]) => {
        const query: DecisionQuery = {
          items: items.map((p) => ({
            vpcId: p.intent.vpcId,
            intentId: p.intent.id,
            seq: p.ack!.seq,
          })),
        };
        const payload = encoder.encode(JSON.stringify(query));
        while (Date.now() < deadline) {
          try {
            const reply = await nc.request(subjects.decisionQuery(bucket), payload, {
              timeout: Math.max(1, deadline - Date.now()),
            });
            const answers = reply.json<DecisionAnswer>();
            items.forEach((p, i) => out.set(p.index, answers[i] ?? null));
            return;
          } catch {
            // No owner yet (no responders) or a timeout: try again until the deadline.
            await new Promise((r) =>
              setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))),
            );
          }
        }
      }),
    );
    return out;
  };

  const handle = async (data: Uint8Array, headers?: MsgHdrs): Promise<ApplyReply> => {
    const waitRequest = parseWaitHeaders(
      (name) => (headers?.has(name) ? headers.get(name) : undefined),
      options.programmedWaitMs,
    );
    if (!waitRequest.ok) return { error: waitRequest.error };
    const json = decodeJson(data, LIMITS.batchBytes);
    if (!json.ok) return { error: json.error };
    const single = !Array.isArray(json.value);
    const raw: unknown[] = single ? [json.value] : (json.value as unknown[]);
    if (raw.length === 0)
      return { error: { code: 'empty_batch', message: 'the batch holds no intents' } };
    if (raw.length > LIMITS.batchSize) {
      return {
        error: {
          code: 'batch_too_large',
          message: `a batch holds at most ${LIMITS.batchSize} intents, got ${raw.length}`,
        },
      };
    }
    const deadline = Date.now() + options.decisionTimeoutMs;
    const replies: ApplyReplyItem[] = new Array<ApplyReplyItem>(raw.length);
    const valid: Pending[] = [];
    const invalid: Promise<void>[] = [];
    raw.forEach((item, index) => {
      const parsed = parseIntent(item);
      if (parsed.ok) {
        valid.push({ index, intent: parsed.value });
        return;
      }
      replies[index] = {
        ...(parsed.id === undefined ? {} : { id: parsed.id }),
        ...(parsed.vpcId === undefined ? {} : { vpcId: parsed.vpcId }),
        outcome: 'rejected',
        error: parsed.error,
      };
      invalid.push(rejectInvalid(parsed.error, parsed.id, parsed.vpcId));
    });
    const watch = waitRequest.wait
      ? await ProgrammedWatch.open(
          nc,
          manager,
          valid.map((p) => p.intent.vpcId),
        )
      : undefined;
    try {
      const wait = watch && waitRequest.wait ? { watch, ms: waitRequest.wait.ms } : undefined;
      return await decideAndAnswer(valid, replies, invalid, single, deadline, wait);
    } finally {
      watch?.close();
    }
  };

  const decideAndAnswer = async (
    valid: Pending[],
    replies: ApplyReplyItem[],
    invalid: Promise<void>[],
    single: boolean,
    deadline: number,
    wait: { watch: ProgrammedWatch; ms: number } | undefined,
  ): Promise<ApplyReply> => {
    // Published in request order on one connection: the stream keeps that order.
    const acks = await Promise.allSettled(
      valid.map((p) =>
        js.publish(subjects.intent(p.intent.vpcId), encoder.encode(JSON.stringify(p.intent)), {
          msgID: p.intent.id,
        }),
      ),
    );
    const stored: Pending[] = [];
    acks.forEach((result, i) => {
      const p = valid[i]!;
      if (result.status === 'fulfilled') {
        p.ack = result.value;
        stored.push(p);
      } else {
        replies[p.index] = {
          id: p.intent.id,
          vpcId: p.intent.vpcId,
          outcome: 'rejected',
          error: {
            code: 'unavailable',
            message: `not stored (${(result.reason as Error).message}); safe to send again with the same id`,
          },
        };
      }
    });
    const decisions = await decide(stored, deadline);
    for (const p of stored) {
      const { id, vpcId } = p.intent;
      const decided = decisions.get(p.index);
      if (decided) {
        replies[p.index] =
          decided.outcome === 'accepted'
            ? { id, vpcId, outcome: 'accepted', revision: decided.revision }
            : {
                id,
                vpcId,
                outcome: 'rejected',
                error: decided.error ?? { code: 'rejected', message: 'rejected' },
              };
      } else if (decided === null && p.ack!.duplicate) {
        replies[p.index] = {
          id,
          vpcId,
          outcome: 'rejected',
          error: {
            code: 'duplicate_id',
            message: `id ${id} was used by another intent (INTENTS sequence ${p.ack!.seq}) within the duplicate window`,
            path: 'id',
          },
        };
      } else {
        replies[p.index] = {
          id,
          vpcId,
          outcome: 'pending',
          error: {
            code: 'decision_timeout',
            message: `stored at INTENTS sequence ${p.ack!.seq}, not decided within ${options.decisionTimeoutMs} ms; the decision will appear on status.${vpcId}`,
          },
        };
      }
    }
    await Promise.allSettled(invalid);
    if (wait) await addProgrammed(wait.watch, wait.ms, stored, replies);
    return single ? replies[0]! : replies;
  };

  const addProgrammed = async (
    watch: ProgrammedWatch,
    ms: number,
    stored: Pending[],
    replies: ApplyReplyItem[],
  ): Promise<void> => {
    const accepted = stored.filter((p) => replies[p.index]?.outcome === 'accepted');
    // Decided before this request (a re-sent id): the answer may already be stored.
    await watch.lookUp(
      accepted
        .filter((p) => p.ack!.duplicate)
        .map((p) => ({ intentId: p.intent.id, vpcId: p.intent.vpcId })),
    );
    const answers = await watch.answersFor(
      accepted.map((p) => p.intent.id),
      ms,
    );
    for (const p of accepted) {
      const item = replies[p.index];
      if (item?.outcome === 'accepted') item.programmed = answers.get(p.intent.id);
    }
  };

  return nc.subscribe(subjects.applyIntents, {
    queue: APPLY_QUEUE_GROUP,
    callback: (err, msg) => {
      if (err) return;
      if (!isInbox(msg.reply)) {
        // Nobody could read the answer: nothing is applied in that requester's name.
        deps.onReplyRefused?.();
        return;
      }
      handle(msg.data, msg.headers).then(
        (reply) => answerJson(msg, reply),
        (e: unknown) => {
          logger.error({ err: e }, 'apply request failed');
          answerJson(msg, { error: { code: 'internal', message: (e as Error).message } });
        },
      );
    },
  });
}
