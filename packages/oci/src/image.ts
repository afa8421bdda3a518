import type { Readable } from 'node:stream';
import type { Descriptor, RawManifest } from './types';

/** Where an image lives on a registry; lets a copy mount blobs instead of moving bytes. */
export interface RegistryLocation {
  /** Registry host as used on the wire, e.g. `127.0.0.1:5000` or `registry-1.docker.io`. */
  registry: string;
  repository: string;
}

/**
 * Anything an image can be read from: a registry, an OCI layout, a docker-archive, or an image built in memory.
 * Accessors are lazy: nothing is fetched until asked for.
 */
export interface ImageSource {
  /** Shown in messages, in skopeo's transport syntax (`docker://…`, `oci:…`, `docker-archive:…`). */
  readonly description: string;
  readonly location?: RegistryLocation;
  /** Where one blob lives when blobs come from several places (a built image: base layers on one registry, new layers on disk). */
  blobLocation?(descriptor: Descriptor): RegistryLocation | undefined;
  /** The top-level manifest: an image manifest or an index, exactly as stored. */
  getManifest(): Promise<RawManifest>;
  /** A manifest named by digest, such as an index's child. */
  getManifestByDigest(digest: string): Promise<RawManifest>;
  /** The blob's bytes as a stream that fails if they do not match the descriptor's digest and size. */
  openBlob(descriptor: Descriptor): Promise<Readable>;
  close?(): Promise<void>;
}

/** Anything an image can be written to. Blobs go first, manifests after their blobs, and `close` publishes. */
export interface ImageDestination {
  readonly description: string;
  readonly location?: RegistryLocation;
  hasBlob(descriptor: Descriptor): Promise<boolean>;
  /** Mount a blob from another repository of the same registry; false when the registry wants an upload instead. */
  mountBlob?(descriptor: Descriptor, from: RegistryLocation): Promise<boolean>;
  /** `open` may be called more than once, so a failed upload can start again from the first byte. */
  putBlob(descriptor: Descriptor, open: () => Promise<Readable>): Promise<void>;
  /** Store a manifest by digest, and under `tag` when given. */
  putManifest(manifest: RawManifest, tag?: string): Promise<void>;
  close?(): Promise<void>;
}
