export * from './binding.js';
export * from './fanout.js';
