export * from './context';
export * from './ignore';
export * from './sources';
export * from './plan';
export * from './users';
export * from './add';
export * from './hash';
export * from './listing';
