/**
 * Bucket ownership of one controller run (DESIGN §5, docs/controller.md
 * "Placement"): follows the placement table (or a static bucket set), and moves
 * buckets in and out through their handoff records in KV `placement`.
 *
 * Acquire bucket b:
 *   1. read `handoff.b`: absent → floor 0; released → its floor; acquired by a
 *      live run → wait for it to release; acquired by a dead run (no heartbeat,
 *      or a new incarnation) → failover: floor = max(its floor, the dead run's
 *      consumer ack floor);
 *   2. add b to the intake filter, then scan b's intents after the floor and wake
 *      their VPCs (each actor decides from its own cursor, so a repeat is harmless);
 *   3. write `handoff.b = acquired` by compare-and-set on what step 1 read; if
 *      someone else wrote first, give b up.
 * Release bucket b:
 *   1. drop b from the filter (deliveries on their way are held, unacked) and
 *      wait for the deliveries being handled;
 *   2. hand off b's actors: each finishes, snapshots and stops;
 *   3. floor = the run's consumer ack floor, at most the stream's end before step
 *      1; write `handoff.b = released` by compare-and-set, only if the record is
 *      still this run's;
 *   4. ack the held deliveries (the next owner scans from the floor).
 * A pass that fails part-way runs again; after one, the next also releases any
 * bucket whose record names this run but that it neither works nor is given (a
 * write that landed though its answer was lost), which nobody else could take.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import {
  intakeAckFloor,
  intakeDurable,
  type IntakeOptions,
  type Logger,
  type Membership,
  type PlacementStore,
  type Versioned,
} from '../../../infra/index.js';
import type { HandoffRecord, PlacementTable } from '../../../shared/index.js';
import type { IntakeRuntime } from './intake.js';
import type { VpcLanes } from '../vpcs/lanes.js';

const POLL_MS = 250;

/** Per-bucket load: 1 + Σ (ports + hosts) of the VPCs known, or what the last owner reported. */
export class BucketLoads {
  private readonly vpcs = new Map<number, Map<string, number>>();
  private readonly carried = new Map<number, number>();

  set(bucket: number, vpcId: string, load: number): void {
    let m = this.vpcs.get(bucket);
    if (!m) this.vpcs.set(bucket, (m = new Map<string, number>()));
    m.set(vpcId, load);
  }

  carry(bucket: number, load: number): void {
    this.carried.set(bucket, load);
  }

  drop(bucket: number): void {
    this.vpcs.delete(bucket);
    this.carried.delete(bucket);
  }

  of(bucket: number): number {
    let known = 1;
    for (const load of this.vpcs.get(bucket)?.values() ?? []) known += load;
    return Math.max(known, this.carried.get(bucket) ?? 0);
  }

  report(buckets: readonly number[]): Record<string, number> {
    return Object.fromEntries(buckets.map((b) => [String(b), this.of(b)]));
  }
}

export interface OwnershipDeps {
  instanceId: string;
  membership: Membership;
  store: PlacementStore;
  intake: IntakeRuntime;
  lanes: VpcLanes;
  loads: BucketLoads;
  jsm: JetStreamManager;
  intakeOptions: IntakeOptions;
  logger: Logger;
  /** A fixed bucket set instead of the placement table. */
  staticBuckets?: readonly number[];
  /** The incarnation of this run (fixed for the runtime's life). */
  incarnation: string;
}

export interface Ownership {
  /** Buckets acquired (worked). */
  owned: () => number[];
  /** Resolves when the buckets the table gives this run are all acquired. */
  settled: () => Promise<void>;
  /** True when every bucket the table gives this run is acquired and no handoff runs. */
  isSettled: () => boolean;
  /** Stops following the table; with `release`, hands every bucket on first. */
  stop: (release: boolean) => Promise<void>;
}

export async function startOwnership(deps: OwnershipDeps): Promise<Ownership> {
  const { instanceId, store, intake, logger } = deps;
  const owned = new Set<number>();
  let desired = new Set<number>(deps.staticBuckets ?? []);
  let tableWeights: number[] = [];
  let stopping = false;
  let dirty = true;
  let running: Promise<void> | undefined;
  let settledWaiters: Array<() => void> = [];
  /** Passes that failed since the last that did not (their writes may have landed). */
  let failedPasses = 0;
  const isSettled = (): boolean =>
    !running && desired.size > 0 && [...desired].every((b) => owned.has(b));

  const record = (
    bucket: number,
    state: HandoffRecord['state'],
    floor: number,
    load?: number,
  ): HandoffRecord => ({
    bucket,
    owner: instanceId,
    incarnation: deps.incarnation,
    state,
    floor,
    ...(load === undefined ? {} : { load }),
    at: new Date().toISOString(),
  });

  /** Step 1 of acquire: the floor of `bucket` and the record revision to replace, or undefined to skip. */
  async function floorOf(bucket: number): Promise<{ floor: number; expected: number } | undefined> {
    for (;;) {
      if (stopping || !desired.has(bucket) || !deps.membership.leaseValid()) return undefined;
      // A newer table came while waiting: the pass starts over, releases first.
      if (dirty) return undefined;
      const current = await store.readHandoff(bucket);
      if (!current) return { floor: 0, expected: 0 };
      const rec = current.value;
      if (rec.state === 'released') {
        if (rec.load !== undefined) deps.loads.carry(bucket, rec.load);
        return { floor: rec.floor, expected: current.revision };
      }
      if (rec.owner === instanceId && rec.incarnation === deps.incarnation) {
        return { floor: rec.floor, expected: -1 }; // already ours
      }
      if (!(await deps.membership.alive(rec.owner, rec.incarnation))) {
        // Its consumer's floor, if that consumer still took the bucket (it died
        // while releasing it otherwise: the record's floor holds).
        const acked = await intakeAckFloor(deps.jsm, intakeDurable(rec.owner, rec.incarnation), {
          ...deps.intakeOptions,
          bucket,
        });
        const floor = Math.max(rec.floor, acked ?? 0);
        if (tableWeights[bucket] !== undefined) deps.loads.carry(bucket, tableWeights[bucket]);
        logger.info(
          { bucket, from: `${rec.owner}/${rec.incarnation}`, floor, consumerFloor: acked ?? null },
          'bucket failover: its owner is gone',
        );
        return { floor, expected: current.revision };
      }
      await new Promise((r) => setTimeout(r, POLL_MS)); // its owner releases it soon
    }
  }

  async function acquire(buckets: number[]): Promise<void> {
    const floors = new Map<number, { floor: number; expected: number }>();
    await Promise.all(
      buckets.map(async (b) => {
        const f = await floorOf(b);
        if (f) floors.set(b, f);
      }),
    );
    if (floors.size === 0 || !deps.membership.leaseValid()) return;
    const ready = [...floors.keys()].sort((a, b) => a - b);
    await intake.add(ready);
    const started = performance.now();
    const scanned = await intake.scan(new Map(ready.map((b) => [b, floors.get(b)!.floor])));
    const lost: number[] = [];
    await Promise.all(
      ready.map(async (b) => {
        const { floor, expected } = floors.get(b)!;
        const mine =
          expected === -1 ||
          (deps.membership.leaseValid() &&
            (await store.writeHandoff(record(b, 'acquired', floor), expected)));
        if (mine) owned.add(b);
        else lost.push(b);
      }),
    );
    if (lost.length > 0) {
      logger.warn({ buckets: lost }, 'another run took these buckets first; giving them up');
      await intake.remove(lost);
      deps.lanes.drop(new Set(lost));
      intake.released(lost);
    }
    logger.info(
      {
        acquired: ready.length - lost.length,
        scanned,
        ms: Math.round(performance.now() - started),
      },
      'buckets acquired',
    );
  }

  async function release(buckets: number[]): Promise<void> {
    const started = performance.now();
    const mark = await intake.remove(buckets);
    const set = new Set(buckets);
    const actors = await deps.lanes.handOff(set);
    // Intents of these buckets stored after the filter dropped them were never
    // delivered, and the consumer's ack floor moves past them: the floor is at most
    // the stream's end before that.
    const floor = Math.min(await intake.ackFloor(), mark);
    const handedOn: number[] = [];
    await Promise.all(
      buckets.map(async (b) => {
        owned.delete(b);
        const current = await store.readHandoff(b);
        const rec = current?.value;
        if (!current || rec?.owner !== instanceId || rec.incarnation !== deps.incarnation) return;
        if (!deps.membership.leaseValid()) return; // a dead run's floor is read from its consumer
        if (
          await store.writeHandoff(record(b, 'released', floor, deps.loads.of(b)), current.revision)
        )
          handedOn.push(b);
      }),
    );
    // Only where the record now says "released at the floor": elsewhere the next owner
    // takes the bucket over from this run's consumer, and an ack without work would
    // lift that consumer's floor over intents nobody decided. Those stay held.
    intake.released(handedOn);
    for (const b of buckets) deps.loads.drop(b);
    logger.info(
      { released: buckets.length, actors, floor, ms: Math.round(performance.now() - started) },
      'buckets released',
    );
  }

  /**
   * Buckets whose record names this run as their owner though it does not work
   * them and the table gives them elsewhere: an acquire whose write landed but
   * whose answer was lost (a timeout while the cluster elected), in a pass that
   * failed, before the table moved them on. Nobody else may take them while this
   * run lives: they are released like the others.
   */
  async function orphans(): Promise<number[]> {
    const found: number[] = [];
    for (const [b, rec] of await store.readHandoffs()) {
      if (owned.has(b) || desired.has(b)) continue;
      if (
        rec.state === 'acquired' &&
        rec.owner === instanceId &&
        rec.incarnation === deps.incarnation
      )
        found.push(b);
    }
    return found;
  }

  async function reconcile(): Promise<void> {
    while (dirty && !stopping) {
      dirty = false;
      const leaving = [...owned].filter((b) => !desired.has(b));
      if (failedPasses > 0) leaving.push(...(await orphans()));
      if (leaving.length > 0) await release(leaving);
      const coming = [...desired].filter((b) => !owned.has(b));
      if (coming.length > 0) await acquire(coming);
      if ([...desired].every((b) => owned.has(b))) {
        for (const resolve of settledWaiters) resolve();
        settledWaiters = [];
      } else if (!dirty) {
        dirty = true; // some were not acquired (lease, race): try again shortly
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    }
  }

  const kick = (): void => {
    dirty = true;
    running ??= reconcile()
      .then(() => {
        failedPasses = 0;
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'bucket handoff failed; retrying');
        dirty = true; // the pass stopped part-way: run it again
        failedPasses += 1; // and look for records it may have left behind
      })
      .finally(() => {
        running = undefined;
        if (dirty && !stopping) setTimeout(kick, POLL_MS);
      });
  };

  const onTable = ({ value: table }: Versioned<PlacementTable>): void => {
    tableWeights = table.weights;
    desired = new Set(table.owners.flatMap((owner, b) => (owner === instanceId ? [b] : [])));
    logger.debug({ epoch: table.epoch, buckets: desired.size }, 'placement table');
    kick();
  };

  const watch = deps.staticBuckets ? undefined : await store.watch({ onTable });
  if (deps.staticBuckets) kick();

  return {
    owned: () => [...owned].sort((a, b) => a - b),
    settled: () =>
      new Promise<void>((resolve) => {
        if (isSettled()) resolve();
        else settledWaiters.push(resolve);
      }),
    isSettled,
    stop: async (releaseAll) => {
      watch?.stop();
      stopping = true;
      await running;
      if (releaseAll && owned.size > 0 && deps.membership.leaseValid()) {
        stopping = false;
        desired = new Set();
        dirty = true;
        await reconcile();
        stopping = true;
      }
    },
  };
}
