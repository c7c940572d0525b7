/**
 * Adopting the intents a bucket's previous owner left waiting for acks (issue 9:
 * nothing lost when a bucket moves). The tracker lives in the owner's memory; when
 * this run starts working buckets, it looks back a window in the logs:
 *
 * 1. EVENTS: the commits accepted in those buckets within the window, and the
 *    commits the owner's hydration published again (`recheck`);
 * 2. STATUS: of those, the ones whose `accepted` is out and that have neither
 *    `programmed` nor `incomplete` yet (if `accepted` is missing, the owner's
 *    hydration publishes the commit again and tracks it itself);
 * 3. each such VPC folded from EVENTS up to its last waiting revision, which gives
 *    the hosts every waiting commit reached (the actor's own `affectedHosts`);
 * 4. the tracker adopts them (held: no deadline yet), then the acks ACKS stored
 *    since the window began are replayed into it, then they are released.
 *
 * Acks arriving live meanwhile match too (the bucket's ack subscription is up
 * before the replay reads ACKS), and a host's second ack is ignored. Buckets
 * acquired together are recovered in one pass.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { readStreamRange, type Logger } from '../../../infra/index.js';
import {
  bucketOf,
  decodeEventMessage,
  readAck,
  streams,
  subjects,
  type Status,
} from '../../../shared/index.js';
import { vpc } from '../../../actors/index.js';
import type { ProgrammedTracker, TrackedIntent } from './tracker.js';
import { foldVpc } from '../vpcs/history.js';

/** A failed pass is tried again after this long times the failures in a row, at most MAX_RETRY_MS. */
const RETRY_MS = 1000;
const MAX_RETRY_MS = 5000;
/** Up to this many VPCs, ACKS is read with a filter per VPC; beyond, all of it. */
const MAX_ACK_FILTERS = 64;

export interface RecoveryDeps {
  nc: NatsConnection;
  tracker: ProgrammedTracker;
  bucketCount: number;
  /** How far back to look: the deadline plus the time a dead owner takes to be replaced. */
  windowMs: number;
  logger: Logger;
  /** Buckets acquired within this long are recovered together. */
  batchMs?: number;
}

interface Waiting {
  intentId: string;
  vpcId: string;
  bucket: number;
  revision: number;
  /** When it was decided (EVENTS' time; for a recheck, its `accepted` status's). */
  decidedAt?: number;
  /** Known for a recheck; folded from EVENTS otherwise. */
  hosts?: readonly string[];
}

export class ProgrammedRecovery {
  private queued = new Set<number>();
  private rechecks = new Map<string, TrackedIntent>();
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Passes failed in a row. */
  private failures = 0;

  constructor(private readonly deps: RecoveryDeps) {}

  /** A bucket this run started working. */
  add(bucket: number): void {
    if (this.stopped) return;
    this.queued.add(bucket);
    this.timer ??= setTimeout(() => this.flush(), this.deps.batchMs ?? 100);
  }

  /**
   * A commit this run published again on hydration (its previous owner may have
   * published it, and its hosts acked, already): adopted like the rest if it has
   * no final status yet.
   */
  recheck(intent: TrackedIntent): void {
    if (this.stopped) return;
    this.rechecks.set(intent.intentId, intent);
    this.timer ??= setTimeout(() => this.flush(), this.deps.batchMs ?? 100);
  }

  /**
   * After this run's NATS connection was down (a server lost, a network blip), the
   * acks its subscriptions missed meanwhile are in ACKS: replays those stored since
   * `from` for the intents still waiting here.
   */
  replaySince(from: Date): Promise<void> {
    this.chain = this.chain.then(async () => {
      if (this.stopped) return;
      const vpcIds = this.deps.tracker.pendingVpcIds();
      if (vpcIds.length === 0) return;
      try {
        const before = this.deps.tracker.metrics.replayedAcks;
        await this.replayAcks(vpcIds, from);
        this.deps.logger.info(
          { vpcs: vpcIds.length, replayed: this.deps.tracker.metrics.replayedAcks - before, from },
          'acks missed while disconnected replayed from ACKS',
        );
      } catch (err) {
        this.deps.logger.warn({ err }, 'acks missed while disconnected not replayed');
      }
    });
    return this.chain;
  }

  /** Resolves once every recovery started so far is done. */
  idle(): Promise<void> {
    return this.chain;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.chain;
  }

  private flush(): void {
    this.timer = undefined;
    const buckets = this.queued;
    const rechecks = [...this.rechecks.values()];
    this.queued = new Set();
    this.rechecks = new Map();
    this.chain = this.chain.then(async () => {
      if (this.stopped) return;
      const started = performance.now();
      try {
        const found = await this.recover(buckets, rechecks);
        this.deps.logger[found.adopted > 0 ? 'info' : 'debug'](
          {
            buckets: buckets.size,
            rechecks: rechecks.length,
            ...found,
            ms: Math.round(performance.now() - started),
          },
          'adopted intents waiting for acks',
        );
        this.failures = 0;
      } catch (err) {
        // JetStream unavailable a while (a node lost, a leader moving): the same
        // pass again later, or what the previous owner left waiting gets no status.
        // A bucket given away meanwhile is skipped by the tracker.
        this.failures += 1;
        const retryMs = Math.min(RETRY_MS * this.failures, MAX_RETRY_MS);
        if (this.failures === 1 || this.failures % 10 === 0)
          this.deps.logger.warn(
            {
              err,
              buckets: buckets.size,
              rechecks: rechecks.length,
              failures: this.failures,
              retryMs,
            },
            'programmed recovery failed; retrying',
          );
        for (const b of buckets) this.queued.add(b);
        for (const r of rechecks)
          if (!this.rechecks.has(r.intentId)) this.rechecks.set(r.intentId, r);
        if (!this.stopped) this.timer ??= setTimeout(() => this.flush(), retryMs);
      }
    });
  }

  /**
   * One pass over the logs for `buckets` and the commits to recheck: the commits
   * accepted (in the window, and rechecked), those still waiting for a final
   * status, and how many of them were adopted.
   */
  async recover(
    buckets: ReadonlySet<number>,
    rechecks: readonly TrackedIntent[] = [],
  ): Promise<{ accepted: number; waiting: number; adopted: number }> {
    const { nc, tracker, bucketCount } = this.deps;
    const from = new Date(Date.now() - this.deps.windowMs);
    const waiting =
      buckets.size > 0 ? await this.acceptedCommits(buckets, from) : new Map<string, Waiting>();
    for (const r of rechecks) waiting.set(r.intentId, r);
    const accepted = waiting.size;
    if (accepted === 0) return { accepted, waiting: 0, adopted: 0 };
    await this.dropAnswered(waiting, from);
    const intents: { intent: TrackedIntent; since: number }[] = [];
    // By intent: a group's commits share one revision.
    const toFold = new Map<string, Map<string, Waiting>>();
    for (const w of waiting.values()) {
      if (tracker.knows(w.intentId)) continue;
      if (w.hosts) {
        intents.push({ intent: { ...w, hosts: w.hosts }, since: w.decidedAt! });
        continue;
      }
      const of = toFold.get(w.vpcId) ?? new Map<string, Waiting>();
      of.set(w.intentId, w);
      toFold.set(w.vpcId, of);
    }
    for (const [vpcId, of] of toFold) {
      await foldVpc(
        nc,
        vpcId,
        (r) => {
          const w = of.get(r.commit.intentId);
          if (w?.revision === r.revision)
            intents.push({
              intent: { ...w, hosts: vpc.affectedHosts(r.state, r.messages) },
              since: w.decidedAt!,
            });
          return true;
        },
        { revision: Math.max(...[...of.values()].map((w) => w.revision)) },
        bucketCount,
      );
    }
    const releases: (() => void)[] = [];
    const vpcIds = new Set<string>();
    for (const { intent, since } of intents) {
      // Undefined for a bucket given away meanwhile, or an intent known here.
      const release = tracker.adopt(intent, since);
      if (!release) continue;
      releases.push(release);
      vpcIds.add(intent.vpcId);
    }
    try {
      if (releases.length > 0) await this.replayAcks([...vpcIds], from);
    } finally {
      for (const release of releases) release();
    }
    return { accepted, waiting: waiting.size, adopted: releases.length };
  }

  /** The commits accepted in `buckets` since `from`, by intent id. */
  private async acceptedCommits(
    buckets: ReadonlySet<number>,
    from: Date,
  ): Promise<Map<string, Waiting>> {
    const found = new Map<string, Waiting>();
    for await (const m of readStreamRange(this.deps.nc, streams.events, {
      filter: subjects.eventsAll,
      fromTime: from,
    })) {
      const vpcId = m.subject.slice(m.subject.indexOf('.') + 1);
      const bucket = bucketOf(vpcId, this.deps.bucketCount);
      if (!buckets.has(bucket)) continue;
      const decoded = decodeEventMessage(vpcId, m.data);
      if (!decoded.ok) continue; // not a commit: the actor reports it when it folds
      for (const commit of decoded.value) {
        if (commit.events[0]?.type === 'IntentRejected') continue;
        found.set(commit.intentId, {
          intentId: commit.intentId,
          vpcId,
          bucket,
          revision: m.seq,
          decidedAt: m.time.getTime(),
        });
      }
    }
    return found;
  }

  /**
   * Keeps the intents whose `accepted` is out and that got no final status yet
   * (a recheck takes its decision time from its first `accepted`).
   */
  private async dropAnswered(waiting: Map<string, Waiting>, from: Date): Promise<void> {
    const accepted = new Set<string>();
    const decoder = new TextDecoder();
    for await (const m of readStreamRange(this.deps.nc, streams.status, {
      filter: subjects.statusAll,
      fromTime: from,
    })) {
      let status: Status;
      try {
        status = JSON.parse(decoder.decode(m.data)) as Status;
      } catch {
        continue;
      }
      const w = waiting.get(status.intentId);
      if (!w) continue;
      if (status.outcome !== 'accepted') waiting.delete(status.intentId);
      else if (!accepted.has(w.intentId)) {
        accepted.add(w.intentId);
        w.decidedAt ??= m.time.getTime();
      }
    }
    for (const id of waiting.keys()) if (!accepted.has(id)) waiting.delete(id);
  }

  /** The acks ACKS stored since `from` for these VPCs, into the tracker. */
  private async replayAcks(vpcIds: readonly string[], from: Date): Promise<void> {
    const { nc, tracker, bucketCount } = this.deps;
    const filter =
      vpcIds.length <= MAX_ACK_FILTERS
        ? vpcIds.map((v) => subjects.acksOfVpc(bucketOf(v, bucketCount), v))
        : subjects.acksAll;
    for await (const m of readStreamRange(nc, streams.acks, { filter, fromTime: from })) {
      const ack = readAck(m.subject, m.data, bucketCount);
      if (ack.ok) tracker.onAck(ack.value, m.time.getTime());
    }
  }
}
