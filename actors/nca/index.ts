export * from './model.js';
export * from './agent.js';
export * from './parts.js';
export * from './alcor.js';
