/**
 * Read → fold → decide → append → retry, written once for any decider (STYLE,
 * after emmett's command handler). The log's compare-and-set is the single-writer
 * guard: on a conflict the state is caught up from the log and the command decided
 * again, a bounded number of times.
 */
import {
  AlcorError,
  isSkipped,
  type EventLog,
  type Recorded,
  type Skipped,
} from '../../shared/index.js';

export interface Decider<State, Command, Commit, Answer> {
  initialState: (streamId: string) => State;
  /** Folds one recorded commit; may update `state` in place and must return it. */
  evolve: (state: State, recorded: Recorded<Commit>) => State;
  /** Passes over a message of the log that is not a commit: its sequence is the revision now. */
  skip: (state: State, skipped: Skipped) => State;
  /** Either a commit to append, or an answer without appending (duplicate, stale …). */
  decide: (
    command: Command,
    state: State,
  ) => { type: 'append'; commit: Commit } | { type: 'answer'; answer: Answer };
  revisionOf: (state: State) => number;
}

export type Handled<State, Commit, Answer> =
  | { type: 'appended'; state: State; recorded: Recorded<Commit> }
  /** The log already held this command's commit (deduplicated by the log). */
  | { type: 'duplicate'; state: State; revision: number }
  | { type: 'answered'; state: State; answer: Answer };

/** The stream kept changing under us: another writer is active. Retryable. */
export class ConcurrencyError extends AlcorError {
  constructor(streamId: string, attempts: number) {
    super(
      'concurrency',
      `${streamId} changed under ${attempts} attempts to append; another writer is active`,
      {
        retryable: true,
      },
    );
  }
}

export interface CommandHandler<State, Command, Commit, Answer> {
  /** The stream's state from the log (or `from` caught up to the log's end). */
  load: (streamId: string, from?: State) => Promise<State>;
  handle: (
    streamId: string,
    command: Command,
    state?: State,
  ) => Promise<Handled<State, Commit, Answer>>;
}

export function createCommandHandler<State, Command, Commit, Answer>(deps: {
  log: EventLog<Commit>;
  decider: Decider<State, Command, Commit, Answer>;
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

  const handle = async (
    streamId: string,
    command: Command,
    cached?: State,
  ): Promise<Handled<State, Commit, Answer>> => {
    let state = cached ?? (await load(streamId));
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const decision = decider.decide(command, state);
      if (decision.type === 'answer') return { type: 'answered', state, answer: decision.answer };
      const expected = decider.revisionOf(state);
      const result = await log.append(streamId, decision.commit, expected);
      if (result.type === 'appended') {
        const recorded = { revision: result.revision, commit: decision.commit };
        return { type: 'appended', state: decider.evolve(state, recorded), recorded };
      }
      // A duplicate or a conflict: someone (perhaps we, before a crash) wrote first.
      state = await load(streamId, state);
      if (result.type === 'duplicate')
        return { type: 'duplicate', state, revision: result.revision };
    }
    throw new ConcurrencyError(streamId, maxAttempts);
  };

  return { load, handle };
}
