/**
 * "Programmed" (DESIGN §4.3): per accepted intent, the hosts its goal states reach
 * and their acks. When every one has applied, `programmed` goes out on
 * `status.<vpc>`; when every one has answered and some failed, or the deadline
 * passes first, `incomplete`, naming the failed and missing hosts.
 *
 * An ack matches an intent by VPC, host and revision; an applied (or failed) full
 * state at revision r answers every earlier revision of that VPC on that host.
 * The tracking lives in the owner's memory: an intent pending when its bucket
 * moves or its owner dies gets no `programmed` (docs/southbound.md).
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
}

export interface ProgrammedMetrics {
  programmed: number;
  incomplete: number;
  acks: number;
  /** Acks that matched no pending intent (late, repeated, or for an older owner). */
  unmatchedAcks: number;
}

export class ProgrammedTracker {
  private readonly byVpc = new Map<string, Pending[]>();
  private readonly timer: NodeJS.Timeout;
  private size = 0;
  readonly metrics: ProgrammedMetrics = { programmed: 0, incomplete: 0, acks: 0, unmatchedAcks: 0 };

  constructor(
    private readonly deps: {
      publisher: DecisionPublisher;
      logger: Logger;
      deadlineMs: number;
      /** Stops publishing (the run lost its lease). */
      leaseValid: () => boolean;
      /** Observes the `ack` (per host) and `programmed` stages, in seconds. */
      stage?: (stage: 'ack' | 'programmed', seconds: number) => void;
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
   * the `accepted` status is out.
   */
  track(intent: TrackedIntent): () => void {
    let release: () => void = () => undefined;
    const entry: Pending = {
      ...intent,
      gate: new Promise<void>((resolve) => (release = resolve)),
      waiting: new Set(intent.hosts),
      applied: 0,
      failed: new Map(),
      deadline: Date.now() + this.deps.deadlineMs,
      since: Date.now(),
    };
    if (intent.hosts.length === 0) {
      void this.finish(entry);
      return release;
    }
    let list = this.byVpc.get(intent.vpcId);
    if (!list) this.byVpc.set(intent.vpcId, (list = []));
    list.push(entry);
    this.size += 1;
    return release;
  }

  /** An NCA's ack (already validated). */
  onAck(ack: GoalStateAck): void {
    this.metrics.acks += 1;
    const list = this.byVpc.get(ack.vpcId);
    let matched = false;
    if (list) {
      // A copy: completing an intent takes it out of the list.
      for (const p of [...list]) {
        const covers =
          p.revision === ack.revision || (ack.mode === 'full' && p.revision < ack.revision);
        if (!covers || !p.waiting.delete(ack.hostId)) continue;
        matched = true;
        this.deps.stage?.('ack', (Date.now() - p.since) / 1000);
        if (ack.status === 'applied') p.applied += 1;
        else p.failed.set(ack.hostId, ack.error);
        if (p.waiting.size === 0) this.complete(p);
      }
    }
    if (!matched) this.metrics.unmatchedAcks += 1;
  }

  /** Forgets the intents of buckets this run no longer owns. */
  forget(buckets: ReadonlySet<number>): void {
    for (const [vpcId, list] of this.byVpc) {
      const kept = list.filter((p) => !buckets.has(p.bucket));
      this.size -= list.length - kept.length;
      if (kept.length === 0) this.byVpc.delete(vpcId);
      else this.byVpc.set(vpcId, kept);
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sweep(now: number): void {
    for (const list of [...this.byVpc.values()]) {
      for (const p of [...list]) if (p.deadline <= now) this.complete(p);
    }
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
    if (!this.deps.leaseValid()) return;
    try {
      await this.deps.publisher.status(
        subjects.status(p.vpcId),
        status,
        statusMsgId(p.intentId, status.outcome),
      );
    } catch (err) {
      this.deps.logger.warn(
        { intentId: p.intentId, vpcId: p.vpcId, outcome: status.outcome, err },
        'status not published',
      );
    }
  }
}
