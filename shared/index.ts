export * from './bucket.js';
export * from './ids.js';
export * from './subjects.js';
export * from './errors.js';
export * from './net/ipv4.js';
export * from './topology.js';
export * from './contracts/index.js';
export * from './ports.js';
