export * from './busybox';
export * from './command';
export * from './layout';
export * from './node-runtime';
export * from './run-image';
export * from './multi-platform';
