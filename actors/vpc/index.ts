export * from './state.js';
export * from './decider.js';
export * from './projection.js';
export * from './snapshot.js';
export * from './machine.js';
export * from './command.js';
export * from './programmed.js';
