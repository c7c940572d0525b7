/**
 * One simulated host's agent (NCA): its model of the dataplane, its JetStream
 * subscriptions (its own `gs…<host>` subject and `gsm…<vpc>` of each VPC it holds,
 * learned from its full states), apply and ack, and resync (DESIGN §7). Every
 * message is acked on `gsack.<bucket>.<vpc>.<host>`. A host requests
 * `alcor.resync.<host>` on start, after a NATS reconnect, when restarted, and for a
 * VPC whose message failed to apply (backing off while it keeps failing).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { type Logger } from '../../infra/index.js';
import {
  addressedTo,
  bindingLabel,
  bucketOf,
  decodeGoalState,
  formatBucketSet,
  parseBucketSet,
  streams,
  subjects,
  type GoalStateAck,
  type GoalStateMessage,
  type HostRecord,
  type ResyncReply,
} from '../../shared/index.js';
import { nca } from '../../actors/index.js';

export interface HostStats {
  /** Goal-state messages that reached the host. */
  delivered: number;
  /** …of which concerned it (a VPC it held, or a full state for it). */
  needed: number;
  bytes: number;
  applied: number;
  failed: number;
  invalid: number;
  resyncs: number;
  /** Resync rounds asked again for the VPCs or buckets no owner answered. */
  resyncsRepeated: number;
  /** Resync rounds asked again later because an owner was busy (it said `retryAfterMs`). */
  resyncsDeferred: number;
  /**
   * Kafka records of the host's partition it never read (the offsets it was given
   * skipped past them: retention, an offset reset); each time, every VPC taken again.
   */
  gaps: number;
  /**
   * Of the resyncs, those for VPCs just joined: a multicast newer than the join's
   * full state was stored (it may have passed by before the subscription was up).
   */
  resyncsOnJoin: number;
  /** VPCs joined whose looks at the multicast are done (and the VPC asked again if it had to). */
  joinsLooked: number;
  /**
   * Deltas that arrived after a newer message of the same VPC, never seen before
   * (order broken on the way). Not applied: the VPC's full state is asked instead.
   */
  outOfOrder: number;
  /**
   * Deltas applied after a newer message of their VPC (not covered by a full). The
   * agent never does this; the count is the check that it does not (fault runs
   * judge it, `applyLate` makes it happen on purpose).
   */
  appliedOutOfOrder: number;
  /**
   * Deltas whose target's message before them (their `prev`) never came here: a
   * goal state lost on the way. Not applied: the VPC's full state is asked instead.
   */
  missedBefore: number;
  /**
   * Deltas applied although the message before them never came. The agent never
   * does this; the count is the check that it does not (`applyLate` makes it).
   */
  appliedOverGap: number;
  /** Deltas delivered again (at-least-once: a produce retried after an outage). */
  duplicates: number;
  /** Kafka records in this host's partition keyed for a host the partition does not hold (dropped). */
  misrouted: number;
  /**
   * Kafka records in this host's partition keyed for another host sharing it
   * (hostsPerPartition > 1): what the host's own consumer fetches and skips.
   */
  neighbours: number;
}

export interface SimulatedHost {
  record: HostRecord;
  model: nca.HostModel;
  stats: HostStats;
  /** The first deltas taken out of order, described (with `trail`, the messages before each). */
  disorder: readonly Disorder[];
  /** Asks the owners for full states of these VPCs (every VPC if none); the VPCs answered. */
  resync: (vpcIds?: string[]) => Promise<number>;
}

/** What an agent is given by its fleet (a part of FleetOptions). */
export interface AgentOptions {
  logger: Logger;
  /** Injected apply failures: `(hostId, op, message) → fail?`. */
  failOp?: (
    hostId: string,
    op: GoalStateMessage['ops'][number],
    message: GoalStateMessage,
  ) => boolean;
  /** A slow agent: each ack goes out this long after the message was applied. */
  ackDelayMs?: number;
  stage?: (stage: 'apply' | 'deliver', binding: string, seconds: number) => void;
  /** Keep the last messages taken in, to describe a delta out of order (tests). */
  trail?: boolean;
  /**
   * A broken agent, for testing the checks: a delta that arrives after a newer
   * message of its VPC, or after a message it never got (its `prev`), is applied
   * (relying on per-resource revisions) instead of being answered by a resync.
   */
  applyLate?: boolean;
  /**
   * Where the host's goal states are programmed, when not in this process (an ACA
   * bridge, services/aca-bridge): given each message the agent takes, with the
   * apply to its model, and answering with the ack once programmed.
   */
  dataplane?: (agent: HostAgent) => Dataplane;
}

/**
 * A dataplane behind the agent: the agent keeps its checks (order, gaps, resync)
 * and its model (what the host must hold); the dataplane programs each message
 * and says how it went, when it knows.
 */
export interface Dataplane {
  /**
   * One message the agent takes: `apply` applies it to the host's model (call it
   * once); `answer` sends the ack, now or later (not at all: no ack, the host
   * stays pending).
   */
  take: (
    message: GoalStateMessage,
    apply: () => nca.Handled,
    answer: (ack: GoalStateAck) => void,
  ) => nca.Handled;
  stop: () => void;
}

const encoder = new TextEncoder();
/** When a VPC's multicast is looked at again after the host joined it. */
const JOIN_RECHECK_MS = 1000;
const decoder = new TextDecoder();
/** Delta revisions remembered per VPC to tell a redelivery from disorder (stats only). */
const SEEN_DELTAS = 4096;
/** Messages remembered per agent to explain a delta out of order (diagnostics only). */
const TRAIL = 48;
/** Out-of-order deltas described in full per agent (the rest are only counted). */
const DISORDER_KEPT = 3;
/** How long the parts of one goal-state message may take to all come in. */
const PARTS_BOUND_MS = 10_000;
/** VPCs or buckets answered by no owner are asked again this many times (~70 s in all). */
const MISSING_RETRIES = 12;
/** VPC ids one resync request may name (the contract's limit). */
const MAX_VPCS_PER_REQUEST = 1000;
/** How long a catch-up waits for the full state it asked for (a Kafka-bound host's comes through its relay). */
const FULL_WAIT_MS = 2000;
/** Times a catch-up asks for a VPC before leaving it to the next delta (~20 s in all). */
const CATCH_UP_TRIES = 6;
/** Times one resync waits as an owner advised (`retryAfterMs`) before it counts as missing. */
const MAX_DEFERRALS = 100;

/** The buckets a resync round's answers claimed (`ResyncReply.buckets`). */
class BucketClaims {
  private readonly claimed = new Set<number>();
  /** The bucket count the answers gave (0: no answer said). */
  count = 0;

  add(reply: Partial<ResyncReply>): void {
    const { buckets, bucketCount } = reply;
    if (typeof buckets !== 'string' || !Number.isInteger(bucketCount) || bucketCount! < 1) return;
    this.count = bucketCount!;
    if (buckets === '') return;
    try {
      for (const b of parseBucketSet(buckets, bucketCount)) this.claimed.add(b);
    } catch {
      // A malformed claim covers nothing: those buckets are asked again.
    }
  }

  /** An owner answered for the VPC's bucket (it sent its full, or has none for the host). */
  answered(vpcId: string): boolean {
    return this.count > 0 && this.claimed.has(bucketOf(vpcId, this.count));
  }

  /** Of the asked buckets (every one if undefined), those no answer claimed. */
  unclaimed(asked?: readonly number[]): number[] {
    const all = asked ?? Array.from({ length: this.count }, (_, i) => i);
    return all.filter((b) => !this.claimed.has(b));
  }
}

export const emptyStats = (): HostStats => ({
  delivered: 0,
  needed: 0,
  bytes: 0,
  applied: 0,
  failed: 0,
  invalid: 0,
  resyncs: 0,
  resyncsRepeated: 0,
  resyncsDeferred: 0,
  gaps: 0,
  resyncsOnJoin: 0,
  joinsLooked: 0,
  outOfOrder: 0,
  appliedOutOfOrder: 0,
  missedBefore: 0,
  appliedOverGap: 0,
  duplicates: 0,
  misrouted: 0,
  neighbours: 0,
});

export function addStats(sum: HostStats, stats: HostStats): void {
  for (const k of Object.keys(stats) as Array<keyof HostStats>) sum[k] += stats[k];
}

/** One goal-state message as this agent took it in (the trail behind a disorder report). */
export interface TrailEntry {
  vpcId: string;
  mode: GoalStateMessage['mode'];
  revision: number;
  prev?: number;
  part?: string;
  /** Where it came from: a Kafka `partition@offset`, or the NATS subject. */
  origin?: string;
  at: number;
}

/** A delta that came after a newer one it was not covered by: what the agent held, and its trail. */
export interface Disorder {
  vpcId: string;
  revision: number;
  applied: number;
  floor: number;
  seen: number;
  origin?: string;
  trail: TrailEntry[];
}

export class HostAgent implements SimulatedHost {
  model: nca.HostModel;
  stats = emptyStats();
  /** The first few deltas out of order, each with the messages of its VPC before it. */
  readonly disorder: Disorder[] = [];
  private trail: TrailEntry[] = [];
  private unicast: Subscription | undefined;
  private readonly multicast = new Map<string, Subscription>();
  private stopped = false;
  /** The owners' bucket count, from their resync answers (0: not known yet). */
  private bucketCount = 0;
  /** Delta revisions delivered, per VPC: a redelivery is a duplicate, not disorder. */
  private deltasSeen = new Map<string, Set<number>>();
  /**
   * Per VPC, the newest delta taken in on each of the host's two lines — its own
   * subject (unicast) and its cluster's (multicast) — which a delta's `prev` must
   * not pass (a full state covers both, by the VPC's floor).
   */
  private heads = new Map<string, { unicast: number; multicast: number }>();
  /** Parts of goal-state messages too large for one hop, until each is whole. */
  private parts = new nca.PartsAssembler();
  private partsTimer: NodeJS.Timeout | undefined;
  /** VPCs whose last message failed to apply: the delay before asking their full state again. */
  private readonly retrying = new Map<string, { delayMs: number; timer?: NodeJS.Timeout }>();
  private readonly lateResyncs = new Set<string>();
  /** Resyncs of every VPC running (resyncLate waits for them). */
  private wholeResyncs = 0;
  /** VPCs whose full state must reach a revision here: a delta not applied was at it. */
  private readonly needs = new Map<string, number>();
  /** Where goal states are programmed, when not in the model alone. */
  private readonly dataplane: Dataplane | undefined;

  constructor(
    readonly record: HostRecord,
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
    private readonly options: AgentOptions,
  ) {
    this.model = nca.emptyHostModel(record.hostId);
    this.dataplane = options.dataplane?.(this);
  }

  get label(): string {
    return bindingLabel(this.record);
  }

  get jetstream(): boolean {
    return this.record.binding.type === 'jetstream';
  }

  start(): void {
    if (!this.jetstream) return;
    this.unicast = this.nc.subscribe(subjects.goalStateHost(this.record, this.record.hostId), {
      callback: (err, msg) => {
        if (!err) this.receive(msg.data, msg.subject);
      },
    });
  }

  /** One goal-state message as it arrived (bytes): validate, apply, ack. `origin` is for diagnostics. */
  receive(data: Uint8Array, origin?: string): void {
    if (this.stopped) return;
    this.stats.bytes += data.length;
    const parsed = decodeGoalState(data);
    if (!parsed.ok) {
      this.stats.delivered += 1;
      this.stats.invalid += 1;
      this.options.logger.warn(
        { hostId: this.record.hostId, ...parsed.error },
        'goal state refused',
      );
      return;
    }
    let message = parsed.value;
    if (this.options.trail)
      this.trail.push({
        vpcId: message.vpcId,
        mode: message.mode,
        revision: message.revision,
        ...(message.prev !== undefined ? { prev: message.prev } : {}),
        ...(message.part ? { part: `${message.part.first}/${message.part.total}` } : {}),
        ...(origin ? { origin } : {}),
        at: Date.now(),
      });
    if (this.trail.length > TRAIL * 2) this.trail = this.trail.slice(-TRAIL);
    if (this.bucketCount > 0 && message.bucket !== bucketOf(message.vpcId, this.bucketCount)) {
      // Its ack would go to a bucket that is not the VPC's, and be refused there.
      this.stats.delivered += 1;
      this.stats.invalid += 1;
      this.options.logger.warn(
        { hostId: this.record.hostId, vpcId: message.vpcId, bucket: message.bucket },
        "goal state naming another bucket than its VPC's refused",
      );
      return;
    }
    if (!addressedTo(message.target, this.record)) {
      // Another host's or cluster's goal state: not ours to apply (a reply another
      // host of the HOSTS account aimed at our subject, docs/security.md).
      this.stats.delivered += 1;
      this.stats.invalid += 1;
      this.options.logger.warn(
        { hostId: this.record.hostId, vpcId: message.vpcId, target: message.target.slice(0, 200) },
        'goal state for another target refused',
      );
      return;
    }
    if (message.part) {
      // One part of a message too large for a hop: applied once every op is in.
      const outcome = this.parts.add(message, Date.now());
      if (outcome.state === 'conflict') {
        this.stats.delivered += 1;
        this.stats.invalid += 1;
        this.options.logger.warn(
          { hostId: this.record.hostId, vpcId: message.vpcId, revision: message.revision },
          'goal-state parts disagree on their total; taking the VPC again',
        );
        void this.resync([message.vpcId]);
        return;
      }
      if (outcome.state === 'waiting') {
        this.watchParts();
        return;
      }
      message = outcome.message;
    }
    // A message in parts counts once, when it is whole.
    this.stats.delivered += 1;
    const taken = message.mode === 'delta' ? this.noteDelta(message, origin) : 'new';
    if (taken === 'late' && !this.options.applyLate) {
      // Older than what the VPC already has here: whatever else it changed may be
      // missing too (a gap). Not applied (a host applies its VPC's revisions in
      // order); the VPC's full state, asked now, covers it.
      this.refuse(message);
      return;
    }
    // The check: a delta applied for the first time below the VPC's revision here.
    // (One taken again changes nothing and is acked again, as the first time.)
    if (
      taken !== 'again' &&
      message.mode === 'delta' &&
      message.revision < (this.model.vpcs.get(message.vpcId)?.revision ?? 0)
    )
      this.stats.appliedOutOfOrder += 1;
    // 'again' too: a host can get two deltas of one revision (its own, its cluster's).
    if (message.mode === 'delta' && taken !== 'late') {
      if (this.missedBefore(message)) {
        if (!this.options.applyLate) {
          // What the missing message changed is missing here too: not applied, the
          // VPC's full state — at this delta's revision or later, asked now — covers
          // both. Not remembered as taken in: a redelivery is judged again.
          this.deltasSeen.get(message.vpcId)?.delete(message.revision);
          this.refuse(message);
          return;
        }
        this.stats.appliedOverGap += 1;
      }
      this.advanceHead(message);
    }
    const failOp = this.options.failOp;
    const began = performance.now();
    const apply = (): nca.Handled =>
      nca.handleGoalState(
        this.model,
        message,
        failOp ? { failOp: (op, m) => failOp(this.record.hostId, op, m) } : {},
      );
    const handled = this.dataplane
      ? this.dataplane.take(message, apply, (ack) => this.answer(message, ack))
      : apply();
    this.options.stage?.('apply', this.label, (performance.now() - began) / 1000);
    if (handled.needed) this.stats.needed += 1;
    if (handled.ack.status === 'applied' && message.mode === 'full') {
      clearTimeout(this.retrying.get(message.vpcId)?.timer);
      this.retrying.delete(message.vpcId);
      // Deltas at or below the full's revision are now below the floor (counted as
      // redeliveries by it); those above it stay remembered — a resync's full can be
      // older than deltas already applied.
      const seen = this.deltasSeen.get(message.vpcId);
      if (seen) for (const r of seen) if (r <= message.revision) seen.delete(r);
    }
    if (!this.dataplane) this.answer(message, handled.ack);
    if (!this.jetstream) return;
    if (handled.joined) void this.follow(message);
    else if (handled.left) {
      this.multicast.get(message.vpcId)?.unsubscribe();
      this.multicast.delete(message.vpcId);
    }
  }

  /** Acks a message (applied or failed); a failed one asks its VPC again later. */
  private answer(message: GoalStateMessage, ack: GoalStateAck): void {
    if (this.stopped) return;
    if (ack.status === 'applied') this.stats.applied += 1;
    else {
      this.stats.failed += 1;
      this.retryLater(message.vpcId);
    }
    const subject = subjects.ack(message.bucket, message.vpcId, this.record.hostId);
    const data = encoder.encode(JSON.stringify(ack));
    const delay = this.options.ackDelayMs ?? 0;
    if (delay > 0) setTimeout(() => this.stopped || this.nc.publish(subject, data), delay);
    else this.nc.publish(subject, data);
  }

  /**
   * While parts wait, looks every second for those older than PARTS_BOUND_MS (some
   * never came): they are dropped and their VPCs' full states asked again.
   */
  private watchParts(): void {
    if (this.partsTimer) return;
    this.partsTimer = setInterval(() => {
      for (const vpcId of this.parts.expire(Date.now(), PARTS_BOUND_MS)) {
        this.options.logger.warn(
          { hostId: this.record.hostId, vpcId },
          'goal-state parts missing; taking the VPC again',
        );
        if (!this.stopped) void this.resync([vpcId]);
      }
      if (this.parts.size === 0 || this.stopped) {
        clearInterval(this.partsTimer);
        this.partsTimer = undefined;
      }
    }, 1000);
    this.partsTimer.unref();
  }

  /**
   * A message that failed left the VPC behind on this host, and no later delta
   * brings the refused op back: ask the VPC's full state again, backing off
   * (1 s doubling to 30 s) while it keeps failing.
   */
  private retryLater(vpcId: string): void {
    const entry = this.retrying.get(vpcId) ?? { delayMs: 500 };
    if (entry.timer) return;
    entry.delayMs = Math.min(30_000, entry.delayMs * 2);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (!this.stopped) void this.resync([vpcId]);
    }, entry.delayMs);
    entry.timer.unref();
    this.retrying.set(vpcId, entry);
  }

  /** A delta not applied (late, or after a lost one): it concerned the host all the same. */
  private refuse(message: GoalStateMessage): void {
    if (nca.hostsVpc(this.model, message.vpcId)) this.stats.needed += 1;
    this.resyncLate(message.vpcId, message.revision);
  }

  /**
   * Asks for a VPC whose full state must reach at least `revision` here (a delta
   * came late, or after one that never came, and was not applied), until one
   * does: an owner answers from what is out, which can be short of a delta just
   * published. One catch-up at a time per VPC (a burst asks once). While a resync
   * of every VPC runs (a reconnect: a storm, for the owners), it waits for that
   * one and asks only if its full state fell short.
   */
  private resyncLate(vpcId: string, revision: number): void {
    if (this.stopped) return;
    this.needs.set(vpcId, Math.max(revision, this.needs.get(vpcId) ?? 0));
    if (this.wholeResyncs > 0 || this.lateResyncs.has(vpcId)) return;
    this.lateResyncs.add(vpcId);
    void this.catchUp(vpcId).finally(() => this.lateResyncs.delete(vpcId));
  }

  private async catchUp(vpcId: string): Promise<void> {
    for (let attempt = 1; !this.stopped; attempt++) {
      await this.resync([vpcId]);
      // A Kafka-bound host's full state comes after the owners' answer (its relay).
      const deadline = Date.now() + FULL_WAIT_MS;
      while (!this.covered(vpcId) && Date.now() < deadline && !this.stopped) await sleep(50);
      if (this.covered(vpcId)) return;
      if (attempt >= CATCH_UP_TRIES) {
        this.options.logger.warn(
          { hostId: this.record.hostId, vpcId, needs: this.needs.get(vpcId), attempts: attempt },
          'no full state of the VPC reached what its deltas showed; left to the next one',
        );
        this.needs.delete(vpcId);
        return;
      }
      await sleep(Math.min(5000, 250 * 2 ** attempt));
    }
  }

  /** Has a full state reached what the VPC needs here (then it needs nothing more)? */
  private covered(vpcId: string): boolean {
    const need = this.needs.get(vpcId);
    if (need === undefined) return true;
    if ((this.model.vpcs.get(vpcId)?.floor ?? 0) < need) return false;
    this.needs.delete(vpcId);
    return true;
  }

  /** After a resync of every VPC: those still short of what their deltas showed. */
  private resyncShort(): void {
    for (const [vpcId, revision] of [...this.needs])
      if (!this.covered(vpcId) && !this.lateResyncs.has(vpcId)) this.resyncLate(vpcId, revision);
  }

  /**
   * Did a message this delta's target was sent before it (its `prev`) not come
   * here? Only for a VPC the host took a full state of (until then the full state
   * its start or join brings covers it).
   */
  private missedBefore(message: GoalStateMessage): boolean {
    const vpc = this.model.vpcs.get(message.vpcId);
    if (message.prev === undefined || !vpc || vpc.floor === 0) return false;
    const head = this.heads.get(message.vpcId);
    const line = message.target === this.record.hostId ? head?.unicast : head?.multicast;
    const held = Math.max(line ?? 0, vpc.floor);
    if (message.prev <= held) return false;
    // The deltas after a missed one miss it too: counted and told once, until caught up.
    if (this.needs.has(message.vpcId) && !this.covered(message.vpcId)) return true;
    this.stats.missedBefore += 1;
    this.options.logger.warn(
      {
        hostId: this.record.hostId,
        binding: this.label,
        vpcId: message.vpcId,
        target: message.target,
        revision: message.revision,
        prev: message.prev,
        held,
        ...(this.options.trail
          ? { trail: this.trail.filter((t) => t.vpcId === message.vpcId).slice(-TRAIL) }
          : {}),
      },
      'a goal state before this one never came: not applied, taking the VPC again',
    );
    return true;
  }

  private advanceHead(message: GoalStateMessage): void {
    let head = this.heads.get(message.vpcId);
    if (!head) this.heads.set(message.vpcId, (head = { unicast: 0, multicast: 0 }));
    if (message.target === this.record.hostId)
      head.unicast = Math.max(head.unicast, message.revision);
    else head.multicast = Math.max(head.multicast, message.revision);
  }

  /**
   * Counts a delta delivered again, or out of order, and says which. Revisions are
   * remembered from the VPC's last full state on (one below its floor is a
   * redelivery the full covered), and the last SEEN_DELTAS of them at most.
   */
  private noteDelta(message: GoalStateMessage, origin?: string): 'new' | 'again' | 'late' {
    const vpc = this.model.vpcs.get(message.vpcId);
    let seen = this.deltasSeen.get(message.vpcId);
    if (!seen) this.deltasSeen.set(message.vpcId, (seen = new Set()));
    let verdict: 'new' | 'again' | 'late' = 'new';
    if (seen.has(message.revision) || message.revision <= (vpc?.floor ?? 0)) {
      this.stats.duplicates += 1;
      verdict = 'again';
    } else if (message.revision < (vpc?.revision ?? 0)) {
      verdict = 'late';
      this.stats.outOfOrder += 1;
      const disorder: Disorder = {
        vpcId: message.vpcId,
        revision: message.revision,
        applied: vpc?.revision ?? 0,
        floor: vpc?.floor ?? 0,
        seen: seen.size,
        ...(origin ? { origin } : {}),
        trail: this.trail.filter((t) => t.vpcId === message.vpcId).slice(-TRAIL),
      };
      if (this.disorder.length < DISORDER_KEPT) this.disorder.push(disorder);
      this.options.logger.warn(
        { hostId: this.record.hostId, binding: this.label, target: message.target, ...disorder },
        'delta out of order: not applied, taking the VPC again',
      );
    }
    seen.add(message.revision);
    if (seen.size > SEEN_DELTAS) seen.delete(seen.values().next().value!);
    return verdict;
  }

  /**
   * Subscribes to the VPC's multicast, then looks whether one got past meanwhile:
   * the subject's last stored message, if newer than the full state, asks for the
   * VPC again. Looked at once the subscription is up, and again a moment later: a
   * direct get may be answered by a replica behind the leader, and a multicast
   * published just before the subscription may not be stored yet (found by the
   * fault suite: a host joined a VPC and the neighbor update published right
   * after never reached it).
   */
  private async follow(full: GoalStateMessage): Promise<void> {
    const subject = subjects.goalStateMulticast(this.record, full.vpcId);
    if (this.multicast.has(full.vpcId)) return;
    this.multicast.set(
      full.vpcId,
      this.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (!err) this.receive(msg.data, msg.subject);
        },
      }),
    );
    try {
      await this.nc.flush();
    } catch {
      // Disconnected: the reconnect's full resync covers this VPC too.
      return;
    }
    if (!(await this.passedBy(subject, full))) {
      await new Promise((r) => setTimeout(r, JOIN_RECHECK_MS));
      if (!this.stopped && this.multicast.has(full.vpcId)) await this.passedBy(subject, full);
    }
    this.stats.joinsLooked += 1;
  }

  /** Asks for the VPC again if its subject's last multicast is newer than `full` (or unknown); whether it did. */
  private async passedBy(subject: string, full: GoalStateMessage): Promise<boolean> {
    try {
      const last = await this.jsm.direct.getMessage(streams.goalStates, { last_by_subj: subject });
      const revision = last
        ? (JSON.parse(decoder.decode(last.data)) as { revision?: number }).revision
        : 0;
      if (typeof revision !== 'number' || revision <= full.revision) return false;
    } catch (err) {
      // Not known whether a multicast got past: take the VPC's full state again.
      this.options.logger.info(
        { hostId: this.record.hostId, vpcId: full.vpcId, err },
        'multicast catch-up check failed; resyncing the VPC',
      );
    }
    if (this.stopped) return true;
    this.stats.resyncsOnJoin += 1;
    await this.resync([full.vpcId]);
    return true;
  }

  /**
   * Asks the owners for full states; retries while nobody answers. What no answer
   * covered is asked again, up to MISSING_RETRIES times: named VPCs, or for a
   * full resync the buckets no owner claimed (their bucket is failing over, or
   * between owners in a handover).
   */
  async resync(vpcIds?: string[]): Promise<number> {
    if (vpcIds !== undefined) return this.resyncRounds(vpcIds);
    this.wholeResyncs += 1;
    try {
      return await this.resyncRounds(undefined);
    } finally {
      this.wholeResyncs -= 1;
      if (this.wholeResyncs === 0) this.resyncShort();
    }
  }

  private async resyncRounds(vpcIds: string[] | undefined): Promise<number> {
    this.stats.resyncs += 1;
    let asked = vpcIds;
    // A full resync asks again for these buckets only (undefined: every bucket).
    let buckets: number[] | undefined;
    let answered = 0;
    let retries = 0;
    let deferrals = 0;
    /** VPCs the owners sent a full state of, over every round. */
    const sent = new Set<string>();
    for (let attempt = 0; !this.stopped; attempt++) {
      const request = {
        hostId: this.record.hostId,
        ...(asked ? { vpcIds: asked } : {}),
        ...(buckets ? { buckets: formatBucketSet(buckets) } : {}),
      };
      let replies = 0;
      // An owner busy with other resyncs says when to ask again (the longest wins).
      let retryAfterMs = 0;
      const covered = new Set<string>();
      const claims = new BucketClaims();
      try {
        const it = await this.nc.requestMany(
          subjects.resync(this.record.hostId),
          encoder.encode(JSON.stringify(request)),
          { strategy: 'timer', maxWait: 1500 },
        );
        for await (const msg of it) {
          replies += 1;
          const reply = msg.json<Partial<ResyncReply>>();
          for (const v of reply.vpcs ?? []) covered.add(v.vpcId);
          claims.add(reply);
          // The owners' bucket count: goal states must name their VPC's bucket.
          if (claims.count > 0) this.bucketCount = claims.count;
          if (typeof reply.retryAfterMs === 'number')
            retryAfterMs = Math.max(retryAfterMs, Math.min(60_000, reply.retryAfterMs));
        }
      } catch {
        // No responders yet: try again.
      }
      answered += covered.size;
      for (const v of covered) sent.add(v);
      if (replies > 0) {
        let missing: number;
        if (asked)
          missing = (asked = asked.filter((v) => !covered.has(v) && !claims.answered(v))).length;
        // Owners that do not say which buckets they answered: one round, as before.
        else missing = (buckets = claims.count === 0 ? [] : claims.unclaimed(buckets)).length;
        if (missing === 0)
          return vpcIds === undefined ? answered + (await this.askForUnsent(sent)) : answered;
        if (retryAfterMs > 0 && ++deferrals <= MAX_DEFERRALS) {
          // Not a missing owner: a paced one. Spread the next asks (a storm's agents
          // all got the same advice).
          this.stats.resyncsDeferred += 1;
          await new Promise((r) => setTimeout(r, retryAfterMs * (1 + Math.random())));
          continue;
        }
        if (++retries > MISSING_RETRIES) {
          const what = asked
            ? { vpcIds: asked.slice(0, 10) }
            : { buckets: formatBucketSet(buckets ?? []).slice(0, 200) };
          this.options.logger.warn(
            { hostId: this.record.hostId, ...what, missing },
            `resync: no owner answered for these ${asked ? 'VPCs' : 'buckets'}`,
          );
          return answered;
        }
        this.stats.resyncsRepeated += 1;
      }
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
    }
    return answered;
  }

  /**
   * A full resync gets the VPCs the owners say the host holds (the mapping). One the
   * host still holds that none sent, it may have left while the messages saying so
   * were lost (Kafka records deleted unread): asked for by name, its owner sends its
   * full state for the host — empty if the host holds nothing of it any more.
   */
  private async askForUnsent(sent: ReadonlySet<string>): Promise<number> {
    const held = [...this.model.vpcs.keys()].filter(
      (v) => !sent.has(v) && nca.hostsVpc(this.model, v),
    );
    if (held.length > 0)
      this.options.logger.info(
        { hostId: this.record.hostId, vpcIds: held.slice(0, 10), count: held.length },
        'resync: held VPCs no owner sent; asking for them by name',
      );
    let answered = 0;
    for (let i = 0; i < held.length && !this.stopped; i += MAX_VPCS_PER_REQUEST)
      answered += await this.resync(held.slice(i, i + MAX_VPCS_PER_REQUEST));
    return answered;
  }

  reset(): void {
    for (const sub of this.multicast.values()) sub.unsubscribe();
    this.multicast.clear();
    this.model = nca.emptyHostModel(this.record.hostId);
    this.deltasSeen = new Map();
    this.heads = new Map();
    this.parts = new nca.PartsAssembler();
  }

  stop(): void {
    this.stopped = true;
    this.dataplane?.stop();
    clearInterval(this.partsTimer);
    for (const r of this.retrying.values()) clearTimeout(r.timer);
    this.unicast?.unsubscribe();
    for (const sub of this.multicast.values()) sub.unsubscribe();
  }
}
