/** Media types of the OCI image spec and Docker's v2 schema 2, and the family each belongs to. */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export type MediaFamily = 'oci' | 'docker';
export type Compression = 'gzip' | 'zstd' | 'none';

/** Every manifest type a client should list in Accept: distribution answers 404 for OCI manifests otherwise. */
export const MANIFEST_ACCEPT = [
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
] as const;

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

export function isManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest;
}

export function familyOf(mediaType: string): MediaFamily {
  return mediaType.startsWith('application/vnd.docker.') ? 'docker' : 'oci';
}

export function manifestMediaType(family: MediaFamily): string {
  return family === 'docker' ? MediaType.dockerManifest : MediaType.ociManifest;
}

export function indexMediaType(family: MediaFamily): string {
  return family === 'docker' ? MediaType.dockerManifestList : MediaType.ociIndex;
}

export function configMediaType(family: MediaFamily): string {
  return family === 'docker' ? MediaType.dockerConfig : MediaType.ociConfig;
}

/** Docker's schema has no uncompressed or zstd layer type, so those fall back to the OCI names. */
export function layerMediaType(family: MediaFamily, compression: Compression): string {
  if (family === 'docker' && compression === 'gzip') return MediaType.dockerLayerGzip;
  if (compression === 'gzip') return MediaType.ociLayerGzip;
  if (compression === 'zstd') return MediaType.ociLayerZstd;
  return MediaType.ociLayer;
}

export function layerCompression(mediaType: string): Compression {
  if (mediaType.endsWith('+zstd') || mediaType.endsWith('.zstd')) return 'zstd';
  if (mediaType.endsWith('gzip')) return 'gzip';
  return 'none';
}
