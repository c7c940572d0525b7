/**
 * The sync API (DESIGN §4.1): request `alcor.intents.apply` with one envelope or an
 * array of up to 1,000; every controller serves it in one queue group. Each valid
 * intent is published to `intent.<vpcId>` (msgID = id) like any async client
 * would, and answered by its own status on `status.<vpcId>` — the one channel its
 * owner answers on (statusWatch.ts). The reply holds one item per intent, in
 * request order.
 *
 * Beyond `accepted` / `rejected`, an item can be `pending`: stored, but undecided
 * when the deadline passed (its decision will still appear on `status.<vpcId>`).
 *
 * With the request header `Alcor-Wait: programmed` (and optionally
 * `Alcor-Wait-Ms`), each accepted item also carries `programmed`: `programmed` or
 * `incomplete` as published on `status.<vpcId>`, or `pending` when the wait ended
 * first.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  answerJson,
  createAsyncPublisher,
  answerable,
  type Logger,
  type PubAckInfo,
} from '../../../infra/index.js';
import {
  APPLY_QUEUE_GROUP,
  LIMITS,
  decodeJson,
  parseIntent,
  statusMsgId,
  streams,
  subjects,
  type DecisionPublisher,
  type ErrorDetail,
  type Status,
  type VpcIntent,
} from '../../../shared/index.js';
import {
  StatusRouter,
  parseWaitHeaders,
  type ProgrammedAnswer,
  type StatusWatch,
} from './statusWatch.js';

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
  ack?: PubAckInfo;
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
  const intents = createAsyncPublisher(nc);
  let jsm: Promise<JetStreamManager> | undefined;
  const manager = () => (jsm ??= jetstreamManager(nc));
  const router = new StatusRouter(nc, manager);

  const rejectInvalid = async (error: ErrorDetail, id?: string, vpcId?: string) => {
    const intentId = id ?? 'unknown';
    await deps.publisher.status(
      vpcId ? subjects.status(vpcId) : subjects.statusInvalid,
      { intentId, vpcId: vpcId ?? '', revision: 0, outcome: 'rejected', error },
      statusMsgId(intentId, `invalid-${error.code}`),
    );
  };

  /**
   * An id the stream already held (a duplicate ack): the same intent sent again
   * (its answers are in STATUS, or still coming), or another intent that used
   * the id — then the intent stored under it is of another VPC or says otherwise.
   */
  const sameAsStored = async (p: Pending): Promise<boolean> => {
    try {
      const stored = await (
        await manager()
      ).direct.getMessage(streams.intents, {
        seq: p.ack!.seq,
      });
      if (!stored) return false;
      const parsed = decodeJson(stored.data, LIMITS.intentBytes);
      const kind = parsed.ok ? (parsed.value as { kind?: unknown } | null)?.kind : undefined;
      return stored.subject.endsWith(`.${p.intent.vpcId}`) && kind === p.intent.kind;
    } catch {
      return true; // not known: wait for its answer like any other
    }
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
    // Watching before publishing: no answer can come before the interest.
    const watch = router.watch(
      valid.map((p) => ({ intentId: p.intent.id, vpcId: p.intent.vpcId })),
    );
    try {
      await store(valid, replies);
      const stored = valid.filter((p) => p.ack);
      // Decided before this request (a re-sent id): its answers may be stored already.
      const resent = stored.filter((p) => p.ack!.duplicate);
      if (resent.length > 0)
        await watch.lookUp(resent.map((p) => ({ intentId: p.intent.id, vpcId: p.intent.vpcId })));
      await watch.until(
        stored.map((p) => p.intent.id),
        false,
        deadline - Date.now(),
      );
      for (const p of stored) replies[p.index] = await answerFor(p, watch);
      await Promise.allSettled(invalid);
      if (waitRequest.wait) await addProgrammed(watch, waitRequest.wait.ms, stored, replies);
      return single ? replies[0]! : replies;
    } finally {
      watch.close();
    }
  };

  /** Publishes the valid intents, in request order on one connection (the stream keeps it). */
  const store = async (valid: Pending[], replies: ApplyReplyItem[]): Promise<void> => {
    const acks = await Promise.allSettled(
      valid.map((p) =>
        intents.publish(subjects.intent(p.intent.vpcId), encoder.encode(JSON.stringify(p.intent)), {
          msgId: p.intent.id,
        }),
      ),
    );
    acks.forEach((result, i) => {
      const p = valid[i]!;
      if (result.status === 'fulfilled') p.ack = result.value;
      else
        replies[p.index] = {
          id: p.intent.id,
          vpcId: p.intent.vpcId,
          outcome: 'rejected',
          error: {
            code: 'unavailable',
            message: `not stored (${(result.reason as Error).message}); safe to send again with the same id`,
          },
        };
    });
  };

  const answerFor = async (p: Pending, watch: StatusWatch): Promise<ApplyReplyItem> => {
    const { id, vpcId } = p.intent;
    const decided: Status | undefined = watch.decided.get(id);
    if (decided)
      return decided.outcome === 'accepted'
        ? { id, vpcId, outcome: 'accepted', revision: decided.revision }
        : {
            id,
            vpcId,
            outcome: 'rejected',
            error: decided.error ?? { code: 'rejected', message: 'rejected' },
          };
    if (p.ack!.duplicate && !(await sameAsStored(p)))
      return {
        id,
        vpcId,
        outcome: 'rejected',
        error: {
          code: 'duplicate_id',
          message: `id ${id} was used by another intent (INTENTS sequence ${p.ack!.seq}) within the duplicate window`,
          path: 'id',
        },
      };
    return {
      id,
      vpcId,
      outcome: 'pending',
      error: {
        code: 'decision_timeout',
        message: `stored at INTENTS sequence ${p.ack!.seq}, not decided within ${options.decisionTimeoutMs} ms; the decision will appear on status.${vpcId}`,
      },
    };
  };

  const addProgrammed = async (
    watch: StatusWatch,
    ms: number,
    stored: Pending[],
    replies: ApplyReplyItem[],
  ): Promise<void> => {
    const accepted = stored.filter((p) => replies[p.index]?.outcome === 'accepted');
    await watch.until(
      accepted.map((p) => p.intent.id),
      true,
      ms,
    );
    for (const p of accepted) {
      const item = replies[p.index];
      if (item?.outcome !== 'accepted') continue;
      const s = watch.finals.get(p.intent.id);
      item.programmed = s
        ? {
            outcome: s.outcome as 'programmed' | 'incomplete',
            ...(s.hosts ? { hosts: s.hosts } : {}),
            ...(s.error ? { error: s.error } : {}),
          }
        : ({
            outcome: 'pending',
            error: {
              code: 'programmed_timeout',
              message: `not programmed within ${ms} ms; the answer will appear on its status subject`,
            },
          } satisfies ProgrammedAnswer);
    }
  };

  return nc.subscribe(subjects.applyIntents, {
    queue: APPLY_QUEUE_GROUP,
    callback: (err, msg) => {
      // Nobody could read the answer: nothing is applied in that requester's name.
      if (err || !answerable(msg, () => deps.onReplyRefused?.())) return;
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
