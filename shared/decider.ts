/**
 * The decider shape (STYLE, after emmett): `decide` a command against a state into
 * a commit (or an answer without one), `evolve` a state by a recorded commit. One
 * generic handler (infra/eventSourcing) runs read → fold → decide → append → retry
 * for any decider.
 *
 * Group commit: commands decided one after another are folded before the log has
 * given their commits a revision, at {@link PENDING_REVISION}; once the group is
 * appended (one compare-and-set), `restamp` gives them the revision the log
 * assigned. A command that must be decided against the log's own revision (a
 * compare-and-set of its own) starts a group.
 */
import type { Recorded, Skipped } from './ports.js';

/** The revision a commit is folded at before its group is appended. */
export const PENDING_REVISION = Number.MAX_SAFE_INTEGER;

export type Decision<Commit, Answer> =
  { type: 'append'; commit: Commit } | { type: 'answer'; answer: Answer };

export interface Decider<State, Command, Commit, Answer> {
  initialState: (streamId: string) => State;
  /** Folds one recorded commit; may update `state` in place and must return it. */
  evolve: (state: State, recorded: Recorded<Commit>) => State;
  /** Passes over a message of the log that is not a commit: its sequence is the revision now. */
  skip: (state: State, skipped: Skipped) => State;
  /** Either a commit to append, or an answer without appending (duplicate, stale …). */
  decide: (command: Command, state: State) => Decision<Commit, Answer>;
  revisionOf: (state: State) => number;
  /** Gives commits folded at {@link PENDING_REVISION} the revision their group got. */
  restamp: (state: State, commits: readonly Commit[], revision: number) => State;
  /** This command must be decided first in its group (against the log's revision). */
  startsGroup: (command: Command) => boolean;
}
