/**
 * Ports: what the actors' effects need from the outside world, implemented by
 * adapters in infra/ with real clients.
 */
import type { EventCommit, RecordedCommit } from './contracts/event.js';

export type AppendResult =
  | { type: 'appended'; revision: number }
  /** The commit's intent id was appended before (deduplicated): its revision. */
  | { type: 'duplicate'; revision: number }
  /** The VPC is no longer at the expected revision: reload and decide again. */
  | { type: 'conflict' };

/** The per-VPC event log (stream EVENTS, subject evt.<vpcId>). */
export interface EventLog {
  /** The VPC's revision: the sequence of its last commit, 0 if none. */
  lastRevision(vpcId: string): Promise<number>;
  /**
   * Appends if the VPC is still at `expectedRevision` (compare-and-set). A re-sent
   * intent id at the current revision is `duplicate`; at a stale revision the
   * server reports `conflict` first (the caller reloads and finds it decided).
   */
  append(commit: EventCommit, expectedRevision: number): Promise<AppendResult>;
  /** The VPC's commits after `afterRevision`, in order, up to its last one now. */
  read(vpcId: string, afterRevision: number): AsyncIterable<RecordedCommit>;
}
