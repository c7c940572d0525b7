export * from './bucket.js';
export * from './ids.js';
export * from './subjects.js';
export * from './errors.js';
