/** The VPC decider in the shape of the generic command handler (infra/eventSourcing). */
import type { Decider } from '../../infra/index.js';
import {
  decodeIntent,
  type ErrorDetail,
  type EventCommit,
  type HostLookup,
  type StoredIntent,
} from '../../shared/index.js';
import { vpc } from '../../actors/index.js';

export type VpcCommand =
  | { type: 'decide'; input: vpc.DecideInput; lookupHost: HostLookup }
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
export type VpcAnswer = Exclude<vpc.Decision, { type: 'commit' }>;

export const vpcDecider: Decider<vpc.VpcState, VpcCommand, EventCommit, VpcAnswer> = {
  initialState: vpc.initialState,
  evolve: vpc.evolve,
  skip: (state, skipped) => vpc.skip(state, skipped.revision),
  decide: (command, state) => {
    if (command.type === 'invalid') {
      // A malformed intent sent again with the same id answers like the first time.
      const earlier = vpc.earlierDecision(state, command.meta.cursor, command.meta.intentId);
      if (earlier) return { type: 'answer', answer: earlier };
      return {
        type: 'append',
        commit: vpc.rejectionCommit({ ...command.meta, vpcId: state.vpcId }, command.error),
      };
    }
    const decision = vpc.decide(command.input, state, { lookupHost: command.lookupHost });
    return decision.type === 'commit'
      ? { type: 'append', commit: decision.commit }
      : { type: 'answer', answer: decision };
  },
  revisionOf: (state) => state.revision,
};

/** The command for an intent as stored in INTENTS (raw bytes at a sequence). */
export function commandFor(
  stored: StoredIntent,
  lookupHost: HostLookup,
): { intentId: string; command: VpcCommand } {
  const parsed = decodeIntent(stored.data);
  if (parsed.ok) {
    return {
      intentId: parsed.value.id,
      command: {
        type: 'decide',
        input: { intent: parsed.value, cursor: stored.seq, at: stored.time },
        lookupHost,
      },
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
