/**
 * The live VPC lanes of one controller (DESIGN §6): a lane per active VPC, with an
 * xstate machine for its lifecycle (actors/vpc/machine.ts: hydrating → active →
 * passivated or handed off). Deliveries go straight to the lane's queue and only
 * wake its machine; callers that need "handled up to sequence s" (a scan, a
 * resync) wait for it.
 */
import { createActor, fromPromise, type Actor } from 'xstate';
import type { Logger } from '../../../infra/index.js';
import { vpc } from '../../../actors/index.js';
import { AlcorError } from '../../../shared/index.js';
import { VpcLane, type Decided, type LaneDelivery, type LaneDeps } from './lane.js';

type VpcActor = Actor<vpc.VpcActorMachine>;

/** Hydrated (and not reloading after a failure): its state answers as stored. */
const isLoaded = (snapshot: ReturnType<VpcActor['getSnapshot']>): boolean =>
  !snapshot.matches('hydrating') && !snapshot.matches('recovering');

interface Waiter {
  seq: number;
  /** Waits only for the lane to be loaded (`load`), not for a sequence. */
  load?: boolean;
  resolve: (lane: VpcLane) => void;
  reject: (err: Error) => void;
}

interface Entry {
  actor: VpcActor;
  lane: VpcLane;
  waiters: Waiter[];
  /** The highest sequence delivered since the machine was last woken (one WAKE per burst). */
  wakeTo?: number;
}

export class ActorStoppedError extends AlcorError {
  constructor(
    readonly vpcId: string,
    readonly reason: string,
  ) {
    super('actor_stopped', `the actor of ${vpcId} stopped (${reason}) before handling the intent`, {
      retryable: true,
    });
  }
}

export class VpcLanes {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly deps: LaneDeps & { idleMs: number; logger: Logger }) {}

  get size(): number {
    return this.entries.size;
  }

  /** An intent delivered for this VPC: queued in its lane, the lane woken. */
  deliver(vpcId: string, bucket: number, d: LaneDelivery): void {
    const entry = this.entries.get(vpcId) ?? this.spawn(vpcId, bucket);
    entry.lane.deliver(d);
    // The deliveries of one burst (a socket read holds many) wake the machine once.
    if (entry.wakeTo !== undefined) {
      entry.wakeTo = Math.max(entry.wakeTo, d.stored.seq);
      return;
    }
    entry.wakeTo = d.stored.seq;
    queueMicrotask(() => {
      const seq = entry.wakeTo!;
      entry.wakeTo = undefined;
      entry.actor.send({ type: 'WAKE', seq });
    });
  }

  /**
   * Resolves once the VPC's lane has handled every intent up to `seq`, with the
   * lane that did (its state answers for those intents even if it passivates).
   */
  wake(vpcId: string, bucket: number, seq: number): Promise<VpcLane> {
    const entry = this.entries.get(vpcId) ?? this.spawn(vpcId, bucket);
    if (entry.actor.getSnapshot().context.handled >= seq) return Promise.resolve(entry.lane);
    const done = new Promise<VpcLane>((resolve, reject) =>
      entry.waiters.push({ seq, resolve, reject }),
    );
    entry.actor.send({ type: 'WAKE', seq });
    return done;
  }

  /**
   * The VPC's lane once it is loaded, for readers of its state (a resync, the
   * mapping): it does not wait for intents to be decided.
   */
  load(vpcId: string, bucket: number): Promise<VpcLane> {
    const entry = this.entries.get(vpcId) ?? this.spawn(vpcId, bucket);
    if (isLoaded(entry.actor.getSnapshot())) return Promise.resolve(entry.lane);
    return new Promise<VpcLane>((resolve, reject) =>
      entry.waiters.push({ seq: 0, load: true, resolve, reject }),
    );
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

  /** Stops every lane now (no snapshot); their waiters are rejected. */
  stopAll(): void {
    for (const entry of [...this.entries.values()]) entry.actor.send({ type: 'STOP' });
  }

  /**
   * Hands off the lanes of `buckets`: each finishes what it is doing, sends what
   * it decided, snapshots and stops. Resolves once all have stopped; one still
   * stuck after `timeoutMs` is stopped without a snapshot — the next owner replays
   * its log and sends again what may not be out.
   */
  async handOff(buckets: ReadonlySet<number>, timeoutMs = 10_000): Promise<number> {
    const leaving = [...this.entries.values()].filter((e) => buckets.has(e.lane.bucket));
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

  /** Stops the lanes of `buckets` at once, without a snapshot (the buckets were lost). */
  drop(buckets: ReadonlySet<number>): void {
    for (const entry of [...this.entries.values()]) {
      if (buckets.has(entry.lane.bucket)) entry.actor.send({ type: 'STOP' });
    }
  }

  private spawn(vpcId: string, bucket: number): Entry {
    const lane = new VpcLane(vpcId, bucket, this.deps);
    let failure: unknown;
    const noting = <T>(p: Promise<T>): Promise<T> =>
      p.catch((err: unknown) => {
        failure = err;
        throw err;
      });
    const machine = vpc.vpcActorMachine.provide({
      actors: {
        hydrate: fromPromise(() => noting(lane.hydrate())),
        catchUp: fromPromise(({ input }: { input: { vpcId: string; upTo: number } }) =>
          noting(lane.catchUp(input.upTo)),
        ),
        snapshot: fromPromise(() => lane.snapshot()),
      },
      delays: { idle: this.deps.idleMs },
    });
    const actor = createActor(machine, { input: { vpcId } });
    const entry: Entry = { actor, lane, waiters: [] };
    this.entries.set(vpcId, entry);
    this.deps.metrics.hydrations += 1;
    let recovering = false;
    actor.subscribe({
      next: (snapshot) => {
        const now = snapshot.matches('recovering');
        if (now && !recovering)
          this.deps.logger.warn(
            { vpcId, failures: snapshot.context.failures, err: failure },
            'VPC actor failed; rehydrating after a pause',
          );
        recovering = now;
        if (entry.waiters.length > 0) {
          const handled = snapshot.context.handled;
          const loaded = isLoaded(snapshot);
          entry.waiters = entry.waiters.filter((w) => {
            if (w.seq > handled || (w.load && !loaded)) return true;
            w.resolve(lane);
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
    entry.lane.stop();
    if (reason === 'passivated') this.deps.metrics.passivations += 1;
    else if (reason === 'stopped') this.deps.logger.debug({ vpcId }, 'VPC actor stopped');
    else this.deps.logger.warn({ vpcId, reason }, 'VPC actor stopped');
    const waiting = entry.waiters;
    entry.waiters = [];
    // Delivered while it stopped: a fresh lane takes them.
    const queued = reason === 'passivated' ? entry.lane.takeDeliveries() : [];
    for (const d of queued) this.deliver(vpcId, entry.lane.bucket, d);
    if (waiting.length === 0) return;
    if (reason === 'passivated') {
      // Woken as it stopped: a fresh lane takes over the waiters.
      const { bucket } = entry.lane;
      for (const w of waiting)
        (w.load ? this.load(vpcId, bucket) : this.wake(vpcId, bucket, w.seq)).then(
          w.resolve,
          w.reject,
        );
      return;
    }
    for (const w of waiting) w.reject(new ActorStoppedError(vpcId, reason));
  }
}
