/**
 * The sync API (DESIGN §4.1): request `alcor.intents.apply` with one envelope or an
 * array of up to 1,000; every controller serves it in one queue group. Each
 * intent is published to `intent.<vpcId>` (msgID = id) like any async client
 * would, and answered by its own status on `status.<vpcId>` — the one channel its
 * owner answers on (statusWatch.ts). The reply holds one item per intent, in
 * request order.
 *
 * Every item that names a VPC and an id is published as sent, valid or not, so the
 * two ways in judge alike: the VPC's owner refuses an invalid one (same size limit,
 * same validation) and records its IntentRejected in EVENTS, and the item answers
 * with that decision. A decided item carries `revision`: for a refusal, the
 * revision that recorded it, which is where the VPC is now (a `revision_conflict`
 * retried with it goes through unless the VPC moved again). Items without a usable
 * VPC id are answered at once and noted on `status._invalid`, as the intake does.
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
  type ApplyReply,
  type ApplyReplyItem,
  type DecisionPublisher,
  type ErrorDetail,
  type ProgrammedAnswer,
  type Status,
} from '../../../shared/index.js';
import { StatusRouter, parseWaitHeaders, type StatusWatch } from './statusWatch.js';

/** The reply's types are the contract's (shared/contracts/applyReply.ts, docs/schemas). */
export type { ApplyReply, ApplyReplyItem } from '../../../shared/index.js';

export interface ApplyApiOptions {
  bucketCount: number;
  /** How long a request waits for decisions before answering `pending`. */
  decisionTimeoutMs: number;
  /** How long `Alcor-Wait: programmed` waits after the decisions, unless the request says. */
  programmedWaitMs: number;
}

const encoder = new TextEncoder();

/** An item to publish to `intent.<vpcId>`: valid, or invalid for its owner to refuse. */
interface Pending {
  index: number;
  id: string;
  vpcId: string;
  kind: unknown;
  bytes: Uint8Array;
  ack?: PubAckInfo;
}

/**
 * An item of a request as the intake would see it published: its bytes, then the
 * intake's own checks (size, then validation). Its id and VPC are those it names
 * in a usable form.
 */
function examine(item: unknown): {
  bytes?: Uint8Array;
  id?: string;
  vpcId?: string;
  /** Whether its owner will know it by its id (not when over the size limit: not read). */
  named: boolean;
  error?: ErrorDetail;
} {
  const parsed = parseIntent(item);
  const ids = parsed.ok ? { id: parsed.value.id, vpcId: parsed.value.vpcId } : parsed;
  const named = {
    ...(ids.id === undefined ? {} : { id: ids.id }),
    ...(ids.vpcId === undefined ? {} : { vpcId: ids.vpcId }),
  };
  // Naming no VPC, it goes nowhere: nothing to encode (it may be nested past what
  // JSON.stringify's recursion can take; JSON.parse took it).
  if (ids.vpcId === undefined) return { ...named, named: false, error: errorOf(parsed) };
  let bytes: Uint8Array;
  try {
    bytes = encoder.encode(JSON.stringify(item));
  } catch {
    return { ...named, named: false, error: errorOf(parsed) };
  }
  // The intake's size check (its error, without parsing what is within the limit).
  const oversize =
    bytes.byteLength > LIMITS.intentBytes ? decodeJson(bytes, LIMITS.intentBytes) : undefined;
  return {
    bytes,
    ...named,
    named: oversize === undefined && ids.id !== undefined,
    ...(oversize && !oversize.ok
      ? { error: oversize.error }
      : parsed.ok
        ? {}
        : { error: parsed.error }),
  };
}

const errorOf = (parsed: ReturnType<typeof parseIntent>): ErrorDetail =>
  parsed.ok ? { code: 'invalid_value', message: 'invalid intent' } : parsed.error;

/** Why an intent was not stored, as the client should read it. */
function notStored(err: Error): string {
  // nats-server's answer to a write past its storage limit (max_file_store).
  if (/insufficient resources/i.test(err.message))
    return `not stored: JetStream's storage is full (${err.message}); safe to send again with the same id once space is freed`;
  return `not stored (${err.message}); safe to send again with the same id`;
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

  /** An item naming no usable VPC: no owner can record it, so status._invalid notes it. */
  const rejectInvalid = async (error: ErrorDetail, id?: string) => {
    const intentId = id ?? 'unknown';
    await deps.publisher.status(
      subjects.statusInvalid,
      { intentId, vpcId: '', revision: 0, outcome: 'rejected', error },
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
      return stored.subject.endsWith(`.${p.vpcId}`) && kind === p.kind;
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
    const publish: Pending[] = [];
    const unnamed: Array<Promise<unknown>> = [];
    const invalid: Promise<void>[] = [];
    raw.forEach((item, index) => {
      const { bytes, id, vpcId, named, error } = examine(item);
      const kind = (item as { kind?: unknown } | null)?.kind;
      if (named && bytes && id !== undefined && vpcId !== undefined) {
        publish.push({ index, id, vpcId, kind, bytes });
        return;
      }
      replies[index] = {
        ...(id === undefined ? {} : { id }),
        ...(vpcId === undefined ? {} : { vpcId }),
        outcome: 'rejected',
        error: error ?? { code: 'invalid_value', message: 'invalid intent' },
      };
      // Without an id its owner can read, its VPC still records the refusal (as
      // `invalid-<sequence>`), like the same bytes published; without a VPC only
      // status._invalid can.
      if (vpcId !== undefined && bytes)
        unnamed.push(intents.publish(subjects.intent(vpcId), bytes).catch(() => undefined));
      else invalid.push(rejectInvalid(replies[index].error, id));
    });
    // Watching before publishing: no answer can come before the interest.
    const watch = router.watch(publish.map((p) => ({ intentId: p.id, vpcId: p.vpcId })));
    try {
      await store(publish, replies);
      const stored = publish.filter((p) => p.ack);
      // Decided before this request (a re-sent id): its answers may be stored already.
      const resent = stored.filter((p) => p.ack!.duplicate);
      if (resent.length > 0)
        await watch.lookUp(resent.map((p) => ({ intentId: p.id, vpcId: p.vpcId })));
      await watch.until(
        stored.map((p) => p.id),
        false,
        deadline - Date.now(),
      );
      for (const p of stored) replies[p.index] = await answerFor(p, watch);
      await Promise.allSettled([...invalid, ...unnamed]);
      if (waitRequest.wait) await addProgrammed(watch, waitRequest.wait.ms, stored, replies);
      return single ? replies[0]! : replies;
    } finally {
      watch.close();
    }
  };

  /** Publishes the named items, in request order on one connection (the stream keeps it). */
  const store = async (publish: Pending[], replies: ApplyReplyItem[]): Promise<void> => {
    const acks = await Promise.allSettled(
      publish.map((p) => intents.publish(subjects.intent(p.vpcId), p.bytes, { msgId: p.id })),
    );
    acks.forEach((result, i) => {
      const p = publish[i]!;
      if (result.status === 'fulfilled') p.ack = result.value;
      else
        replies[p.index] = {
          id: p.id,
          vpcId: p.vpcId,
          outcome: 'rejected',
          error: { code: 'unavailable', message: notStored(result.reason as Error) },
        };
    });
  };

  const answerFor = async (p: Pending, watch: StatusWatch): Promise<ApplyReplyItem> => {
    const { id, vpcId } = p;
    const decided: Status | undefined = watch.decided.get(id);
    // Sent before (the stream dropped it as a duplicate, or its owner answered it again).
    const again = p.ack!.duplicate || decided?.resent === true ? { unchanged: true as const } : {};
    if (decided)
      return decided.outcome === 'accepted'
        ? { id, vpcId, outcome: 'accepted', revision: decided.revision, ...again }
        : {
            id,
            vpcId,
            outcome: 'rejected',
            revision: decided.revision,
            ...again,
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
      accepted.map((p) => p.id),
      true,
      ms,
    );
    for (const p of accepted) {
      const item = replies[p.index];
      if (item?.outcome !== 'accepted') continue;
      const s = watch.finals.get(p.id);
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
