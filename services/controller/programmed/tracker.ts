/**
 * "Programmed" (DESIGN §4.3), wired to I/O: the rules are actors/vpc/programmed.ts
 * (which acks complete an intent, the deadline, the `incomplete` text); this keeps
 * the book of the buckets this run works, sweeps it against the clock, and
 * publishes each intent's final status on `status.<vpc>` — never before its
 * `accepted` is out.
 *
 * The tracking lives in the owner's memory. When a bucket moves (handoff, or its
 * owner died), the new owner adopts the intents still waiting (recovery.ts): it
 * rebuilds them from the logs and replays the acks stored meanwhile, so each
 * accepted intent still gets one `programmed` or `incomplete`.
 */
import type { Logger } from '../../../infra/index.js';
import {
  statusMsgId,
  subjects,
  type DecisionPublisher,
  type GoalStateAck,
  type Status,
} from '../../../shared/index.js';
import { vpc } from '../../../actors/index.js';

export type TrackedIntent = vpc.TrackedIntent;

export interface ProgrammedMetrics {
  programmed: number;
  incomplete: number;
  acks: number;
  /** Acks that matched no pending intent (late, repeated, or for an older owner). */
  unmatchedAcks: number;
  /** Intents adopted from a previous owner of their bucket. */
  adopted: number;
  /** Stored acks replayed for adopted intents. */
  replayedAcks: number;
}

/** Tries to publish a final status (backing off to 5 s: about a minute and a half). */
const STATUS_ATTEMPTS = 20;

export class ProgrammedTracker {
  private readonly book: vpc.ProgrammedBook;
  /**
   * Settles once the owner's outbox is done with the intent's `accepted` status:
   * true when it is stored, false when the outbox closed first (then this publishes
   * it before the final status: `programmed` must not overtake it).
   */
  private readonly gates = new Map<string, Promise<boolean>>();
  /** Every intent pending, and those finished lately (by id, with when): tracked once. */
  private readonly known = new Map<string, number>();
  /**
   * Buckets whose acks this run receives. An intent of another (one given away,
   * decided late) is left to the bucket's new owner to adopt.
   */
  private readonly opened = new Set<number>();
  private readonly timer: NodeJS.Timeout;
  private stopped = false;
  /** Intents whose final status is being published: intent id → bucket. */
  private readonly finishing = new Map<string, number>();
  readonly metrics: ProgrammedMetrics = {
    programmed: 0,
    incomplete: 0,
    acks: 0,
    unmatchedAcks: 0,
    adopted: 0,
    replayedAcks: 0,
  };

  constructor(
    private readonly deps: {
      publisher: DecisionPublisher;
      logger: Logger;
      deadlineMs: number;
      /** Stops publishing (the run lost its lease). */
      leaseValid: () => boolean;
      /** Observes the `ack` (per host) and `programmed` stages, in seconds. */
      stage?: (stage: 'ack' | 'programmed', seconds: number) => void;
      /** How long a finished intent's id is remembered (a later adoption skips it). */
      rememberMs?: number;
      /** The clock (tests). */
      now?: () => number;
    },
  ) {
    this.book = new vpc.ProgrammedBook(deps.deadlineMs);
    this.timer = setInterval(() => this.sweep(this.now()), Math.min(250, deps.deadlineMs / 4));
    this.timer.unref();
  }

  get pending(): number {
    return this.book.size;
  }

  /**
   * Starts waiting for the intent's hosts (before its goal states can be acked);
   * its final status waits for `gate`, its `accepted` being out. An intent already
   * tracked (published again, or adopted) keeps its first entry.
   */
  track(intent: TrackedIntent, gate: Promise<boolean>): void {
    if (this.known.has(intent.intentId) || !this.opened.has(intent.bucket)) return;
    this.add(intent, gate, this.now(), false);
  }

  /**
   * Takes over an intent a previous owner of its bucket left waiting: decided at
   * `since` (its deadline counts from then), its `accepted` status already out.
   * It waits, deadline or not, until the returned `release` (call it once the
   * acks stored since have been replayed). Undefined if the intent is known here.
   */
  adopt(intent: TrackedIntent, since: number): (() => void) | undefined {
    if (this.known.has(intent.intentId) || !this.opened.has(intent.bucket)) return undefined;
    this.metrics.adopted += 1;
    const entry = this.add(intent, Promise.resolve(true), since, true);
    return () => {
      entry.held = false;
    };
  }

  /** The VPCs with intents waiting for acks here. */
  pendingVpcIds(): string[] {
    return this.book.vpcIds();
  }

  /** Whether the intent is pending here or finished lately. */
  knows(intentId: string): boolean {
    return this.known.has(intentId);
  }

  private add(
    intent: TrackedIntent,
    gate: Promise<boolean>,
    since: number,
    held: boolean,
  ): vpc.PendingIntent {
    const entry = this.book.add(intent, since, held);
    this.known.set(intent.intentId, Infinity);
    this.gates.set(intent.intentId, gate);
    if (intent.hosts.length === 0) void this.finish(entry);
    return entry;
  }

  /**
   * An NCA's ack (already validated). A stored ack replayed for adopted intents
   * comes with the time it was stored: it counts only before the deadline.
   */
  onAck(ack: GoalStateAck, storedAt?: number): void {
    if (storedAt === undefined) this.metrics.acks += 1;
    else this.metrics.replayedAcks += 1;
    const at = storedAt ?? this.now();
    const { matched, done } = this.book.ack(ack, at);
    for (const p of matched) this.deps.stage?.('ack', (at - p.since) / 1000);
    for (const p of done) void this.finish(p);
    if (matched.length === 0 && storedAt === undefined) this.metrics.unmatchedAcks += 1;
  }

  /** Tracks intents of the bucket: this run works it now and receives its acks. */
  open(bucket: number): void {
    this.opened.add(bucket);
  }

  /**
   * Forgets the intents of buckets this run no longer owns, and tracks none of
   * theirs until opened again (decisions still finishing leave theirs to the new
   * owner, which adopts them once their `accepted` is out).
   */
  forget(buckets: ReadonlySet<number>): void {
    for (const b of buckets) this.opened.delete(b);
    // Those still publishing their final status stop; the bucket's next owner adopts them.
    for (const [id, bucket] of this.finishing) if (buckets.has(bucket)) this.known.delete(id);
    for (const id of this.book.forget(buckets)) {
      this.known.delete(id);
      this.gates.delete(id);
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  private sweep(now: number): void {
    for (const p of this.book.expire(now)) void this.finish(p);
    const remember = this.deps.rememberMs ?? 2 * this.deps.deadlineMs;
    for (const [id, finished] of this.known) if (finished < now - remember) this.known.delete(id);
  }

  private async finish(p: vpc.PendingIntent): Promise<void> {
    this.known.set(p.intentId, this.now());
    this.finishing.set(p.intentId, p.bucket);
    const gate = this.gates.get(p.intentId);
    this.gates.delete(p.intentId);
    try {
      // The outbox closed before `accepted` was stored (a reload, a lapsed lease):
      // it goes out here first — the same decision under the same msgID, so a
      // repeat is dropped — and the final status only after it.
      if ((await gate) === false) {
        const accepted = {
          intentId: p.intentId,
          vpcId: p.vpcId,
          revision: p.revision,
          outcome: 'accepted' as const,
        };
        if (!(await this.publish(p, accepted))) return;
      }
      await this.publishFinal(p);
    } finally {
      this.finishing.delete(p.intentId);
    }
  }

  private async publishFinal(p: vpc.PendingIntent): Promise<void> {
    const status = vpc.finalStatus(p, this.deps.deadlineMs);
    if (status.outcome === 'programmed') {
      this.metrics.programmed += 1;
      this.deps.stage?.('programmed', (this.now() - p.since) / 1000);
    } else this.metrics.incomplete += 1;
    await this.publish(p, status);
  }

  /** Publishes one of the intent's statuses; false when it could not (left to an adoption). */
  private async publish(p: vpc.PendingIntent, status: Status): Promise<boolean> {
    // Retried while this run works the bucket (a stream electing a leader, a server
    // restarting): the msgID makes a repeat harmless, and nothing else publishes it.
    // While the lease has lapsed it waits: either the lease comes back, or the run is
    // torn down and the bucket forgotten — then the bucket's next owner adopts it.
    for (let attempt = 0; this.opened.has(p.bucket) && !this.stopped;) {
      if (!this.deps.leaseValid()) {
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      try {
        await this.deps.publisher.status(
          subjects.status(p.vpcId),
          status,
          statusMsgId(p.intentId, status.outcome),
        );
        return true;
      } catch (err) {
        if (++attempt >= STATUS_ATTEMPTS) {
          this.deps.logger.error(
            { intentId: p.intentId, vpcId: p.vpcId, outcome: status.outcome, err },
            `status not published after ${STATUS_ATTEMPTS} attempts`,
          );
          return false;
        }
        this.deps.logger.warn(
          { intentId: p.intentId, vpcId: p.vpcId, outcome: status.outcome, err, attempt },
          'status not published yet; retrying',
        );
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
      }
    }
    // Not published here: let an adoption (by whichever run works the bucket next) take it.
    if (!this.opened.has(p.bucket)) this.known.delete(p.intentId);
    return false;
  }
}
