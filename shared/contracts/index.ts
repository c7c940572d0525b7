export * from './validation.js';
export * from './intent.js';
export * from './event.js';
export * from './goalState.js';
export * from './ackStatus.js';
export * from './host.js';
export * from './placement.js';
export * from './goalStateParts.js';
