export * from './canonical-json';
export * from './digest';
export * from './errors';
export * from './image';
export * from './media-types';
export * from './types';
export * from './registry/index';
export * from './store/index';
