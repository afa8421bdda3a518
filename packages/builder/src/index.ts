export * from './context/index';
export * from './dockerfile/index';
export * from './layer/index';
export * from './sandbox/index';
export * from './snapshot/index';
export * from './build/index';
export * from './cache/index';
