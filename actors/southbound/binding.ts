/**
 * The lifecycle of one Kafka cluster binding of a southbound module (DESIGN §7):
 *
 *   connecting → ready ⇄ degraded → … ; any → draining → stopped
 *
 * `connect` opens the cluster's one producer; a failed produce (`FAILED`) drops it
 * and the binding waits in `degraded` (growing pauses) before connecting again.
 * While it is not ready the module's relays for that cluster hold their goal
 * states unacked in JetStream; they resume in order once it is ready. `drain`
 * closes the producer.
 */
import { assign, fromPromise, setup } from 'xstate';

export interface BindingContext {
  clusterId: string;
  failures: number;
  lastError?: string;
}

export type BindingEvent = { type: 'FAILED'; error: string } | { type: 'DRAIN' };

const notProvided = (name: string) => () => Promise.reject(new Error(`${name} not provided`));

export const kafkaBindingMachine = setup({
  types: {
    input: {} as { clusterId: string },
    context: {} as BindingContext,
    events: {} as BindingEvent,
  },
  actors: {
    connect: fromPromise<void, { clusterId: string }>(notProvided('connect')),
    disconnect: fromPromise<void, { clusterId: string }>(notProvided('disconnect')),
  },
  delays: {
    retry: ({ context }) => Math.min(250 * 2 ** Math.max(0, context.failures - 1), 5_000),
  },
}).createMachine({
  id: 'kafkaBinding',
  context: ({ input }) => ({ clusterId: input.clusterId, failures: 0 }),
  initial: 'connecting',
  on: { DRAIN: '.draining' },
  states: {
    connecting: {
      invoke: {
        src: 'connect',
        input: ({ context }) => ({ clusterId: context.clusterId }),
        onDone: { target: 'ready', actions: assign({ failures: 0 }) },
        onError: {
          target: 'degraded',
          actions: assign({
            failures: ({ context }) => context.failures + 1,
            lastError: ({ event }) =>
              String((event.error as Error | undefined)?.message ?? event.error),
          }),
        },
      },
    },
    ready: {
      on: {
        FAILED: {
          target: 'degraded',
          actions: assign({
            failures: ({ context }) => context.failures + 1,
            lastError: ({ event }) => event.error,
          }),
        },
      },
    },
    degraded: {
      // The producer that failed is dropped; a fresh one connects after the pause.
      invoke: {
        src: 'disconnect',
        input: ({ context }) => ({ clusterId: context.clusterId }),
      },
      after: { retry: 'connecting' },
    },
    draining: {
      invoke: {
        src: 'disconnect',
        input: ({ context }) => ({ clusterId: context.clusterId }),
        onDone: 'stopped',
        onError: 'stopped',
      },
    },
    stopped: { type: 'final' },
  },
});

export type KafkaBindingMachine = typeof kafkaBindingMachine;
