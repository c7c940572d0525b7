/** The VPC decider in the shape of the generic command handler (infra/eventSourcing). */
import type { Decider } from '../../infra/index.js';
import type { EventCommit, HostLookup } from '../../shared/index.js';
import { vpc } from '../../actors/index.js';

export interface VpcCommand {
  input: vpc.DecideInput;
  lookupHost: HostLookup;
}

/** Why an intent was not appended: decided before (duplicate) or behind the cursor (stale). */
export type VpcAnswer = Exclude<vpc.Decision, { type: 'commit' }>;

export const vpcDecider: Decider<vpc.VpcState, VpcCommand, EventCommit, VpcAnswer> = {
  initialState: vpc.initialState,
  evolve: vpc.evolve,
  decide: (command, state) => {
    const decision = vpc.decide(command.input, state, { lookupHost: command.lookupHost });
    return decision.type === 'commit'
      ? { type: 'append', commit: decision.commit }
      : { type: 'answer', answer: decision };
  },
  revisionOf: (state) => state.revision,
};
