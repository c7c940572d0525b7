export * from './model.js';
export * from './agent.js';
