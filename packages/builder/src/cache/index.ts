export * from './key';
export * from './layer-cache';
export * from './directory-cache';
export * from './registry-cache';
export * from './caching-source';
export * from './verify';
