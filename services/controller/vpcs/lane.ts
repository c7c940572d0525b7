/**
 * One VPC's lane through the controller (docs/controller.md, "The hot path"): its
 * intents arrive with the intake's deliveries, in INTENTS order; the lane decides
 * the ones queued, in cursor order, as one group — appended to `evt.<vpc>` by one
 * compare-and-set (a lone intent as a plain commit) — then hands the group to its
 * ordered outbox and acks the deliveries. A group never passes `complete`, the
 * sequence up to which the lane knows every intent of its VPC: deliveries extend
 * it only while they follow one another (the consumer delivers in stream order; a
 * redelivery or a possible loss breaks the chain). Past it — the first delivery
 * of a lane, a sequence it was woken for without a body (a scan), the first after
 * deliveries may have been lost — it reads INTENTS back first, and that read is
 * complete up to what it was given or it fails.
 *
 * The VPC's state is kept between groups. An append that conflicts (another writer)
 * or fails leaves the state holding commits the log did not take: the lane loads
 * it again (snapshot + EVENTS tail) before deciding anything else.
 */
import {
  ConcurrencyError,
  createCommandHandler,
  type CommandHandler,
  type Logger,
  type Outcome,
} from '../../../infra/index.js';
import {
  AlcorError,
  PENDING_REVISION,
  statusMsgId,
  subjects,
  type DecisionPublisher,
  type EventCommit,
  type EventLog,
  type GoalStateMessage,
  type HostLookup,
  type HostMapping,
  type IntentSource,
  type SnapshotStore,
  type Status,
  type StoredIntent,
  type TopologyPlace,
} from '../../../shared/index.js';
import { vpc } from '../../../actors/index.js';
import type { Limiter } from '../limiter.js';
import type { ControllerMetrics } from '../metrics.js';
import type { TrackedIntent } from '../programmed/tracker.js';
import { hydrateVpc } from './hydration.js';
import { Outbox } from './outbox.js';

/** An intent delivered to the lane: its body, and how to settle the delivery. */
export interface LaneDelivery {
  stored: StoredIntent;
  ack: () => void;
  /** Delivered before (unacked in time, or handed back): out of the stream's order. */
  redelivery?: boolean;
}

export interface LaneDeps {
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
  /** Intents read from INTENTS per request when a gap is filled. */
  readBatch: number;
  /** Most intents decided as one group, and most bytes of them. */
  groupMax: number;
  groupBytes: number;
  /** Groups of one VPC published but not all acked at once. */
  outboxWindow: number;
  /** False once this run's membership lease expired: it must not write as an owner. */
  leaseValid: () => boolean;
  /** Bumped when intake deliveries may have been lost: the lanes' chains of deliveries break. */
  lossEpoch: () => number;
  /** The VPC's placement weight changed (ports + hosts). */
  reportLoad: (vpcId: string, bucket: number, load: number) => void;
  /** The VPC↔host mapping (Redis); absent, the southbound's Kafka multicast and resync lack it. */
  mapping?: HostMapping;
  /** Starts waiting for an accepted intent's hosts; `gate` settles once its `accepted` is out (true) or the outbox closed first (false). */
  track?: (intent: TrackedIntent, gate: Promise<boolean>) => void;
  /** An intent published again after a takeover: its tracking is checked against the logs. */
  recheck?: (intent: TrackedIntent) => void;
  /** Observes the `decide` (stored in INTENTS → appended) and `publish` (appended → out) stages. */
  stage?: (stage: 'decide' | 'publish', seconds: number) => void;
}

/**
 * Thrown by an effect when another writer owns the VPC, or this run's lease
 * expired (it may have been replaced): the actor stops without retrying.
 */
export class FencedError extends AlcorError {
  readonly fenced = true;
  constructor(vpcId: string, cause?: unknown) {
    super(
      'fenced',
      cause === undefined
        ? `this controller's lease expired; it stops working ${vpcId}`
        : `another controller writes ${vpcId}; this one stops`,
      { cause },
    );
  }
}

export interface Decided {
  outcome: 'accepted' | 'rejected';
  revision: number;
  error?: Status['error'];
}

type Handler = CommandHandler<vpc.VpcState, vpc.VpcCommand, EventCommit, vpc.VpcAnswer>;

/** An intent of the next group, read into its command. */
interface Planned {
  stored: StoredIntent;
  intentId: string;
  command: vpc.VpcCommand;
}

/** A group of the log, kept while hydrating: what a new owner may have to send again. */
interface TailGroup {
  revision: number;
  commits: EventCommit[];
  /** Its goal states, one per target, as of the group's end. */
  messages: vpc.ProjectedMessage[];
  /** Per commit, the hosts it affected. */
  affected: string[][];
  published?: number;
}

export class VpcLane {
  private state: vpc.VpcState | undefined;
  /** INTENTS sequence handled (decided) up to. */
  handled = 0;
  private readonly queue = new Map<number, StoredIntent>();
  private readonly deliveries = new Map<number, LaneDelivery>();
  /** Loaded again before deciding: the state may hold commits the log did not take. */
  private dirty = true;
  /** The group being decided and appended, if any (the state holds it unstored). */
  private deciding: Promise<void> | undefined;
  /** Every intent of the VPC up to here is handled or queued: a group never passes it. */
  private complete = 0;
  /** The last first delivery, and the loss epoch it came in. */
  private lastDelivered: { seq: number; epoch: number } | undefined;
  private stopped = false;
  private commitsSinceSnapshot = 0;
  private saving: Promise<void> = Promise.resolve();
  private outbox: Outbox;
  private readonly handler: Handler;

  constructor(
    readonly vpcId: string,
    readonly bucket: number,
    private readonly deps: LaneDeps,
  ) {
    this.handler = createCommandHandler({
      log: deps.log,
      decider: {
        ...vpc.vpcDecider,
        // Each commit says how far the VPC's messages were out when it was decided:
        // a new owner sends again only what came after.
        decide: (command, state) => {
          const decision = vpc.vpcDecider.decide(command, state);
          if (decision.type === 'append') decision.commit.published = this.outbox.publishedThrough;
          return decision;
        },
        // Not a commit (nobody's append: EVENTS is the controllers' alone); `alcor
        // check` names it too.
        skip: (state, skipped) => this.passOver(state, skipped.revision, skipped.skipped),
      },
      reload: async () => {
        this.dirty = true;
        await this.hydrate();
        return this.state!;
      },
    });
    this.outbox = this.newOutbox(0);
  }

  /** The decision of an intent this VPC has handled, if it remembers it. */
  decision(intentId: string): Decided | undefined {
    const record = this.state?.intents.get(intentId);
    // Folded but not stored yet: not decided until its group is appended.
    if (!record || record.revision === PENDING_REVISION) return undefined;
    return {
      outcome: record.outcome,
      revision: record.revision,
      ...(record.error ? { error: record.error } : {}),
    };
  }

  /** An intent delivered by the intake: queued, or acked at once if already decided. */
  deliver(d: LaneDelivery): void {
    this.follow(d);
    if (d.stored.seq <= this.handled) {
      d.ack();
      return;
    }
    this.queue.set(d.stored.seq, d.stored);
    this.deliveries.get(d.stored.seq)?.ack(); // a redelivery of one still queued
    this.deliveries.set(d.stored.seq, d);
  }

  /**
   * The consumer delivers in stream order: a first delivery that comes right after
   * one the lane already knew of, with no loss signalled in between, leaves no
   * intent of the VPC unseen before it.
   */
  private follow(d: LaneDelivery): void {
    if (d.redelivery) return;
    const epoch = this.deps.lossEpoch();
    const { seq } = d.stored;
    const prev = this.lastDelivered;
    if (
      prev?.epoch === epoch &&
      prev.seq < seq &&
      prev.seq <= Math.max(this.complete, this.handled)
    )
      this.complete = Math.max(this.complete, seq);
    this.lastDelivered = { seq, epoch };
  }

  /** The deliveries still queued (a lane that passivated hands them to its successor). */
  takeDeliveries(): LaneDelivery[] {
    const out = [...this.deliveries.values()];
    this.deliveries.clear();
    this.queue.clear();
    return out;
  }

  /** Loads the state (snapshot, then the EVENTS tail) and sends again what may not be out. */
  async hydrate(): Promise<number> {
    return this.deps.limiter.run(async () => {
      this.fence();
      if (!this.dirty && this.state) return this.handled;
      const started = performance.now();
      const tail: TailGroup[] = [];
      let open:
        | {
            revision: number;
            commits: EventCommit[];
            perCommit: vpc.ProjectedMessage[][];
            hosts: string[][];
            published?: number;
          }
        | undefined;
      // A group's messages are made when it ends, from the state as of its end.
      const close = (state: vpc.VpcState): void => {
        if (!open) return;
        tail.push({
          revision: open.revision,
          commits: open.commits,
          messages: vpc.groupMessages(state, open.perCommit, open.revision, this.bucket),
          affected: open.hosts,
          ...(open.published === undefined ? {} : { published: open.published }),
        });
        // Only the last groups can be unsent: keep what the outbox window allows.
        if (tail.length > this.deps.outboxWindow + 1) tail.shift();
        open = undefined;
      };
      const { state, from } = await hydrateVpc(this.deps, this.vpcId, {
        restored: () => {
          this.deps.metrics.snapshotLoads += 1;
        },
        unusable: (err) =>
          this.deps.logger.warn(
            { vpcId: this.vpcId, err },
            'snapshot unusable; replaying the log from the start',
          ),
        before: (entry, current) => {
          if (open && open.revision !== entry.revision) close(current);
        },
        skipped: (entry) => this.reportPoison(entry.revision, entry.skipped),
        folded: (entry, current) => {
          open ??= { revision: entry.revision, commits: [], perCommit: [], hosts: [] };
          const messages = vpc.project(current, entry, this.bucket);
          open.commits.push(entry.commit);
          open.perCommit.push(messages);
          open.hosts.push(vpc.affectedHosts(current, messages));
          if (entry.commit.published !== undefined) open.published = entry.commit.published;
        },
      });
      close(state);
      this.state = state;
      this.commitsSinceSnapshot = tail.length;
      this.handled = Math.max(this.handled, state.cursor);
      this.dirty = false;
      this.outbox.close();
      const published = this.repairFrom(tail, from);
      this.outbox = this.newOutbox(published);
      if (state.revision !== from)
        this.deps.logger.debug(
          {
            vpcId: this.vpcId,
            from,
            to: state.revision,
            ms: Math.round(performance.now() - started),
          },
          'hydrated',
        );
      await this.restoreMapping(state);
      this.republish(tail.filter((g) => g.revision > published));
      this.deps.reportLoad(this.vpcId, this.bucket, vpc.loadOf(state));
      return this.handled;
    });
  }

  /**
   * Decides the intents queued (and any the stream holds that were not delivered)
   * up to `upTo`, a group at a time; returns the sequence handled up to.
   */
  async catchUp(upTo: number): Promise<number> {
    for (;;) {
      this.fence();
      if (this.dirty) await this.hydrate();
      const group = await this.nextGroup(upTo);
      if (group.length === 0) {
        this.settleDeliveries();
        return this.handled;
      }
      await this.outbox.room();
      // While a group is decided its commits are folded into the state (in place)
      // before they are stored: readers of the state wait for the append.
      const deciding = this.deps.limiter.run(() => this.decideGroup(group));
      this.deciding = deciding.catch(() => undefined);
      try {
        await deciding;
      } finally {
        this.deciding = undefined;
      }
      this.settleDeliveries();
    }
  }

  /** Writes a snapshot of what is out if anything changed (passivation, handoff). */
  async snapshot(): Promise<void> {
    await this.outbox.drain();
    if (this.commitsSinceSnapshot > 0) this.startSnapshot();
    await this.saving;
  }

  /** Stops sending and deciding: what is not out is the next owner's to send. */
  stop(): void {
    this.stopped = true;
    this.outbox.close();
  }

  /** Writes the VPC's host set to the mapping if its entry is missing (asked by a southbound). */
  async ensureMapping(): Promise<void> {
    while (this.deciding) await this.deciding;
    if (this.state && !this.dirty) await this.restoreMapping(this.state);
  }

  /** Loaded and current (not reloading after a conflict): what it says is what is stored. */
  get loaded(): boolean {
    return this.state !== undefined && !this.dirty;
  }

  /**
   * The host's full state of this VPC as stored (empty if it holds none of it:
   * that removes what it may still have), for a resync; undefined while the lane
   * is not loaded.
   */
  async fullStateFor(
    hostId: string,
  ): Promise<{ message: GoalStateMessage; place?: TopologyPlace } | undefined> {
    while (this.deciding) await this.deciding;
    const state = this.state;
    if (!state || state.revision === 0 || this.dirty) return undefined;
    const place = state.hosts.get(hostId)?.place;
    return {
      message: vpc.fullState(state, hostId, state.revision, this.bucket),
      ...(place ? { place } : {}),
    };
  }

  // ── deciding ──────────────────────────────────────────────────────────────

  /**
   * The next group: the queued intents after `handled`, read from the stream first
   * where the lane cannot vouch that none is missing before them.
   */
  private async nextGroup(upTo: number): Promise<Planned[]> {
    for (const seq of this.queue.keys()) if (seq <= this.handled) this.queue.delete(seq);
    this.complete = Math.max(this.complete, this.handled);
    let queued = [...this.queue.values()].sort((a, b) => a.seq - b.seq);
    // A sequence known to be the VPC's: the last delivered, or what it was woken for.
    const through = Math.max(upTo, queued.at(-1)?.seq ?? 0);
    if (through > this.complete) {
      const { readBatch } = this.deps;
      const read = await this.deps.limiter.run(() =>
        this.deps.intents.read(this.bucket, this.vpcId, this.handled, readBatch, through),
      );
      for (const stored of read)
        if (!this.queue.has(stored.seq)) this.queue.set(stored.seq, stored);
      // Complete up to `through`, or up to the last read if the page was full.
      this.complete = Math.max(
        this.complete,
        read.length >= readBatch ? read.at(-1)!.seq : through,
      );
      queued = [...this.queue.values()].sort((a, b) => a.seq - b.seq);
      if (queued.length === 0) {
        // Nothing of the VPC's after `handled`: handled up to there.
        this.handled = Math.max(this.handled, this.complete);
        return [];
      }
    }
    return this.cut(queued);
  }

  /**
   * The longest prefix that can be one group: within the limits, only the first
   * starting a group. Each intent is read into its command once, here.
   */
  private cut(ordered: readonly StoredIntent[]): Planned[] {
    const group: Planned[] = [];
    let bytes = 0;
    for (const stored of ordered) {
      if (stored.seq > this.complete) break; // an intent before it may not be read yet
      if (group.length > 0) {
        if (group.length >= this.deps.groupMax || bytes + stored.data.length > this.deps.groupBytes)
          break;
      }
      const planned = { stored, ...vpc.commandFor(stored, this.deps.lookupHost) };
      if (group.length > 0 && vpc.vpcDecider.startsGroup(planned.command)) break;
      group.push(planned);
      bytes += stored.data.length;
    }
    return group;
  }

  private async decideGroup(group: readonly Planned[]): Promise<void> {
    this.fence();
    // Per commit, right after it is folded (at the pending revision): its messages,
    // the hosts they reach, the hosts whose membership it may change.
    let perCommit: vpc.ProjectedMessage[][] = [];
    let affected: string[][] = [];
    let touched = new Set<string>();
    const observe = {
      start: () => {
        perCommit = [];
        affected = [];
        touched = new Set();
      },
      folded: (commit: EventCommit, state: vpc.VpcState) => {
        const recorded = { revision: PENDING_REVISION, commit };
        const messages = vpc.project(state, recorded, this.bucket);
        perCommit.push(messages);
        affected.push(vpc.affectedHosts(state, messages));
        const { present, absent } = vpc.hostChanges(state, recorded);
        for (const h of present) touched.add(h);
        for (const h of absent) touched.add(h);
      },
    };
    let result;
    try {
      result = await this.handler.handleGroup(
        this.vpcId,
        group.map((c) => c.command),
        this.state!,
        observe,
      );
    } catch (err) {
      this.dirty = true;
      if (err instanceof ConcurrencyError) throw new FencedError(this.vpcId, err);
      throw err;
    }
    const state = (this.state = result.state);
    this.handled = Math.max(this.handled, group.at(-1)!.stored.seq);
    const intentIds = group.map((c) => c.intentId);
    const { revision, commits } = result;
    if (revision !== undefined) {
      const decidedAt = Date.now();
      for (const { stored } of group)
        this.deps.stage?.('decide', (decidedAt - Date.parse(stored.time)) / 1000);
      this.deps.metrics.appended += commits.length;
      this.commitsSinceSnapshot += 1;
      this.deps.reportLoad(this.vpcId, this.bucket, vpc.loadOf(state));
      const present: string[] = [];
      const absent: string[] = [];
      for (const h of touched) (state.hosts.has(h) ? present : absent).push(h);
      const started = Date.now();
      const gate = this.outbox.push({
        revision,
        statuses: commits.map((c) => this.statusOf(c, revision)),
        goalStates: vpc.groupMessages(state, perCommit, revision, this.bucket),
        hosts: { present, absent, all: () => [...state.hosts.keys()] },
      });
      void gate.then((out) => out && this.deps.stage?.('publish', (Date.now() - started) / 1000));
      commits.forEach((commit, i) => {
        if (commit.events[0]?.type === 'IntentRejected') return;
        this.deps.track?.(
          {
            intentId: commit.intentId,
            vpcId: this.vpcId,
            bucket: this.bucket,
            revision,
            hosts: affected[i]!,
          },
          gate,
        );
      });
      if (this.commitsSinceSnapshot >= this.deps.snapshotEvery)
        void this.outbox.drain().then(() => this.startSnapshot());
    }
    this.answerEarlier(result.outcomes, intentIds);
  }

  private statusOf(commit: EventCommit, revision: number): Status {
    const first = commit.events[0];
    return first?.type === 'IntentRejected'
      ? {
          intentId: commit.intentId,
          vpcId: this.vpcId,
          revision,
          outcome: 'rejected',
          error: {
            code: first.code,
            message: first.message,
            ...(first.path ? { path: first.path } : {}),
          },
        }
      : { intentId: commit.intentId, vpcId: this.vpcId, revision, outcome: 'accepted' };
  }

  /**
   * Re-sent intents (an id decided before): their first answer, again on status.
   * Stale ones (at or behind the cursor) were decided and answered before.
   */
  private answerEarlier(
    outcomes: ReadonlyArray<Outcome<EventCommit, vpc.VpcAnswer>>,
    intentIds: readonly string[],
  ): void {
    outcomes.forEach((o, i) => {
      if (o.type !== 'answered' || o.answer.type !== 'duplicate') return;
      const decided = this.decision(intentIds[i]!);
      if (!decided) return;
      this.deps.metrics.duplicates += 1;
      const status: Status = {
        intentId: intentIds[i]!,
        vpcId: this.vpcId,
        ...decided,
        resent: true,
      };
      void this.deps.publisher
        .status(subjects.status(this.vpcId), status, statusMsgId(status.intentId, status.outcome))
        .catch((err: unknown) =>
          this.deps.logger.warn(
            { vpcId: this.vpcId, intentId: status.intentId, err },
            'status of a re-sent intent not published',
          ),
        );
    });
  }

  /** Acks the deliveries of what is decided. */
  private settleDeliveries(): void {
    for (const [seq, d] of this.deliveries) {
      if (seq > this.handled) continue;
      d.ack();
      this.deliveries.delete(seq);
      this.queue.delete(seq);
    }
  }

  /**
   * Stops the work of a run whose lease expired, or of a lane stopped while it
   * was deciding (a fresh lane may have taken its VPC): CAS fences any append
   * already on its way.
   */
  private fence(): void {
    if (this.stopped || !this.deps.leaseValid()) throw new FencedError(this.vpcId);
  }

  // ── after a takeover ──────────────────────────────────────────────────────

  /**
   * The revision through which the log's groups are known to be out: the last
   * commit's `published`, the snapshot's revision, or — for a last commit written
   * without it (an older owner) — all but the last group.
   */
  private repairFrom(tail: readonly TailGroup[], snapshotRevision: number): number {
    const last = tail.at(-1);
    if (!last) return snapshotRevision;
    const known = last.published ?? tail.at(-2)?.revision ?? snapshotRevision;
    return Math.max(known, snapshotRevision);
  }

  /** Sends again the groups a previous owner may not have sent; their intents' tracking is rechecked. */
  private republish(groups: readonly TailGroup[]): void {
    for (const g of groups) {
      this.deps.metrics.republished += 1;
      void this.outbox.push({
        revision: g.revision,
        statuses: g.commits.map((c) => this.statusOf(c, g.revision)),
        goalStates: g.messages,
      });
      g.commits.forEach((commit, i) => {
        if (commit.events[0]?.type === 'IntentRejected') return;
        this.deps.recheck?.({
          intentId: commit.intentId,
          vpcId: this.vpcId,
          bucket: this.bucket,
          revision: g.revision,
          hosts: g.affected[i]!,
        });
      });
    }
  }

  // ── helpers ───────────────────────────────────────────────────────────────

  /** A message in EVENTS that is not a commit: reported and passed over. */
  private passOver(
    state: vpc.VpcState,
    revision: number,
    error: { code: string; message: string },
  ): vpc.VpcState {
    this.reportPoison(revision, error);
    return vpc.skip(state, revision);
  }

  private reportPoison(revision: number, error: { code: string; message: string }): void {
    this.deps.metrics.poisonEvents += 1;
    this.deps.logger.error(
      { vpcId: this.vpcId, revision, ...error },
      'a message in EVENTS is not a commit; passed over',
    );
  }

  private newOutbox(publishedThrough: number): Outbox {
    return new Outbox(
      {
        vpcId: this.vpcId,
        publisher: this.deps.publisher,
        ...(this.deps.mapping ? { mapping: this.deps.mapping } : {}),
        logger: this.deps.logger,
        window: this.deps.outboxWindow,
        counted: (stored, duplicates) => {
          this.deps.metrics.goalStates += stored;
          this.deps.metrics.goalStateDuplicates += duplicates;
        },
      },
      publishedThrough,
    );
  }

  /** Writes the VPC's host set to the mapping if its entry is missing (Redis lost it). */
  private async restoreMapping(state: vpc.VpcState): Promise<void> {
    const { mapping } = this.deps;
    if (!mapping || state.status === 'absent') return;
    const restored = await mapping.restore(this.vpcId, state.revision, [...state.hosts.keys()]);
    if (restored) this.deps.metrics.mappingRestores += 1;
  }

  private startSnapshot(): void {
    const state = this.state;
    if (!state || this.dirty || state.revision > this.outbox.publishedThrough) return; // only what is out
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
}
