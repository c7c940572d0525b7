/**
 * What a controller run does with the buckets it works: one intake consumer over
 * them (deliveries carry the intents into the VPCs' lanes and are acked once
 * decided), and the bucket phases a handoff goes through (docs/controller.md,
 * "Placement"):
 *
 *   working   — deliveries go to the VPCs' lanes;
 *   releasing — the consumer no longer asks for the bucket; deliveries already on
 *               their way are held, unacked, so the ack floor stays below them;
 *   released  — the handoff record is written; held and late deliveries are
 *               acked without work (the next owner scans from the floor).
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  consumeIntake,
  createIntakeConsumer,
  intakeAckFloor,
  scanBuckets,
  setIntakeBuckets,
  streamLastSeq,
  type Intake,
  type IntakeDelivery,
  type IntakeOptions,
  type Logger,
} from '../../../infra/index.js';
import {
  bucketOf,
  decodeIntent,
  ID_PATTERN,
  statusMsgId,
  streams,
  subjects,
  type DecisionPublisher,
  type ErrorDetail,
} from '../../../shared/index.js';
import type { VpcLanes } from '../vpcs/lanes.js';
import type { ControllerMetrics } from '../metrics.js';

const RETRY_MS = 1000;
/** How long a release waits for the bucket's deliveries to be decided before handing off anyway. */
const RELEASE_WAIT_MS = 10_000;

interface BucketWork {
  phase: 'working' | 'releasing' | 'released';
  /** Scans being handled. */
  inFlight: Set<Promise<unknown>>;
  /** Deliveries handed to lanes and not acked yet. */
  outstanding: number;
  drained: Array<() => void>;
  held: IntakeDelivery[];
  resources: BucketResource[];
}

/** Something that lives while a bucket is worked: a subscription, a tracker's share. */
export interface BucketResource {
  unsubscribe(): void;
}

/**
 * A counter bumped when intake deliveries may have been lost on the way (or the
 * consumer's buckets changed): it breaks each lane's chain of deliveries, and the
 * lane reads the stream back at its next.
 */
export class LossEpoch {
  value = 0;
  bump(): void {
    this.value += 1;
  }
}

export interface IntakeDeps {
  nc: NatsConnection;
  jsm: JetStreamManager;
  /** The run's durable consumer. */
  durable: string;
  bucketCount: number;
  lanes: VpcLanes;
  publisher: DecisionPublisher;
  metrics: ControllerMetrics;
  logger: Logger;
  intake: IntakeOptions;
  lossEpoch: LossEpoch;
  /** False once the run's membership lease expired: deliveries are left alone. */
  leaseValid: () => boolean;
  /** More per-bucket subscriptions that live while the bucket is worked (acks, mapping). */
  bucketSubscriptions?: (bucket: number) => BucketResource[];
}

export class IntakeRuntime {
  private readonly buckets = new Map<number, BucketWork>();
  private consumer: Intake | undefined;
  private stopped = false;
  private lastPending = 0;
  /** The last delivery was left alone (the lease was not valid). */
  private dropped = false;

  private constructor(private readonly deps: IntakeDeps) {}

  /** Creates the run's consumer (working no bucket yet) and starts consuming. */
  static async start(deps: IntakeDeps): Promise<IntakeRuntime> {
    const runtime = new IntakeRuntime(deps);
    await createIntakeConsumer(deps.jsm, deps.durable, [], deps.intake);
    runtime.consumer = await consumeIntake(deps.nc, deps.durable, (d) => runtime.onDelivery(d), {
      ...deps.intake,
      onTrouble: (why) => {
        deps.logger.info({ why }, 'intake deliveries may have been lost: lanes read back');
        deps.lossEpoch.bump();
      },
    });
    return runtime;
  }

  /**
   * The intake consumer's lag (messages left after the last delivery) and, per
   * worked bucket, the intents being decided now.
   */
  lag(): { pending: number; inFlight: Map<number, number> } {
    const inFlight = new Map<number, number>();
    for (const [b, w] of this.buckets) if (w.phase === 'working') inFlight.set(b, w.inFlight.size);
    return { pending: this.lastPending, inFlight };
  }

  /** Buckets in the working phase. */
  working(): number[] {
    return [...this.buckets]
      .filter(([, w]) => w.phase === 'working')
      .map(([b]) => b)
      .sort((a, b) => a - b);
  }

  /**
   * Starts working `buckets`: the consumer delivers their new intents (what came
   * before is scanned; a lane's first delivery after this reads back).
   */
  async add(buckets: readonly number[]): Promise<void> {
    this.deps.lossEpoch.bump();
    for (const b of buckets) {
      const work = this.buckets.get(b);
      for (const d of work?.held ?? []) d.nak(); // theirs again
      this.buckets.set(b, {
        phase: 'working',
        inFlight: new Set(),
        outstanding: 0,
        drained: [],
        held: [],
        resources: [],
      });
    }
    await this.updateFilter();
    for (const b of buckets)
      this.buckets.get(b)!.resources = this.deps.bucketSubscriptions?.(b) ?? [];
  }

  /**
   * Wakes the VPCs of intents stored in each bucket after its floor (what the
   * previous owner may not have handled); resolves once all are handled. Retries
   * while the bucket is worked.
   */
  async scan(floors: ReadonlyMap<number, number>): Promise<number> {
    const highest = new Map<string, { bucket: number; vpcToken: string; seq: number }>();
    const found = await scanBuckets(
      this.deps.jsm,
      floors,
      (bucket, vpcToken, seq) => highest.set(`${bucket}.${vpcToken}`, { bucket, vpcToken, seq }),
      this.deps.intake,
    );
    await Promise.all(
      [...highest.values()].map(async ({ bucket, vpcToken, seq }) => {
        for (;;) {
          const work = this.buckets.get(bucket);
          if (work?.phase !== 'working' || !this.deps.leaseValid()) return;
          try {
            await this.track(work, this.handle(bucket, vpcToken, seq));
            return;
          } catch (err) {
            this.deps.logger.warn(
              { err, vpcId: vpcToken, seq },
              'scanned intent not handled; retrying',
            );
            await new Promise((r) => setTimeout(r, RETRY_MS));
          }
        }
      }),
    );
    return found;
  }

  /**
   * Stops working `buckets`: the consumer stops asking for them, their
   * subscriptions stop, and this resolves once what was delivered is decided (or
   * after RELEASE_WAIT_MS: the next owner scans from the floor). Resolves with the
   * stream's last sequence before the consumer dropped them: their intents after it
   * may never be delivered here.
   */
  async remove(buckets: readonly number[]): Promise<number> {
    const mark = await streamLastSeq(this.deps.jsm, this.deps.intake.stream ?? streams.intents);
    for (const b of buckets) {
      const work = this.buckets.get(b);
      if (!work) continue;
      work.phase = 'releasing';
      for (const sub of work.resources) sub.unsubscribe();
      work.resources = [];
    }
    await this.updateFilter();
    const deadline = Date.now() + RELEASE_WAIT_MS;
    for (const b of buckets) {
      const work = this.buckets.get(b);
      while (work && work.inFlight.size > 0) await Promise.allSettled([...work.inFlight]);
      if (work && work.outstanding > 0 && Date.now() < deadline) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          work.drained.push(resolve);
          timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        });
        clearTimeout(timer);
      }
    }
    return mark;
  }

  /** After the handoff records are written: held deliveries are acked without work. */
  released(buckets: readonly number[]): void {
    for (const b of buckets) {
      const work = this.buckets.get(b);
      if (!work || work.phase === 'working') continue;
      work.phase = 'released';
      for (const d of work.held) d.ack();
      work.held = [];
    }
  }

  /** Every delivery at or below this sequence is acked (handled, or held and released). */
  async ackFloor(): Promise<number> {
    return (await intakeAckFloor(this.deps.jsm, this.deps.durable, this.deps.intake)) ?? 0;
  }

  /** Stops consuming; the durable stays for a successor to read its ack floor. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const work of this.buckets.values()) for (const sub of work.resources) sub.unsubscribe();
    await this.consumer?.stop();
  }

  private async updateFilter(): Promise<void> {
    await setIntakeBuckets(this.deps.jsm, this.deps.durable, this.working(), this.deps.intake);
  }

  private track<T>(work: BucketWork, p: Promise<T>): Promise<T> {
    work.inFlight.add(p);
    const done = (): void => {
      work.inFlight.delete(p);
    };
    p.then(done, done);
    return p;
  }

  private onDelivery(d: IntakeDelivery): void {
    this.lastPending = d.pending;
    if (this.stopped) return; // comes back to whoever owns it
    if (!this.deps.leaseValid()) {
      // Left alone: it comes back after ack_wait, to whoever owns it then. If this
      // run's lease is renewed in time (a heartbeat answered late), its lanes have
      // a hole behind the next deliveries: they read the stream back first.
      if (!this.dropped)
        this.deps.logger.info(
          'deliveries left alone while the lease is not valid: lanes read back',
        );
      this.dropped = true;
      this.deps.lossEpoch.bump();
      return;
    }
    this.dropped = false;
    const work = this.buckets.get(d.bucket);
    if (work?.phase === 'releasing') {
      work.held.push(d);
      return;
    }
    const wrong = this.misrouted(d.bucket, d.vpcToken);
    if (wrong) {
      this.refuse(d.seq, d.vpcToken, wrong).then(
        () => d.term(wrong.error.code),
        (err: unknown) => {
          this.deps.logger.error({ err, seq: d.seq }, 'could not refuse an intent; it comes back');
          d.nak(RETRY_MS);
        },
      );
      return;
    }
    if (work?.phase !== 'working') {
      d.ack(); // a bucket released (or never ours): its owner scans from its floor
      return;
    }
    work.outstanding += 1;
    let settled = false;
    this.deps.lanes.deliver(d.vpcToken, d.bucket, {
      stored: { seq: d.seq, subject: d.subject, data: d.data, time: d.time },
      redelivery: d.deliveryCount > 1,
      ack: () => {
        d.ack();
        if (settled) return;
        settled = true;
        if (--work.outstanding === 0) for (const w of work.drained.splice(0)) w();
      },
    });
  }

  /** Wakes the VPC's lane up to `seq` (it reads what it was not delivered), or refuses an intent no lane can take. */
  private async handle(bucket: number, vpcToken: string, seq: number): Promise<void> {
    const wrong = this.misrouted(bucket, vpcToken);
    if (wrong) return this.refuse(seq, vpcToken, wrong);
    await this.deps.lanes.wake(vpcToken, bucket, seq);
  }

  /** Why an intent on `intent.<bucket>.<vpcToken>` cannot go to a VPC actor, if it cannot. */
  private misrouted(
    bucket: number,
    vpcToken: string,
  ): { error: ErrorDetail; vpcId?: string } | undefined {
    if (!ID_PATTERN.test(vpcToken)) {
      return {
        error: {
          code: 'id_format',
          message: `the subject's VPC id ${JSON.stringify(vpcToken.slice(0, 80))} is not an id (^[A-Za-z0-9_-]{1,64}$)`,
          path: 'vpcId',
        },
      };
    }
    const home = bucketOf(vpcToken, this.deps.bucketCount);
    if (home === bucket) return undefined;
    return {
      vpcId: vpcToken,
      error: {
        code: 'wrong_bucket',
        message: `${vpcToken} belongs to bucket ${home}, not ${bucket}: publish to intent.<vpcId>`,
        path: 'vpcId',
      },
    };
  }

  /** An intent no VPC actor can take: answered on status (msgID makes a repeat harmless). */
  private async refuse(
    seq: number,
    vpcToken: string,
    { error, vpcId }: { error: ErrorDetail; vpcId?: string },
  ): Promise<void> {
    this.deps.metrics.refused += 1;
    const stored = await this.deps.jsm.direct.getMessage(streams.intents, { seq });
    const parsed = stored ? decodeIntent(stored.data) : undefined;
    const intentId = (parsed?.ok ? parsed.value.id : parsed?.id) ?? `seq-${seq}`;
    this.deps.logger.warn({ intentId, seq, subject: stored?.subject, ...error }, 'intent refused');
    await this.deps.publisher.status(
      vpcId ? subjects.status(vpcId) : subjects.statusInvalid,
      { intentId, vpcId: vpcId ?? vpcToken.slice(0, 64), revision: 0, outcome: 'rejected', error },
      statusMsgId(intentId, `refused-${seq}`),
    );
  }
}
