/**
 * Ports: what the actors' effects need from the outside world, implemented by
 * adapters in infra/ with real clients.
 */
import type { EventCommit } from './contracts/event.js';

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
 * An event log of streams (one per aggregate). The VPC log is stream EVENTS,
 * one subject per VPC (`evt.<vpcId>`), with `EventCommit`s.
 */
export interface EventLog<Commit = EventCommit> {
  /** The stream's revision: the sequence of its last commit, 0 if none. */
  lastRevision(streamId: string): Promise<number>;
  /**
   * Appends if the VPC is still at `expectedRevision` (compare-and-set). A re-sent
   * intent id at the current revision is `duplicate`; at a stale revision the
   * server reports `conflict` first (the caller reloads and finds it decided).
   */
  append(streamId: string, commit: Commit, expectedRevision: number): Promise<AppendResult>;
  /** The stream's commits after `afterRevision`, in order, up to its last one now. */
  read(streamId: string, afterRevision: number): AsyncIterable<Recorded<Commit>>;
}
