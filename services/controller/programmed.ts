/**
 * "Programmed" (DESIGN §4.3): per accepted intent, the hosts its goal states reach
 * and their acks. When every one has applied, `programmed` goes out on
 * `status.<vpc>`; when every one has answered and some failed, or the deadline
 * passes first, `incomplete`, naming the failed and missing hosts.
 *
 * An ack matches an intent by VPC, host and revision; an applied (or failed) full
 * state at revision r answers every earlier revision of that VPC on that host.
 * The tracking lives in the owner's memory. When a bucket moves (handoff, or its
 * owner died), the new owner adopts the intents still waiting (see
 * programmedRecovery.ts): it rebuilds them from the logs and replays the acks
 * stored meanwhile, so each accepted intent still gets one `programmed` or
 * `incomplete`.
 */
import type { Logger } from '../../infra/index.js';
import {
  statusMsgId,
  subjects,
  type DecisionPublisher,
  type ErrorDetail,
  type GoalStateAck,
  type Status,
} from '../../shared/index.js';

export interface TrackedIntent {
  intentId: string;
  vpcId: string;
  bucket: number;
  revision: number;
  hosts: readonly string[];
}

interface Pending extends TrackedIntent {
  /** Opens once the intent's `accepted` status is out (`programmed` must not overtake it). */
  gate: Promise<void>;
  waiting: Set<string>;
  applied: number;
  failed: Map<string, ErrorDetail | undefined>;
  deadline: number;
  /** When tracking started (just before the goal states went out). */
  since: number;
  /** Adopted and its stored acks not replayed yet: the deadline waits. */
  held: boolean;
}

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
  private readonly byVpc = new Map<string, Pending[]>();
  /** Every intent pending, and those finished lately (by id, with when): tracked once. */
  private readonly known = new Map<string, number>();
  /**
   * Buckets whose acks this run receives. An intent of another (one given away,
   * decided late) is left to the bucket's new owner to adopt.
   */
  private readonly opened = new Set<number>();
  private readonly timer: NodeJS.Timeout;
  private size = 0;
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
    },
  ) {
    this.timer = setInterval(() => this.sweep(Date.now()), Math.min(250, deps.deadlineMs / 4));
    this.timer.unref();
  }

  get pending(): number {
    return this.size;
  }

  /**
   * Starts waiting for the intent's hosts; call it before the goal states go out
   * (an ack can beat the publish's own reply), and the returned `release` once
   * the `accepted` status is out. An intent already tracked (its goal states
   * published again, or adopted) keeps its first entry.
   */
  track(intent: TrackedIntent): () => void {
    let release: () => void = () => undefined;
    if (this.known.has(intent.intentId) || !this.opened.has(intent.bucket)) return release;
    const gate = new Promise<void>((resolve) => (release = resolve));
    this.add(intent, gate, Date.now(), false);
    return release;
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
    const entry = this.add(intent, Promise.resolve(), since, true);
    return () => {
      entry.held = false;
    };
  }

  /** The VPCs with intents waiting for acks here. */
  pendingVpcIds(): string[] {
    return [...this.byVpc.keys()];
  }

  /** Whether the intent is pending here or finished lately. */
  knows(intentId: string): boolean {
    return this.known.has(intentId);
  }

  private add(intent: TrackedIntent, gate: Promise<void>, since: number, held: boolean): Pending {
    const entry: Pending = {
      ...intent,
      gate,
      waiting: new Set(intent.hosts),
      applied: 0,
      failed: new Map(),
      deadline: since + this.deps.deadlineMs,
      since,
      held,
    };
    this.known.set(intent.intentId, Infinity);
    if (intent.hosts.length === 0) {
      void this.finish(entry);
      return entry;
    }
    let list = this.byVpc.get(intent.vpcId);
    if (!list) this.byVpc.set(intent.vpcId, (list = []));
    list.push(entry);
    this.size += 1;
    return entry;
  }

  /**
   * An NCA's ack (already validated). A stored ack replayed for adopted intents
   * comes with the time it was stored: it counts only before the deadline.
   */
  onAck(ack: GoalStateAck, storedAt?: number): void {
    if (storedAt === undefined) this.metrics.acks += 1;
    else this.metrics.replayedAcks += 1;
    const at = storedAt ?? Date.now();
    const list = this.byVpc.get(ack.vpcId);
    let matched = false;
    if (list) {
      // A copy: completing an intent takes it out of the list.
      for (const p of [...list]) {
        const covers =
          p.revision === ack.revision || (ack.mode === 'full' && p.revision < ack.revision);
        if (!covers || at > p.deadline || !p.waiting.delete(ack.hostId)) continue;
        matched = true;
        this.deps.stage?.('ack', (at - p.since) / 1000);
        if (ack.status === 'applied') p.applied += 1;
        else p.failed.set(ack.hostId, ack.error);
        if (p.waiting.size === 0) this.complete(p);
      }
    }
    if (!matched && storedAt === undefined) this.metrics.unmatchedAcks += 1;
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
    for (const [vpcId, list] of this.byVpc) {
      const kept = list.filter((p) => !buckets.has(p.bucket));
      for (const p of list) if (buckets.has(p.bucket)) this.known.delete(p.intentId);
      this.size -= list.length - kept.length;
      if (kept.length === 0) this.byVpc.delete(vpcId);
      else this.byVpc.set(vpcId, kept);
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private sweep(now: number): void {
    for (const list of [...this.byVpc.values()]) {
      for (const p of [...list]) if (p.deadline <= now && !p.held) this.complete(p);
    }
    const remember = this.deps.rememberMs ?? 2 * this.deps.deadlineMs;
    for (const [id, finished] of this.known) if (finished < now - remember) this.known.delete(id);
  }

  private complete(p: Pending): void {
    const list = this.byVpc.get(p.vpcId);
    if (!list) return;
    const at = list.indexOf(p);
    if (at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) this.byVpc.delete(p.vpcId);
    this.size -= 1;
    void this.finish(p);
  }

  private async finish(p: Pending): Promise<void> {
    this.known.set(p.intentId, Date.now());
    this.finishing.set(p.intentId, p.bucket);
    try {
      await this.publishFinal(p);
    } finally {
      this.finishing.delete(p.intentId);
    }
  }

  private async publishFinal(p: Pending): Promise<void> {
    await p.gate;
    const done = p.waiting.size === 0 && p.failed.size === 0;
    const status: Status = {
      intentId: p.intentId,
      vpcId: p.vpcId,
      revision: p.revision,
      outcome: done ? 'programmed' : 'incomplete',
      hosts: {
        total: p.hosts.length,
        applied: p.applied,
        failed: p.failed.size,
        pending: p.waiting.size,
      },
    };
    if (!done) {
      const missing = [...p.waiting].sort();
      const failedHosts = [...p.failed.keys()].sort();
      status.hosts = { ...status.hosts!, missing, failedHosts };
      const first = failedHosts[0];
      const firstError = first === undefined ? undefined : p.failed.get(first);
      status.error =
        failedHosts.length > 0
          ? {
              code: 'apply_failed',
              message: `${failedHosts.length} host(s) failed to apply: ${failedHosts.slice(0, 5).join(', ')}${
                firstError ? ` (${first}: ${firstError.code}: ${firstError.message})` : ''
              }`,
            }
          : {
              code: 'deadline_passed',
              message: `${missing.length} of ${p.hosts.length} host(s) did not ack within ${this.deps.deadlineMs} ms: ${missing.slice(0, 5).join(', ')}`,
            };
      this.metrics.incomplete += 1;
    } else {
      this.metrics.programmed += 1;
      this.deps.stage?.('programmed', (Date.now() - p.since) / 1000);
    }
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
        return;
      } catch (err) {
        if (++attempt >= STATUS_ATTEMPTS) {
          this.deps.logger.error(
            { intentId: p.intentId, vpcId: p.vpcId, outcome: status.outcome, err },
            `status not published after ${STATUS_ATTEMPTS} attempts`,
          );
          return;
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
  }
}
