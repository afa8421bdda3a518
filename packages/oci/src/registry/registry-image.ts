import type { Readable } from 'node:stream';
import type { ImageDestination, ImageSource, RegistryLocation } from '../image';
import { normalizeRegistry } from '../reference';
import type { Descriptor, RawManifest } from '../types';
import type { BlobUploadOptions, ManifestLocation, RegistryClient } from './client';

function location(ref: RegistryLocation): RegistryLocation {
  return { registry: normalizeRegistry(ref.registry), repository: ref.repository };
}

function describe(ref: ManifestLocation): string {
  return `docker://${normalizeRegistry(ref.registry)}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Reads an image from a registry. The top-level manifest is fetched once, on first use. */
export function registryImageSource(client: RegistryClient, ref: ManifestLocation): ImageSource {
  let manifest: Promise<RawManifest> | undefined;
  return {
    description: describe(ref),
    location: location(ref),
    getManifest() {
      manifest ??= client.getManifest(ref).catch((e: unknown) => {
        manifest = undefined;
        throw e;
      });
      return manifest;
    },
    getManifestByDigest(digest: string) {
      return client.getManifest({ registry: ref.registry, repository: ref.repository, digest });
    },
    openBlob(descriptor: Descriptor): Promise<Readable> {
      return client.openBlob(ref, descriptor);
    },
  };
}

/**
 * Writes an image to a registry repository. `putManifest(raw, tag)` stores under the tag, or by digest
 * without one; blobs from another repository of the same registry can be mounted instead of uploaded.
 */
export function registryImageDestination(client: RegistryClient, ref: RegistryLocation, uploadOptions: BlobUploadOptions = {}): ImageDestination {
  const here = location(ref);
  return {
    description: describe(ref),
    location: here,
    async hasBlob(descriptor: Descriptor) {
      return (await client.headBlob(ref, descriptor.digest)) !== undefined;
    },
    async mountBlob(descriptor: Descriptor, from: RegistryLocation) {
      if (normalizeRegistry(from.registry) !== here.registry) return false;
      if (from.repository === here.repository) return client.headBlob(ref, descriptor.digest).then((found) => found !== undefined);
      return client.mountBlob(ref, descriptor, from.repository);
    },
    putBlob(descriptor: Descriptor, open: () => Promise<Readable>) {
      return client.uploadBlob(ref, descriptor, open, uploadOptions);
    },
    async putManifest(manifest: RawManifest, tag?: string) {
      await client.putManifest({ registry: ref.registry, repository: ref.repository, ...(tag ? { tag } : {}) }, manifest);
    },
  };
}
