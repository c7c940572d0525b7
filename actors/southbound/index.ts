export * from './binding.js';
