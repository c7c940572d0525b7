/**
 * Paces the answers to resync requests (`alcor.resync.<host>`). After a reconnect
 * storm every agent asks at once; answering them all at once would take the
 * controller's event loop from its other tenants' intents. The gate lets a few
 * answers run at a time, in arrival order; a request that would wait longer than
 * the agent waits for an answer, or finds the queue full, is told to come back
 * later (`retryAfterMs`), sized from the queue ahead of it.
 */

export interface ResyncGateOptions {
  /** Answers worked at once (0: no limit). */
  concurrency: number;
  /** Longest wait in the queue before the request is answered `retryAfterMs` instead. */
  maxWaitMs: number;
  /** Requests queued at most; more are answered `retryAfterMs` at once. */
  maxQueued: number;
}

/** Admitted: run, then call `done`. Refused: the requester asks again after `retryAfterMs`. */
export type Admission =
  { admitted: true; done: () => void } | { admitted: false; retryAfterMs: number };

interface Waiter {
  resolve: (a: Admission) => void;
  timer: NodeJS.Timeout;
}

/** Bounds of the retry advice (ms). */
const MIN_RETRY_MS = 250;
const MAX_RETRY_MS = 10_000;

export class ResyncGate {
  private running = 0;
  private readonly queue: Waiter[] = [];
  /** Mean time of one answer (ms), a moving average; sizes the retry advice. */
  private meanMs = 20;
  /** Requests answered `retryAfterMs` so far. */
  deferred = 0;

  constructor(private readonly o: ResyncGateOptions) {}

  get queued(): number {
    return this.queue.length;
  }

  get inFlight(): number {
    return this.running;
  }

  enter(): Promise<Admission> {
    if (this.o.concurrency <= 0 || this.running < this.o.concurrency)
      return Promise.resolve(this.admit());
    if (this.queue.length >= this.o.maxQueued)
      return Promise.resolve(this.defer(this.queue.length));
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve,
        // Not worked in time: the requester has stopped listening by then.
        timer: setTimeout(() => {
          const at = this.queue.indexOf(waiter);
          if (at < 0) return;
          this.queue.splice(at, 1);
          resolve(this.defer(at));
        }, this.o.maxWaitMs),
      };
      this.queue.push(waiter);
    });
  }

  /** How long until `ahead` queued answers are worked, as advice to the requester. */
  private retryAfter(ahead: number): number {
    const c = Math.max(1, this.o.concurrency);
    const ms = Math.ceil(((ahead + this.running) / c) * this.meanMs);
    return Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, ms));
  }

  private defer(ahead: number): Admission {
    this.deferred += 1;
    return { admitted: false, retryAfterMs: this.retryAfter(ahead) };
  }

  private admit(): Admission {
    this.running += 1;
    const started = Date.now();
    let finished = false;
    return {
      admitted: true,
      done: () => {
        if (finished) return;
        finished = true;
        this.running -= 1;
        this.meanMs = 0.9 * this.meanMs + 0.1 * Math.max(1, Date.now() - started);
        this.next();
      },
    };
  }

  /** Hands the freed slot to the oldest waiter. */
  private next(): void {
    const w = this.queue.shift();
    if (!w) return;
    clearTimeout(w.timer);
    w.resolve(this.admit());
  }
}
