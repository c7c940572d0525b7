/**
 * The live VPC actors of one controller: created on the first wake, passivated
 * when idle (their entry and state dropped), rehydrated on the next wake. Callers
 * wait for "handled up to sequence s"; intake acks its deliveries on that, the
 * sync API answers on it.
 */
import { createActor, fromPromise, type Actor } from 'xstate';
import type { Logger } from '../../infra/index.js';
import { vpc } from '../../actors/index.js';
import { VpcWorker, type Decided, type WorkerDeps } from './vpcWorker.js';

type VpcActor = Actor<vpc.VpcActorMachine>;

interface Waiter {
  seq: number;
  resolve: (worker: VpcWorker) => void;
  reject: (err: Error) => void;
}

interface Entry {
  actor: VpcActor;
  worker: VpcWorker;
  waiters: Waiter[];
}

export class ActorStoppedError extends Error {
  constructor(
    readonly vpcId: string,
    readonly reason: string,
  ) {
    super(`the actor of ${vpcId} stopped (${reason}) before handling the intent`);
  }
}

export class VpcActors {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly deps: WorkerDeps & { idleMs: number; logger: Logger }) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Resolves once the VPC's actor has handled every intent up to `seq`, with the
   * worker that did (its state answers for those intents even if it passivates).
   */
  wake(vpcId: string, bucket: number, seq: number): Promise<VpcWorker> {
    const entry = this.entries.get(vpcId) ?? this.spawn(vpcId, bucket);
    if (entry.actor.getSnapshot().context.handled >= seq) return Promise.resolve(entry.worker);
    const done = new Promise<VpcWorker>((resolve, reject) =>
      entry.waiters.push({ seq, resolve, reject }),
    );
    entry.actor.send({ type: 'WAKE', seq });
    return done;
  }

  /** The decision of `intentId` (stored at `seq`) once the VPC has handled it. */
  async decision(
    vpcId: string,
    bucket: number,
    intentId: string,
    seq: number,
  ): Promise<Decided | undefined> {
    return (await this.wake(vpcId, bucket, seq)).decision(intentId);
  }

  /** Stops every actor now (no snapshot); their waiters are rejected. */
  stopAll(): void {
    for (const entry of [...this.entries.values()]) entry.actor.send({ type: 'STOP' });
  }

  /**
   * Hands off the actors of `buckets`: each finishes what it is doing, snapshots
   * and stops. Resolves once all have stopped; one still stuck after `timeoutMs`
   * (failing to hydrate, say) is stopped without a snapshot — the next owner
   * replays its log.
   */
  async handOff(buckets: ReadonlySet<number>, timeoutMs = 10_000): Promise<number> {
    const leaving = [...this.entries.values()].filter((e) => buckets.has(e.worker.bucket));
    await Promise.all(
      leaving.map(
        ({ actor }) =>
          new Promise<void>((resolve) => {
            if (actor.getSnapshot().status !== 'active') return resolve();
            const timer = setTimeout(() => actor.send({ type: 'STOP' }), timeoutMs);
            const done = (): void => {
              clearTimeout(timer);
              resolve();
            };
            actor.subscribe({ complete: done, error: done });
            actor.send({ type: 'HANDOFF' });
          }),
      ),
    );
    return leaving.length;
  }

  /** Stops the actors of `buckets` at once, without a snapshot (the buckets were lost). */
  drop(buckets: ReadonlySet<number>): void {
    for (const entry of [...this.entries.values()]) {
      if (buckets.has(entry.worker.bucket)) entry.actor.send({ type: 'STOP' });
    }
  }

  private spawn(vpcId: string, bucket: number): Entry {
    const worker = new VpcWorker(vpcId, bucket, this.deps);
    const machine = vpc.vpcActorMachine.provide({
      actors: {
        hydrate: fromPromise(() => worker.hydrate()),
        catchUp: fromPromise(({ input }: { input: { vpcId: string; upTo: number } }) =>
          worker.catchUp(input.upTo),
        ),
        snapshot: fromPromise(() => worker.snapshot()),
      },
      delays: { idle: this.deps.idleMs },
    });
    const actor = createActor(machine, { input: { vpcId } });
    const entry: Entry = { actor, worker, waiters: [] };
    this.entries.set(vpcId, entry);
    this.deps.metrics.hydrations += 1;
    let previous = '';
    actor.subscribe({
      next: (snapshot) => {
        const state = JSON.stringify(snapshot.value);
        if (state !== previous) {
          if (state === '"recovering"') {
            this.deps.logger.warn(
              { vpcId, failures: snapshot.context.failures },
              'VPC actor failed; rehydrating after a pause',
            );
          }
          previous = state;
        }
        const handled = snapshot.context.handled;
        if (entry.waiters.length > 0) {
          entry.waiters = entry.waiters.filter((w) => {
            if (w.seq > handled) return true;
            w.resolve(worker);
            return false;
          });
        }
        if (snapshot.status === 'done') this.retire(vpcId, entry, snapshot.output?.reason);
      },
      error: (err) => {
        this.deps.logger.error({ vpcId, err }, 'VPC actor crashed');
        this.retire(vpcId, entry, 'crashed');
      },
    });
    actor.start();
    return entry;
  }

  private retire(vpcId: string, entry: Entry, reason = 'stopped'): void {
    if (this.entries.get(vpcId) === entry) this.entries.delete(vpcId);
    if (reason === 'passivated') this.deps.metrics.passivations += 1;
    else if (reason === 'stopped') this.deps.logger.debug({ vpcId }, 'VPC actor stopped');
    else this.deps.logger.warn({ vpcId, reason }, 'VPC actor stopped');
    const waiting = entry.waiters;
    entry.waiters = [];
    if (waiting.length === 0) return;
    if (reason === 'passivated') {
      // Woken as it stopped: a fresh actor takes over the waiters.
      for (const w of waiting)
        this.wake(vpcId, entry.worker.bucket, w.seq).then(w.resolve, w.reject);
      return;
    }
    for (const w of waiting) w.reject(new ActorStoppedError(vpcId, reason));
  }
}
