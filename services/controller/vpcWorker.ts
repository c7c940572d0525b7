/**
 * The effects of one VPC actor (actors/vpc/machine.ts): hydrate, catch up on the
 * VPC's intents, snapshot. It holds the VPC's state between them.
 *
 * For each intent, in INTENTS order from the cursor: decide and append through the
 * generic command handler (compare-and-set on `evt.<vpc>`, msgID = intent id), then
 * publish the goal states, then the status. The next intent waits for all of that,
 * so only the last commit can have unpublished goal states after a crash, and
 * hydration finishes it (msgIDs make that idempotent).
 */
import {
  ConcurrencyError,
  createCommandHandler,
  type CommandHandler,
  type Logger,
} from '../../infra/index.js';
import {
  statusMsgId,
  subjects,
  type DecisionPublisher,
  type ErrorDetail,
  type EventCommit,
  type EventLog,
  type GoalStateMessage,
  type TopologyPlace,
  type HostLookup,
  type HostMapping,
  type IntentSource,
  type RecordedCommit,
  type SnapshotStore,
  type StoredIntent,
} from '../../shared/index.js';
import { vpc } from '../../actors/index.js';
import { commandFor, vpcDecider, type VpcAnswer, type VpcCommand } from './vpcDecider.js';
import type { Limiter } from './limiter.js';
import type { ControllerMetrics } from './metrics.js';
import type { TrackedIntent } from './programmed.js';

export interface Decided {
  outcome: 'accepted' | 'rejected';
  revision: number;
  error?: ErrorDetail;
}

export interface WorkerDeps {
  log: EventLog;
  intents: IntentSource;
  publisher: DecisionPublisher;
  snapshots: SnapshotStore;
  lookupHost: HostLookup;
  logger: Logger;
  limiter: Limiter;
  metrics: ControllerMetrics;
  /** Snapshot after this many commits since the last one. */
  snapshotEvery: number;
  /** Intents read from INTENTS per request. */
  readBatch: number;
  /** False once this run's membership lease expired: it must not write as an owner. */
  leaseValid: () => boolean;
  /** The VPC's placement weight changed (ports + hosts). */
  reportLoad: (vpcId: string, bucket: number, load: number) => void;
  /** The VPC↔host mapping (Redis); absent, the southbound's Kafka multicast and resync lack it. */
  mapping?: HostMapping;
  /** Waits for an accepted intent's hosts to ack; returns the gate release. */
  track?: (intent: TrackedIntent) => () => void;
  /**
   * A commit published again (a previous owner may have published it, and its
   * hosts acked, already): the tracking is left to the log check of
   * programmedRecovery.ts, once its `accepted` is out.
   */
  recheck?: (intent: TrackedIntent) => void;
  /** Observes the `decide` (stored in INTENTS → appended) and `publish` (→ status out) stages. */
  stage?: (stage: 'decide' | 'publish', seconds: number) => void;
}

/**
 * Thrown by an effect when another writer owns the VPC, or this run's lease
 * expired (it may have been replaced): the actor stops without retrying.
 */
export class FencedError extends Error {
  readonly fenced = true;
  constructor(vpcId: string, cause?: unknown) {
    super(
      cause === undefined
        ? `this controller's lease expired; it stops working ${vpcId}`
        : `another controller writes ${vpcId}; this one stops`,
      { cause },
    );
  }
}

type Handler = CommandHandler<vpc.VpcState, VpcCommand, EventCommit, VpcAnswer>;

export class VpcWorker {
  private state: vpc.VpcState | undefined;
  private last: RecordedCommit | undefined;
  /** Revision whose goal states and status are out. */
  private published = 0;
  private handled = 0;
  private commitsSinceSnapshot = 0;
  private saving: Promise<void> = Promise.resolve();
  private readonly handler: Handler;

  constructor(
    readonly vpcId: string,
    readonly bucket: number,
    private readonly deps: WorkerDeps,
  ) {
    this.handler = createCommandHandler({
      log: deps.log,
      decider: {
        ...vpcDecider,
        evolve: (state, recorded) => {
          this.last = recorded;
          this.commitsSinceSnapshot += 1;
          return vpc.evolve(state, recorded);
        },
        skip: (state, skipped) => {
          // Not a commit (nobody's append: EVENTS is the controllers' alone). Passed
          // over; `alcor check` names it too.
          deps.metrics.poisonEvents += 1;
          deps.logger.error(
            { vpcId, revision: skipped.revision, ...skipped.skipped },
            'a message in EVENTS is not a commit; passed over',
          );
          return vpc.skip(state, skipped.revision);
        },
      },
    });
  }

  /** The decision of an intent this VPC has handled, if it remembers it. */
  decision(intentId: string): Decided | undefined {
    const record = this.state?.intents.get(intentId);
    if (!record) return undefined;
    return {
      outcome: record.outcome,
      revision: record.revision,
      ...(record.error ? { error: record.error } : {}),
    };
  }

  get revision(): number {
    return this.state?.revision ?? 0;
  }

  async hydrate(): Promise<number> {
    return this.deps.limiter.run(async () => {
      this.fence();
      let state = this.state;
      if (!state) {
        state = (await this.loadSnapshot()) ?? vpc.initialState(this.vpcId);
        // A snapshot is only taken once its revision's goal states are out.
        this.published = state.revision;
        this.commitsSinceSnapshot = 0;
      }
      const started = performance.now();
      const from = state.revision;
      this.state = await this.handler.load(this.vpcId, state);
      if (this.state.revision !== from) {
        this.deps.logger.debug(
          {
            vpcId: this.vpcId,
            from,
            to: this.state.revision,
            ms: Math.round(performance.now() - started),
          },
          'hydrated',
        );
      }
      await this.restoreMapping(this.state);
      await this.finishLast();
      this.handled = Math.max(this.handled, this.state.cursor);
      this.deps.reportLoad(this.vpcId, this.bucket, vpc.loadOf(this.state));
      return this.handled;
    });
  }

  /**
   * Decides the VPC's intents after the last handled one, in sequence order, until
   * it has handled `upTo` (or found nothing more on its subject).
   */
  async catchUp(upTo: number): Promise<number> {
    const { intents, limiter, readBatch } = this.deps;
    for (;;) {
      this.fence();
      const batch = await limiter.run(() =>
        intents.read(this.bucket, this.vpcId, this.handled, readBatch, upTo),
      );
      if (batch.length === 0) {
        // Nothing on the VPC's subject after `handled`: every sequence up to the
        // stream's end is handled as far as this VPC is concerned.
        this.handled = Math.max(this.handled, upTo);
        return this.handled;
      }
      for (const stored of batch) {
        await limiter.run(() => this.decideOne(stored));
        this.handled = stored.seq;
      }
      if (batch.length < readBatch && this.handled >= upTo) return this.handled;
    }
  }

  /** Writes a snapshot if anything changed since the last one (passivation, handoff). */
  async snapshot(): Promise<void> {
    if (this.commitsSinceSnapshot > 0) this.startSnapshot();
    await this.saving;
  }

  /** Stops the work of a run whose lease expired: CAS fences any append already on its way. */
  private fence(): void {
    if (!this.deps.leaseValid()) throw new FencedError(this.vpcId);
  }

  private async decideOne(stored: StoredIntent): Promise<void> {
    this.fence();
    const state = this.state ?? vpc.initialState(this.vpcId);
    const { intentId, command } = commandFor(stored, this.deps.lookupHost);
    let result;
    try {
      result = await this.handler.handle(this.vpcId, command, state);
    } catch (err) {
      if (err instanceof ConcurrencyError) throw new FencedError(this.vpcId, err);
      throw err;
    }
    this.state = result.state;
    const log = this.deps.logger;
    switch (result.type) {
      case 'appended': {
        this.deps.metrics.appended += 1;
        const decided = Date.now();
        this.deps.stage?.('decide', (decided - Date.parse(stored.time)) / 1000);
        this.deps.reportLoad(this.vpcId, this.bucket, vpc.loadOf(result.state));
        await this.publish(result.recorded);
        this.deps.stage?.('publish', (Date.now() - decided) / 1000);
        const first = result.recorded.commit.events[0];
        if (first?.type === 'IntentRejected') {
          log.debug(
            { intentId, vpcId: this.vpcId, seq: stored.seq, code: first.code, path: first.path },
            'intent rejected',
          );
        } else {
          log.debug(
            { intentId, vpcId: this.vpcId, seq: stored.seq, revision: result.recorded.revision },
            'intent accepted',
          );
        }
        break;
      }
      case 'duplicate':
        // Appended before (a crash between append and publish): finish it.
        this.deps.metrics.duplicates += 1;
        await this.finishLast();
        break;
      case 'answered':
        if (result.answer.type === 'duplicate') {
          // A re-sent id stored again (after the duplicate window): the first answer.
          this.deps.metrics.duplicates += 1;
          await this.publishDecision(intentId);
          log.info({ intentId, vpcId: this.vpcId, seq: stored.seq }, 're-sent intent answered');
        }
        break;
    }
  }

  /**
   * The mapping, then goal states, then status, of a commit just appended; then
   * maybe a snapshot. The mapping goes first so that a southbound module expanding
   * a multicast of this revision finds the hosts it has.
   */
  private async publish(recorded: RecordedCommit, again = false): Promise<void> {
    const state = this.state!;
    const { commit, revision } = recorded;
    const { mapping, track, recheck } = this.deps;
    const changes = vpc.hostChanges(state, recorded);
    if (mapping && changes.present.length + changes.absent.length > 0) {
      await mapping.apply(this.vpcId, revision, changes.present, changes.absent, () => [
        ...state.hosts.keys(),
      ]);
    }
    const messages = vpc.project(state, recorded, this.bucket);
    const tracked: TrackedIntent | undefined =
      commit.events[0]?.type !== 'IntentRejected'
        ? {
            intentId: commit.intentId,
            vpcId: this.vpcId,
            bucket: this.bucket,
            revision,
            hosts: vpc.affectedHosts(state, messages),
          }
        : undefined;
    const release = tracked && !again ? track?.(tracked) : undefined;
    try {
      const { stored, duplicates } = await this.deps.publisher.goalStates(messages);
      this.deps.metrics.goalStates += stored;
      this.deps.metrics.goalStateDuplicates += duplicates;
      await this.publishDecision(commit.intentId);
    } finally {
      release?.();
    }
    if (tracked && again) recheck?.(tracked);
    this.published = revision;
    if (this.commitsSinceSnapshot >= this.deps.snapshotEvery) this.startSnapshot();
  }

  /** Writes the VPC's host set to the mapping if its entry is missing (asked by a southbound). */
  async ensureMapping(): Promise<void> {
    if (this.state) await this.restoreMapping(this.state);
  }

  /**
   * The host's full state of this VPC now (empty if it holds none of it: that
   * removes what it may still have), for a resync; undefined before hydration.
   */
  fullStateFor(hostId: string): { message: GoalStateMessage; place?: TopologyPlace } | undefined {
    const state = this.state;
    if (!state || state.revision === 0) return undefined;
    const place = state.hosts.get(hostId)?.place;
    return {
      message: vpc.fullState(state, hostId, state.revision, this.bucket),
      ...(place ? { place } : {}),
    };
  }

  /** Writes the VPC's host set to the mapping if its entry is missing (Redis lost it). */
  private async restoreMapping(state: vpc.VpcState): Promise<void> {
    const { mapping } = this.deps;
    if (!mapping || state.status === 'absent') return;
    const restored = await mapping.restore(this.vpcId, state.revision, [...state.hosts.keys()]);
    if (restored) this.deps.metrics.mappingRestores += 1;
  }

  /** Publishes the last commit's goal states and status if they may not be out yet. */
  private async finishLast(): Promise<void> {
    const state = this.state;
    if (!state || !this.last || state.revision <= this.published) return;
    if (this.last.revision !== state.revision) return;
    this.fence();
    this.deps.metrics.republished += 1;
    await this.publish(this.last, true);
  }

  /** The status of a decided intent, from what the state records of it (set by evolve). */
  private async publishDecision(intentId: string): Promise<void> {
    const decided = this.decision(intentId);
    if (!decided) throw new Error(`${this.vpcId} has no record of ${intentId}`);
    await this.deps.publisher.status(
      subjects.status(this.vpcId),
      { intentId, vpcId: this.vpcId, ...decided },
      statusMsgId(intentId, decided.outcome),
    );
  }

  private startSnapshot(): void {
    const state = this.state!;
    if (state.revision > this.published) return; // only what is fully published
    const revision = state.revision;
    const text = JSON.stringify(vpc.toSnapshot(state));
    this.commitsSinceSnapshot = 0;
    this.saving = this.saving
      .then(() => this.deps.snapshots.save(this.vpcId, revision, text))
      .then(
        () => {
          this.deps.metrics.snapshots += 1;
        },
        (err: unknown) => {
          this.deps.logger.warn(
            { vpcId: this.vpcId, revision, err },
            'snapshot failed; the log is replayed instead',
          );
        },
      );
  }

  private async loadSnapshot(): Promise<vpc.VpcState | undefined> {
    try {
      const found = await this.deps.snapshots.load(this.vpcId);
      if (!found) return undefined;
      const snapshot = JSON.parse(found.text) as vpc.VpcSnapshot;
      if (snapshot.format !== vpc.SNAPSHOT_FORMAT || snapshot.vpcId !== this.vpcId) {
        throw new Error(`format ${snapshot.format} of ${snapshot.vpcId}`);
      }
      this.deps.metrics.snapshotLoads += 1;
      return vpc.fromSnapshot(snapshot);
    } catch (err) {
      this.deps.logger.warn(
        { vpcId: this.vpcId, err },
        'snapshot unusable; replaying the log from the start',
      );
      return undefined;
    }
  }
}
