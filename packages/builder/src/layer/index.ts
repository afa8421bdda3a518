export * from './entry';
export * from './compression';
export * from './tar-header';
export * from './writer';
export * from './reader';
export * from './secure-path';
export * from './extract';
