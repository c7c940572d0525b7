export * as vpc from './vpc/index.js';
export * as nca from './nca/index.js';
export * as southbound from './southbound/index.js';
