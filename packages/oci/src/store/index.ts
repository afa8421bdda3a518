export * from './cas';
export * from './oci-layout';
export * from './docker-archive';
export { indexTar, type TarMember } from './tar-index';
