/**
 * One VPC's ordered outbox (docs/controller.md, "The hot path"): what its appended
 * groups make known — statuses, the host mapping, goal states — goes out in
 * revision order without waiting for each ack.
 *
 * For each group, as it is pushed: its statuses (`accepted` / `rejected`) are
 * issued at once, right after the append. Then, in order behind the groups before
 * it: the VPC↔host mapping is written (awaited: a southbound module expanding a
 * multicast of this revision must find the hosts it has), and the goal states are
 * issued. A group is out once all of its messages are acknowledged by the stream;
 * `publishedThrough` is the revision through which every group is out. At most
 * `window` groups are in flight; `room()` waits for one to finish.
 *
 * A publish that fails is issued again (with backoff) — the stream's msgId makes a
 * repeat harmless — until it is out or the outbox is closed; goal states sent again
 * wait for the group before's to be out, so a retry does not land ahead of it. A new owner sends
 * again what may not be out (after the last commit's `published`), see lane.ts.
 *
 * Each delta names the revision of the message its target was sent before it
 * (`prev`), so a receiver that missed one knows (docs/contracts.md). The outbox
 * knows only what it sent itself: a target's first message from it has no `prev`.
 */
import type { Logger } from '../../../infra/index.js';
import {
  statusMsgId,
  subjects,
  type DecisionPublisher,
  type GoalStateEnvelope,
  type HostMapping,
  type Status,
} from '../../../shared/index.js';

export interface OutboxEntry {
  revision: number;
  statuses: Status[];
  goalStates: GoalStateEnvelope[];
  /** Hosts that hold / no longer hold the VPC as of this revision (none: no mapping write). */
  hosts?: { present: string[]; absent: string[]; all: () => readonly string[] };
}

export interface OutboxDeps {
  vpcId: string;
  publisher: DecisionPublisher;
  mapping?: HostMapping;
  logger: Logger;
  window: number;
  /** Goal states and statuses stored / found already stored (msgId). */
  counted?: (stored: number, duplicates: number) => void;
}

interface InFlight {
  revision: number;
  finished: boolean;
}

const RETRY_MS = 250;
const MAX_RETRY_MS = 5000;

export class Outbox {
  /** Every group at or below this revision is out. */
  publishedThrough: number;
  private readonly inFlight: InFlight[] = [];
  /** Issue order of the mapping writes and goal states. */
  private chain: Promise<void> = Promise.resolve();
  /** The last group's goal states acknowledged (or given up). */
  private goalStatesOut: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly roomWaiters: Array<() => void> = [];
  private readonly drainWaiters: Array<() => void> = [];
  /** Target (hostId or cluster key) → the revision of its last message sent from here. */
  private readonly lastSent = new Map<string, number>();

  constructor(
    private readonly deps: OutboxDeps,
    publishedThrough: number,
  ) {
    this.publishedThrough = publishedThrough;
  }

  get size(): number {
    return this.inFlight.length;
  }

  /**
   * Sends a group's messages; returns whether its statuses were stored (false: the
   * outbox closed first). `programmed` must not overtake `accepted`.
   */
  push(entry: OutboxEntry): Promise<boolean> {
    entry = { ...entry, goalStates: this.linked(entry.goalStates) };
    const statuses = this.retrying(() => this.sendStatuses(entry.statuses), entry, 'statuses');
    // In revision order behind the groups before: the mapping write (awaited), then
    // the goal states issued — the next group's follow once these are issued, not acked.
    const prior = this.goalStatesOut;
    const step = this.chain.then(async () => {
      const { hosts } = entry;
      const mapping = this.deps.mapping;
      if (hosts && mapping && hosts.present.length + hosts.absent.length > 0)
        await this.retrying(
          () =>
            mapping.apply(this.deps.vpcId, entry.revision, hosts.present, hosts.absent, hosts.all),
          entry,
          'the host mapping',
        );
      return {
        acked: this.retrying(
          () => this.sendGoalStates(entry.goalStates),
          entry,
          'goal states',
          prior,
        ),
      };
    });
    this.chain = step.then(
      () => undefined,
      () => undefined,
    );
    this.goalStatesOut = step.then(
      (s) => s.acked.catch(() => undefined),
      () => undefined,
    );
    const flight: InFlight = { revision: entry.revision, finished: false };
    this.inFlight.push(flight);
    void Promise.allSettled([statuses, step.then((s) => s.acked)]).then(() => {
      flight.finished = true;
      this.settle();
    });
    // Settles either way: closed, the statuses are left to the next owner (and the
    // tracker publishes an `accepted` itself before a final status).
    return statuses.then(
      () => true,
      () => false,
    );
  }

  /** Resolves once fewer than `window` groups are in flight. */
  async room(): Promise<void> {
    while (this.inFlight.length >= this.deps.window && !this.closed)
      await new Promise<void>((r) => this.roomWaiters.push(r));
  }

  /** Resolves once every group pushed so far is out (or the outbox closed). */
  async drain(): Promise<void> {
    if (this.inFlight.length === 0 || this.closed) return;
    await new Promise<void>((r) => this.drainWaiters.push(r));
  }

  /** Stops sending: what is not out is left to the next owner's repair. */
  close(): void {
    this.closed = true;
    for (const w of this.roomWaiters.splice(0)) w();
    for (const w of this.drainWaiters.splice(0)) w();
  }

  /** The group's deltas with the revision each target was sent before (`prev`). */
  private linked(messages: readonly GoalStateEnvelope[]): GoalStateEnvelope[] {
    return messages.map((envelope) => {
      const { target, revision, mode } = envelope.message;
      const prev = this.lastSent.get(target);
      // A group sent again after a reload is below it: the claim never goes back.
      this.lastSent.set(target, Math.max(prev ?? 0, revision));
      if (mode !== 'delta' || prev === undefined || prev >= revision) return envelope;
      return { ...envelope, message: { ...envelope.message, prev } };
    });
  }

  /** Takes finished groups off the front, advancing the watermark in order. */
  private settle(): void {
    while (this.inFlight[0]?.finished) {
      const first = this.inFlight.shift()!;
      this.publishedThrough = Math.max(this.publishedThrough, first.revision);
      this.roomWaiters.shift()?.();
    }
    if (this.inFlight.length === 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  private async sendStatuses(statuses: readonly Status[]): Promise<void> {
    await Promise.all(
      statuses.map((s) =>
        this.deps.publisher.status(subjects.status(s.vpcId), s, statusMsgId(s.intentId, s.outcome)),
      ),
    );
  }

  /** Issues the goal states now; the returned promise settles when all are acked. */
  private sendGoalStates(messages: readonly GoalStateEnvelope[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    const sent = this.deps.publisher.goalStates(messages);
    return sent.then(({ stored, duplicates }) => this.deps.counted?.(stored, duplicates));
  }

  /**
   * Runs `send` until it succeeds or the outbox is closed, backing off. A retry
   * waits for `before` (the group before's goal states out): a group sent again
   * cannot land ahead of the one before it.
   */
  private async retrying(
    send: () => Promise<void>,
    entry: OutboxEntry,
    what: string,
    before?: Promise<void>,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await send();
      } catch (err) {
        if (this.closed) throw err;
        const delay = Math.min(MAX_RETRY_MS, RETRY_MS * 2 ** attempt);
        this.deps.logger.warn(
          { vpcId: this.deps.vpcId, revision: entry.revision, err, attempt, delayMs: delay },
          `${what} not published yet; sending them again`,
        );
        await Promise.all([new Promise((r) => setTimeout(r, delay)), before]);
        if (this.closed) throw err;
      }
    }
  }
}
