/**
 * Ports: what the actors' effects need from the outside world, implemented by
 * adapters in infra/ with real clients.
 */
import type { EventCommit } from './contracts/event.js';
import type { GoalStateMessage } from './contracts/goalState.js';
import type { Status } from './contracts/ackStatus.js';
import type { ErrorDetail } from './errors.js';

export type AppendResult =
  | { type: 'appended'; revision: number }
  /** The commit's intent id was appended before (deduplicated): its revision. */
  | { type: 'duplicate'; revision: number }
  /** The VPC is no longer at the expected revision: reload and decide again. */
  | { type: 'conflict' };

/** A commit as read back from its log, with its sequence: the revision. */
export interface Recorded<Commit> {
  revision: number;
  commit: Commit;
}

/**
 * A message of a log that is not a commit (no owner wrote it): passed over and
 * reported, never a wedge. Its sequence still counts as the stream's revision, the
 * anchor of the next compare-and-set append.
 */
export interface Skipped {
  revision: number;
  skipped: ErrorDetail;
}

export type LogEntry<Commit> = Recorded<Commit> | Skipped;

export function isSkipped<Commit>(entry: LogEntry<Commit>): entry is Skipped {
  return 'skipped' in entry;
}

/**
 * An event log of streams (one per aggregate). The VPC log is stream EVENTS,
 * one subject per VPC (`evt.<vpcId>`), with `EventCommit`s.
 */
export interface EventLog<Commit = EventCommit> {
  /** The stream's revision: the sequence of its last commit, 0 if none. */
  lastRevision(streamId: string): Promise<number>;
  /**
   * Appends `commits` — one, or a group in one message — if the stream is still at
   * `expectedRevision` (compare-and-set): all of them or none. The same group sent
   * again is `duplicate`; at a stale revision the server reports `conflict` first
   * (the caller reloads and finds it decided).
   */
  append(
    streamId: string,
    commits: readonly Commit[],
    expectedRevision: number,
  ): Promise<AppendResult>;
  /**
   * The stream's entries after `afterRevision`, in order, up to its last one now:
   * its commits, and any message that is not one (skipped, with why).
   */
  read(streamId: string, afterRevision: number): AsyncIterable<LogEntry<Commit>>;
}

/** A goal-state message with its subject and `Nats-Msg-Id` (DESIGN §4.4). */
export interface GoalStateEnvelope {
  subject: string;
  msgId: string;
  message: GoalStateMessage;
}

/** An intent as stored in INTENTS: its sequence (the VPC's cursor) and raw bytes. */
export interface StoredIntent {
  seq: number;
  subject: string;
  data: Uint8Array;
  /** When the stream stored it, ISO 8601: the decision's `at`. */
  time: string;
}

/** The VPC's intents in INTENTS, read in sequence order from a cursor. */
export interface IntentSource {
  /**
   * Up to `max` intents of the VPC after `afterSeq`, in order and with none missing
   * up to the last one returned. `through`: a sequence known to be the VPC's (a
   * delivery, a scan); unless `max` intents come first, the page reaches it,
   * whichever copy of the stream answers — a copy that lacks it fails the read
   * (retryable), it is never returned short.
   */
  read(
    bucket: number,
    vpcId: string,
    afterSeq: number,
    max: number,
    through?: number,
  ): Promise<StoredIntent[]>;
}

/** Where decisions go out: goal states (deduplicated by msgId), then status. */
export interface DecisionPublisher {
  goalStates(
    messages: readonly GoalStateEnvelope[],
  ): Promise<{ stored: number; duplicates: number }>;
  status(subject: string, status: Status, msgId: string): Promise<void>;
}

/** A VPC's latest snapshot: JSON text at a revision. */
export interface SnapshotStore {
  load(vpcId: string): Promise<{ revision: number; text: string } | undefined>;
  save(vpcId: string, revision: number, text: string): Promise<void>;
}

/**
 * The VPC↔host mapping (DESIGN §4.7): a derived index the VPC owners write after
 * their commits are appended. Every write carries the VPC revision it reflects; a
 * write older than the one applied is skipped, so a late owner cannot roll it back.
 */
export interface HostMapping {
  /**
   * Hosts that hold / no longer hold the VPC as of `revision`. Where the VPC's entry
   * is missing (a new VPC, or the mapping was lost), the whole set, `all()`, is
   * written instead: a delta alone would leave a partial set that looks whole.
   */
  apply(
    vpcId: string,
    revision: number,
    present: string[],
    absent: string[],
    all: () => readonly string[],
  ): Promise<void>;
  /**
   * Writes the whole host set of a VPC whose entry is missing (lost) or older than
   * `revision` (a Redis replica promoted before it had the last writes); false if
   * the entry is already at `revision` or newer.
   */
  restore(vpcId: string, revision: number, hosts: readonly string[]): Promise<boolean>;
  /**
   * The mapping's generation, named anew (`created`) when the mapping is found
   * without one: new, or lost (Redis restarted empty). Owners rebuild their VPCs'
   * entries when it changes.
   */
  generation(): Promise<{ id: string; created: boolean }>;
  /**
   * Names a new generation if it is still `seen` (one of several owners that saw
   * the same loss does it): every bucket's entries are then written again.
   */
  renewGeneration(seen: string): Promise<void>;
  /**
   * Which node is master of which slots, for a Redis Cluster (undefined for one
   * server): a change between two looks is a failover, whose promoted replica may
   * have missed the last writes.
   */
  masters(): Promise<string | undefined>;
  /** Per bucket, the generation its VPCs' entries were last written for (null: never). */
  rebuiltFor(buckets: readonly number[]): Promise<Array<string | null>>;
  /** Marks these buckets' entries written for `generation`. */
  markRebuilt(buckets: readonly number[], generation: string): Promise<void>;
  /** The VPC's hosts and the revision they are at; undefined when never written or lost. */
  hostsOf(vpcId: string): Promise<{ revision: number; hosts: string[] } | undefined>;
  vpcsOf(hostId: string): Promise<string[]>;
}
