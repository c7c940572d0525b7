/**
 * The VPC decider in the generic handler's shape (shared/decider.ts): commands are
 * intents as stored in INTENTS — valid ones decided by the rules, invalid ones
 * refused with their validation error (still one trace in EVENTS each). The host
 * places an intent names are looked up at the edge and travel in the command, so
 * deciding reads no directory.
 */
import {
  decodeIntent,
  type Decider,
  type ErrorDetail,
  type EventCommit,
  type HostLookup,
  type StoredIntent,
  type TopologyPlace,
} from '../../shared/index.js';
import {
  decide,
  earlierDecision,
  evolve,
  rejectionCommit,
  restamp,
  skip,
  type DecideInput,
  type Decision,
} from './decider.js';
import { initialState, type VpcState } from './state.js';

export type VpcCommand =
  | {
      type: 'decide';
      input: DecideInput;
      /** The places of the hosts the intent names (absent: not registered). */
      hosts: ReadonlyMap<string, TopologyPlace>;
    }
  /**
   * An intent that failed validation (not JSON, unknown kind, bad field …). It
   * still leaves its one trace in EVENTS: an IntentRejected at its cursor.
   */
  | {
      type: 'invalid';
      meta: { intentId: string; kind: string; cursor: number; at: string };
      error: ErrorDetail;
    };

/** Why an intent was not appended: decided before (duplicate) or behind the cursor (stale). */
export type VpcAnswer = Exclude<Decision, { type: 'commit' }>;

export const vpcDecider: Decider<VpcState, VpcCommand, EventCommit, VpcAnswer> = {
  initialState,
  evolve,
  skip: (state, skipped) => skip(state, skipped.revision),
  restamp,
  decide: (command, state) => {
    if (command.type === 'invalid') {
      // A malformed intent sent again with the same id answers like the first time.
      const earlier = earlierDecision(state, command.meta.cursor, command.meta.intentId);
      if (earlier) return { type: 'answer', answer: earlier };
      return {
        type: 'append',
        commit: rejectionCommit({ ...command.meta, vpcId: state.vpcId }, command.error),
      };
    }
    const decision = decide(command.input, state, {
      lookupHost: (hostId) => command.hosts.get(hostId),
    });
    return decision.type === 'commit'
      ? { type: 'append', commit: decision.commit }
      : { type: 'answer', answer: decision };
  },
  revisionOf: (state) => state.revision,
  // A compare-and-set of its own is decided against the revision the log gave.
  startsGroup: (command) =>
    command.type === 'decide' && command.input.intent.expectedRevision !== undefined,
};

/** The intent's id and its command, for an intent as stored in INTENTS (raw bytes at a sequence). */
export function commandFor(
  stored: StoredIntent,
  lookupHost: HostLookup,
): { intentId: string; command: VpcCommand } {
  const parsed = decodeIntent(stored.data);
  if (parsed.ok) {
    const intent = parsed.value;
    const hosts = new Map<string, TopologyPlace>();
    const named = 'hostId' in intent.spec ? intent.spec.hostId : undefined;
    if (typeof named === 'string') {
      const place = lookupHost(named);
      if (place) hosts.set(named, place);
    }
    return {
      intentId: intent.id,
      command: { type: 'decide', input: { intent, cursor: stored.seq, at: stored.time }, hosts },
    };
  }
  const intentId = parsed.id ?? `invalid-${stored.seq}`;
  return {
    intentId,
    command: {
      type: 'invalid',
      meta: { intentId, kind: 'unknown', cursor: stored.seq, at: stored.time },
      error: parsed.error,
    },
  };
}
