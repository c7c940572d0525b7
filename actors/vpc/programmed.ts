/**
 * "Programmed" (DESIGN §4.3), the rules: per accepted intent, the hosts its goal
 * states reach and their acks. When every one has applied, the intent is
 * `programmed`; when every one has answered and some failed, or the deadline passes
 * first, `incomplete`, naming the failed and missing hosts.
 *
 * An ack matches an intent by VPC, host and revision (the intents of a group commit
 * share their revision: one ack answers them all); an applied (or failed) full
 * state at revision r answers every earlier revision of that VPC on that host.
 * Time is an input: `now` and the ack's time come from the caller.
 */
import type { ErrorDetail, GoalStateAck, Status } from '../../shared/index.js';

export interface TrackedIntent {
  intentId: string;
  vpcId: string;
  bucket: number;
  revision: number;
  hosts: readonly string[];
}

export interface PendingIntent extends TrackedIntent {
  waiting: Set<string>;
  applied: number;
  failed: Map<string, ErrorDetail | undefined>;
  /** When tracking started (decided; for an adopted intent, when its previous owner decided it). */
  since: number;
  deadline: number;
  /** Adopted and its stored acks not replayed yet: the deadline waits. */
  held: boolean;
}

/** The intents waiting for acks, by VPC and revision. */
export class ProgrammedBook {
  private readonly byVpc = new Map<string, Map<number, PendingIntent[]>>();
  /** The same intents by bucket (a bucket given away is forgotten without a scan). */
  private readonly byBucket = new Map<number, Set<PendingIntent>>();
  private count = 0;

  constructor(readonly deadlineMs: number) {}

  get size(): number {
    return this.count;
  }

  /** Starts waiting; an intent with no host is done at once (returned as such). */
  add(intent: TrackedIntent, since: number, held = false): PendingIntent {
    const p: PendingIntent = {
      ...intent,
      waiting: new Set(intent.hosts),
      applied: 0,
      failed: new Map(),
      since,
      deadline: since + this.deadlineMs,
      held,
    };
    if (p.waiting.size === 0) return p;
    let revisions = this.byVpc.get(p.vpcId);
    if (!revisions) this.byVpc.set(p.vpcId, (revisions = new Map<number, PendingIntent[]>()));
    let inBucket = this.byBucket.get(p.bucket);
    if (!inBucket) this.byBucket.set(p.bucket, (inBucket = new Set()));
    inBucket.add(p);
    const list = revisions.get(p.revision);
    if (list) list.push(p);
    else revisions.set(p.revision, [p]);
    this.count += 1;
    return p;
  }

  /**
   * An ack at time `at`: the intents it answers (before their deadline), and those
   * it completed (every host answered) — taken out of the book.
   */
  ack(ack: GoalStateAck, at: number): { matched: PendingIntent[]; done: PendingIntent[] } {
    const revisions = this.byVpc.get(ack.vpcId);
    const matched: PendingIntent[] = [];
    const done: PendingIntent[] = [];
    if (!revisions) return { matched, done };
    const lists =
      ack.mode === 'full'
        ? [...revisions].filter(([r]) => r <= ack.revision).map(([, l]) => l)
        : [revisions.get(ack.revision) ?? []];
    for (const list of lists) {
      for (const p of [...list]) {
        if (at > p.deadline || !p.waiting.delete(ack.hostId)) continue;
        matched.push(p);
        if (ack.status === 'applied') p.applied += 1;
        else p.failed.set(ack.hostId, ack.error);
        if (p.waiting.size === 0) {
          this.remove(p);
          done.push(p);
        }
      }
    }
    return { matched, done };
  }

  /** The intents whose deadline passed by `now` (not held): taken out of the book. */
  expire(now: number): PendingIntent[] {
    const out: PendingIntent[] = [];
    for (const revisions of this.byVpc.values())
      for (const list of revisions.values())
        for (const p of list) if (p.deadline <= now && !p.held) out.push(p);
    for (const p of out) this.remove(p);
    return out;
  }

  /** Forgets the intents of these buckets (given away); returns their ids. */
  forget(buckets: ReadonlySet<number>): string[] {
    const gone: string[] = [];
    for (const bucket of buckets)
      for (const p of [...(this.byBucket.get(bucket) ?? [])]) {
        gone.push(p.intentId);
        this.remove(p);
      }
    return gone;
  }

  /** The VPCs with intents waiting. */
  vpcIds(): string[] {
    return [...this.byVpc.keys()];
  }

  private remove(p: PendingIntent): void {
    const revisions = this.byVpc.get(p.vpcId);
    const list = revisions?.get(p.revision);
    const at = list?.indexOf(p) ?? -1;
    if (!revisions || !list || at < 0) return;
    list.splice(at, 1);
    this.count -= 1;
    if (list.length === 0) revisions.delete(p.revision);
    if (revisions.size === 0) this.byVpc.delete(p.vpcId);
    const inBucket = this.byBucket.get(p.bucket);
    inBucket?.delete(p);
    if (inBucket?.size === 0) this.byBucket.delete(p.bucket);
  }
}

/** The final status of an intent taken out of the book: `programmed`, or `incomplete` saying why. */
/** Hosts an `incomplete` status names at most in `missing` and in `failedHosts` each. */
export const STATUS_MAX_HOSTS = 1000;

export function finalStatus(p: PendingIntent, deadlineMs: number): Status {
  const done = p.waiting.size === 0 && p.failed.size === 0;
  const hosts = {
    total: p.hosts.length,
    applied: p.applied,
    failed: p.failed.size,
    pending: p.waiting.size,
  };
  const base = { intentId: p.intentId, vpcId: p.vpcId, revision: p.revision };
  if (done) return { ...base, outcome: 'programmed', hosts };
  // Named up to STATUS_MAX_HOSTS each (the counts stay whole): a status of an
  // intent that reached thousands of hosts stays well under any message limit.
  const missing = [...p.waiting].sort().slice(0, STATUS_MAX_HOSTS);
  const failedHosts = [...p.failed.keys()].sort().slice(0, STATUS_MAX_HOSTS);
  const first = failedHosts[0];
  const firstError = first === undefined ? undefined : p.failed.get(first);
  return {
    ...base,
    outcome: 'incomplete',
    hosts: { ...hosts, missing, failedHosts },
    error:
      failedHosts.length > 0
        ? {
            code: 'apply_failed',
            message: `${p.failed.size} host(s) failed to apply: ${failedHosts.slice(0, 5).join(', ')}${
              firstError ? ` (${first}: ${firstError.code}: ${firstError.message})` : ''
            }`,
          }
        : {
            code: 'deadline_passed',
            message: `${p.waiting.size} of ${p.hosts.length} host(s) did not ack within ${deadlineMs} ms: ${missing.slice(0, 5).join(', ')}`,
          },
  };
}
