export * from './servers.js';
export * from './names.js';
export * from './eventually.js';
export * from './nats.js';
export * from './controller.js';
export * from './workload.js';
export * from './placement.js';
export * from './cli.js';
