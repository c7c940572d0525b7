/**
 * The lifecycle of one VPC actor (DESIGN §6): hydrating → active → passivated or
 * handing off → stopped. Business rules live in the decider; this machine only says
 * when the service's effects run:
 *
 * - `hydrate`: load the snapshot and the EVENTS tail; finish the last commit's
 *   goal states and status (a crash may have cut them off); output the INTENTS
 *   sequence the actor has handled up to.
 * - `catchUp`: decide the VPC's intents from INTENTS after what it has handled, in
 *   sequence order, up to at least `upTo`; output the sequence handled up to.
 * - `snapshot`: write the state to KV `vpc-snapshots`.
 *
 * Consumer deliveries only wake the actor (`WAKE {seq}`): what it decides comes
 * from the stream, in order, from its cursor. A failed effect goes to `recovering`,
 * which rehydrates after a delay; a `fenced` failure (another owner appended)
 * stops the actor without retrying.
 */
import { assign, fromPromise, setup } from 'xstate';

export interface VpcActorInput {
  vpcId: string;
}

export interface VpcActorContext {
  vpcId: string;
  /** Highest INTENTS sequence the actor was asked to reach. */
  wanted: number;
  /** INTENTS sequence the actor has handled up to. */
  handled: number;
  /** Set by HANDOFF while an effect runs: hand off when it ends. */
  handoff: boolean;
  failures: number;
  stopReason?: 'passivated' | 'handedOff' | 'fenced' | 'stopped';
}

export interface VpcActorOutput {
  reason: NonNullable<VpcActorContext['stopReason']>;
  handled: number;
}

export type VpcActorEvent =
  | { type: 'WAKE'; seq: number }
  /** Ownership moves: stop intake, finish in-flight work, snapshot, stop. */
  | { type: 'HANDOFF' }
  /** Stop now (the process is shutting down); no snapshot. */
  | { type: 'STOP' };

/** An effect's failure that must not be retried: another owner writes this VPC. */
export interface FencedFailure {
  fenced: true;
}

const isFenced = (error: unknown): boolean =>
  typeof error === 'object' && error !== null && (error as Partial<FencedFailure>).fenced === true;

const notProvided = (name: string) => () => Promise.reject(new Error(`${name} not provided`));

export const vpcActorMachine = setup({
  types: {
    input: {} as VpcActorInput,
    context: {} as VpcActorContext,
    events: {} as VpcActorEvent,
    output: {} as VpcActorOutput,
  },
  actors: {
    hydrate: fromPromise<number, { vpcId: string }>(notProvided('hydrate')),
    catchUp: fromPromise<number, { vpcId: string; upTo: number }>(notProvided('catchUp')),
    snapshot: fromPromise<void, { vpcId: string }>(notProvided('snapshot')),
  },
  delays: {
    /** How long an actor stays idle before it is passivated. */
    idle: 60_000,
    /** Pause before rehydrating after a failure (grows with `failures`). */
    retry: ({ context }) => Math.min(100 * 2 ** context.failures, 10_000),
  },
  guards: {
    behind: ({ context }) => context.wanted > context.handled,
    handingOff: ({ context }) => context.handoff,
    fenced: ({ event }) => isFenced((event as { error?: unknown }).error),
  },
}).createMachine({
  id: 'vpc',
  context: ({ input }) => ({
    vpcId: input.vpcId,
    wanted: 0,
    handled: 0,
    handoff: false,
    failures: 0,
  }),
  initial: 'hydrating',
  on: {
    WAKE: {
      actions: assign({ wanted: ({ context, event }) => Math.max(context.wanted, event.seq) }),
    },
    HANDOFF: { actions: assign({ handoff: true }) },
    STOP: { target: '.stopped', actions: assign({ stopReason: 'stopped' }) },
  },
  states: {
    hydrating: {
      invoke: {
        src: 'hydrate',
        input: ({ context }) => ({ vpcId: context.vpcId }),
        onDone: {
          target: 'active',
          actions: assign({
            handled: ({ event }) => event.output,
            wanted: ({ context, event }) => Math.max(context.wanted, event.output),
          }),
        },
        onError: [
          { guard: 'fenced', target: 'stopped', actions: assign({ stopReason: 'fenced' }) },
          { target: 'recovering' },
        ],
      },
    },
    active: {
      initial: 'deciding',
      states: {
        deciding: {
          always: [
            { guard: 'handingOff', target: '#vpc.handingOff' },
            { guard: 'behind', target: 'working' },
            { target: 'idle' },
          ],
        },
        working: {
          invoke: {
            src: 'catchUp',
            input: ({ context }) => ({ vpcId: context.vpcId, upTo: context.wanted }),
            onDone: {
              target: 'deciding',
              actions: assign({
                handled: ({ context, event }) => Math.max(context.handled, event.output),
                wanted: ({ context, event }) => Math.max(context.wanted, event.output),
                failures: 0,
              }),
            },
            onError: [
              {
                guard: 'fenced',
                target: '#vpc.stopped',
                actions: assign({ stopReason: 'fenced' }),
              },
              { target: '#vpc.recovering' },
            ],
          },
        },
        idle: {
          on: {
            WAKE: {
              target: 'deciding',
              actions: assign({
                wanted: ({ context, event }) => Math.max(context.wanted, event.seq),
              }),
            },
            HANDOFF: { target: '#vpc.handingOff' },
          },
          after: { idle: '#vpc.passivating' },
        },
      },
    },
    recovering: {
      entry: assign({ failures: ({ context }) => context.failures + 1 }),
      after: { retry: 'hydrating' },
    },
    passivating: {
      invoke: {
        src: 'snapshot',
        input: ({ context }) => ({ vpcId: context.vpcId }),
        onDone: [
          // Woken while writing the snapshot: stay.
          { guard: 'behind', target: 'active' },
          { target: 'stopped', actions: assign({ stopReason: 'passivated' }) },
        ],
        onError: { target: 'stopped', actions: assign({ stopReason: 'passivated' }) },
      },
    },
    handingOff: {
      invoke: {
        src: 'snapshot',
        input: ({ context }) => ({ vpcId: context.vpcId }),
        onDone: { target: 'stopped', actions: assign({ stopReason: 'handedOff' }) },
        // The snapshot is an optimisation; the new owner can replay the log.
        onError: { target: 'stopped', actions: assign({ stopReason: 'handedOff' }) },
      },
    },
    stopped: { type: 'final' },
  },
  output: ({ context }) => ({ reason: context.stopReason ?? 'stopped', handled: context.handled }),
});

export type VpcActorMachine = typeof vpcActorMachine;
