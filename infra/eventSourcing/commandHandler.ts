/**
 * Read → fold → decide → append → retry, written once for any decider (STYLE,
 * after emmett's command handler), with group commit: the commands of a group are
 * decided one after another against the state (each seeing the ones before it,
 * folded at PENDING_REVISION), and their commits appended together by one
 * compare-and-set — all of them right after the expected revision, or none. The
 * log's compare-and-set is the single-writer guard: on a conflict the state is
 * reloaded and the group decided again, a bounded number of times.
 */
import {
  AlcorError,
  PENDING_REVISION,
  isSkipped,
  type Decider,
  type EventLog,
} from '../../shared/index.js';

/** What became of one command of a group. */
export type Outcome<Commit, Answer> =
  { type: 'committed'; commit: Commit } | { type: 'answered'; answer: Answer };

export interface GroupHandled<State, Commit, Answer> {
  state: State;
  /** The revision the group's commits got; undefined when none was appended. */
  revision?: number;
  commits: Commit[];
  /** One per command, in order. */
  outcomes: Array<Outcome<Commit, Answer>>;
}

/** The stream kept changing under us: another writer is active. Retryable. */
export class ConcurrencyError extends AlcorError {
  constructor(streamId: string, attempts: number) {
    super(
      'concurrency',
      `${streamId} changed under ${attempts} attempts to append; another writer is active`,
      { retryable: true },
    );
  }
}

export interface CommandHandler<State, Command, Commit, Answer> {
  /** The stream's state from the log (or `from` caught up to the log's end). */
  load: (streamId: string, from?: State) => Promise<State>;
  /**
   * Decides `commands` in order against `state` (updated in place, as `evolve`
   * does) and appends their commits as one group. The caller cuts the group: a
   * command that `startsGroup` may only come first. After an error the state may
   * hold commits that were not appended: load it again.
   */
  handleGroup: (
    streamId: string,
    commands: readonly Command[],
    state: State,
    observe?: GroupObserver<State, Commit>,
  ) => Promise<GroupHandled<State, Commit, Answer>>;
}

/**
 * Sees each commit of a group right after it was folded (at PENDING_REVISION), with
 * the state as it is then — what a projection of that commit needs. `start` is
 * called before each attempt (a conflict decides the group again).
 */
export interface GroupObserver<State, Commit> {
  start: () => void;
  folded: (commit: Commit, state: State) => void;
}

export function createCommandHandler<State, Command, Commit, Answer>(deps: {
  log: EventLog<Commit>;
  decider: Decider<State, Command, Commit, Answer>;
  /** A fresh state after a conflict (default: fold the whole log; give it a snapshot-aware one). */
  reload?: (streamId: string) => Promise<State>;
  maxAttempts?: number;
}): CommandHandler<State, Command, Commit, Answer> {
  const { log, decider } = deps;
  const maxAttempts = deps.maxAttempts ?? 5;

  const load = async (streamId: string, from?: State): Promise<State> => {
    let state = from ?? decider.initialState(streamId);
    for await (const entry of log.read(streamId, decider.revisionOf(state))) {
      state = isSkipped(entry) ? decider.skip(state, entry) : decider.evolve(state, entry);
    }
    return state;
  };
  const reload = deps.reload ?? ((streamId: string) => load(streamId));

  const handleGroup = async (
    streamId: string,
    commands: readonly Command[],
    given: State,
    observe?: GroupObserver<State, Commit>,
  ): Promise<GroupHandled<State, Commit, Answer>> => {
    let state = given;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      observe?.start();
      const expected = decider.revisionOf(state);
      const outcomes: Array<Outcome<Commit, Answer>> = [];
      const commits: Commit[] = [];
      commands.forEach((command, i) => {
        if (i > 0 && decider.startsGroup(command))
          throw new Error('a command that starts a group came after the first');
        const decision = decider.decide(command, state);
        if (decision.type === 'answer') {
          outcomes.push({ type: 'answered', answer: decision.answer });
          return;
        }
        commits.push(decision.commit);
        outcomes.push({ type: 'committed', commit: decision.commit });
        state = decider.evolve(state, { revision: PENDING_REVISION, commit: decision.commit });
        observe?.folded(decision.commit, state);
      });
      if (commits.length === 0) return { state, commits, outcomes };
      const result = await log.append(streamId, commits, expected);
      if (result.type === 'appended') {
        return {
          state: decider.restamp(state, commits, result.revision),
          revision: result.revision,
          commits,
          outcomes,
        };
      }
      // A conflict, or this very group stored before (a resend): the state holds
      // commits the log did not take from us; read it again and decide again.
      state = await reload(streamId);
    }
    throw new ConcurrencyError(streamId, maxAttempts);
  };

  return { load, handleGroup };
}
