/**
 * A VPC's history, folded from EVENTS with the same `evolve` and `project` the
 * VPC actor runs: what the owner computed at each revision. The CLI's replay and
 * trace show it; the controller's programmed recovery asks it which hosts a past
 * commit reached.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { readStreamRange } from '../../../infra/index.js';
import {
  decodeEventMessage,
  DEFAULT_BUCKET_COUNT,
  bucketOf,
  streams,
  subjects,
  type EventCommit,
  type GoalStateEnvelope as ProjectedMessage,
} from '../../../shared/index.js';
import { vpc } from '../../../actors/index.js';

/** A point in a log: a revision (EVENTS sequence) or a time. */
export type Point = { revision: number } | { time: Date };

export interface Replayed {
  revision: number;
  /** When EVENTS stored the commit (the decision). */
  decidedAt: Date;
  commit: EventCommit;
  /** The state right after this commit (shared: valid until the next step). */
  state: vpc.VpcState;
  /** The goal states the commit produced. */
  messages: ProjectedMessage[];
}

/**
 * Folds the VPC's commits in order up to a point (inclusive), calling `step` after
 * each (stop early by returning false).
 */
export async function foldVpc(
  nc: NatsConnection,
  vpcId: string,
  step: (r: Replayed) => boolean,
  until?: Point,
  bucketCount: number = DEFAULT_BUCKET_COUNT,
): Promise<vpc.VpcState> {
  const state = vpc.initialState(vpcId);
  const bucket = bucketOf(vpcId, bucketCount);
  for await (const m of readStreamRange(nc, streams.events, {
    filter: subjects.event(vpcId),
    ...(until && 'revision' in until ? { toSeq: until.revision } : {}),
  })) {
    if (until && 'time' in until && m.time.getTime() > until.time.getTime()) break;
    const decoded = decodeEventMessage(vpcId, m.data);
    if (!decoded.ok) {
      vpc.skip(state, m.seq); // not a commit: passed over, as the VPC's actor does
      continue;
    }
    // A group's commits share its revision; each is shown with the messages it made.
    let stop = false;
    for (const commit of decoded.value) {
      const recorded = { revision: m.seq, commit };
      vpc.evolve(state, recorded);
      const messages = vpc.project(state, recorded, bucket);
      stop = step({ revision: m.seq, decidedAt: m.time, commit, state, messages }) === false;
      if (stop) break;
    }
    if (stop) break;
  }
  return state;
}
