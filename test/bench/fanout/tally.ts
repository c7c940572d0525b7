/**
 * What a delivery mode's simulated agents received, against what they needed:
 * per host delivered/needed, per intent the time its last needed message reached
 * its last host (intent → programmed, as far as delivery goes).
 */
import type { Delivery, FanoutWorkload } from './workload.js';

/** Carried with every message (a NATS header, a Kafka header): which delivery it is. */
export const KEY_HEADER = 'Alcor-Bench-Key';
export const keyOf = (intent: number, delivery: number): string => `${intent}.${delivery}`;
/** Keys of the probes sent to every host after a broker restart (not workload messages). */
export const PROBE_PREFIX = 'probe.';

export class Tally {
  readonly delivered = new Map<string, number>();
  /** Per intent: receipts still missing; when published; when the last came. */
  private readonly missing: Int32Array;
  readonly startedAt: Float64Array;
  readonly doneAt: Float64Array;
  private readonly seen = new Set<string>();
  private remaining: number;
  private onAll: (() => void) | undefined;
  duplicates = 0;

  constructor(private readonly workload: FanoutWorkload) {
    const n = workload.intents.length;
    this.missing = new Int32Array(n);
    this.startedAt = new Float64Array(n);
    this.doneAt = new Float64Array(n);
    let remaining = 0;
    workload.intents.forEach((list, i) => {
      const m = list.reduce((a, d) => a + d.recipients.length, 0);
      this.missing[i] = m;
      if (m > 0) remaining += 1;
    });
    this.remaining = remaining;
    for (const h of workload.hosts) this.delivered.set(h.hostId, 0);
  }

  started(intent: number): void {
    this.startedAt[intent] = performance.now();
    if (this.missing[intent] === 0) this.doneAt[intent] = this.startedAt[intent]!;
  }

  /**
   * `hostId` received the message with this key; `delivered` 0 when it got its
   * content some other way (a resync's full state, counted by itself).
   */
  received(hostId: string, key: string | undefined, delivered = 1): void {
    if (key?.startsWith(PROBE_PREFIX)) return this.probe?.(hostId);
    this.delivered.set(hostId, (this.delivered.get(hostId) ?? 0) + delivered);
    const d = this.resolve(key);
    if (!d) return;
    const [intent, delivery] = d;
    if (!delivery.recipients.includes(hostId)) return;
    const pair = `${key}:${hostId}`;
    if (this.seen.has(pair)) {
      this.duplicates += 1;
      return;
    }
    this.seen.add(pair);
    this.count(intent, 1);
  }

  /**
   * One message read for a whole group of hosts (a topic every agent of the group
   * reads): each host of the group is delivered it, its recipients have it.
   */
  receivedByGroup(hostIds: readonly string[], key: string | undefined): void {
    if (key?.startsWith(PROBE_PREFIX)) return void hostIds.forEach((h) => this.probe?.(h));
    for (const h of hostIds) this.delivered.set(h, (this.delivered.get(h) ?? 0) + 1);
    const d = this.resolve(key);
    if (!d) return;
    const [intent, delivery] = d;
    if (this.seen.has(key!)) {
      this.duplicates += 1;
      return;
    }
    this.seen.add(key!);
    this.count(intent, delivery.recipients.length);
  }

  /**
   * A record of a partition `hostIds` share, keyed for `target`: each of them
   * fetches it, the target takes it, the others skip it.
   */
  receivedInShared(hostIds: readonly string[], target: string, key: string | undefined): void {
    if (key?.startsWith(PROBE_PREFIX)) return this.probe?.(target);
    for (const h of hostIds)
      if (h !== target) this.delivered.set(h, (this.delivered.get(h) ?? 0) + 1);
    this.received(target, key);
  }

  /** Called with the host of each probe received (after a broker restart), instead of counting it. */
  probe: ((hostId: string) => void) | undefined;

  /** Only the first `n` intents were published: the rest are not waited for. */
  limit(n: number): void {
    for (let i = n; i < this.missing.length; i++) {
      if (this.missing[i]! > 0) {
        this.missing[i] = 0;
        this.remaining -= 1;
      }
    }
    if (this.remaining === 0) this.onAll?.();
  }

  /** Whether `hostId` has the message with this key. */
  has(hostId: string, key: string | undefined): boolean {
    return this.seen.has(`${key}:${hostId}`);
  }

  /** Resolves once every intent's needed messages reached their hosts (or the timeout). */
  all(timeoutMs: number): Promise<boolean> {
    if (this.remaining === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.onAll = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  /** Intents whose needed messages all arrived. */
  get complete(): number {
    return this.workload.intents.length - this.remaining;
  }

  private resolve(key: string | undefined): [number, Delivery] | undefined {
    const [i, d] = (key ?? '').split('.').map(Number);
    const delivery = this.workload.intents[i!]?.[d!];
    if (delivery === undefined) return undefined; // a resync's full state: no key
    return [i!, delivery];
  }

  private count(intent: number, n: number): void {
    const before = this.missing[intent]!;
    this.missing[intent] = before - n;
    if (before > 0 && before - n <= 0) {
      this.doneAt[intent] = performance.now();
      this.remaining -= 1;
      if (this.remaining === 0) this.onAll?.();
    }
  }
}
