export * from './base-image';
export * from './built-image';
export * from './engine';
export * from './image-config';
export * from './options';
export * from './rootfs';
export * from './stage-builder';
export * from './stages';
