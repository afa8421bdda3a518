import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { canonicalJsonBytes, MediaType, sha256Digest, type Descriptor, type ImageManifest } from '@tessera/oci';

/** A random blob and its descriptor. */
export function randomBlob(size: number, mediaType: string = MediaType.ociLayerGzip): { bytes: Buffer; descriptor: Descriptor } {
  const bytes = randomBytes(size);
  return { bytes, descriptor: { mediaType, digest: sha256Digest(bytes), size } };
}

export const openBuffer = (bytes: Buffer) => async () => Readable.from([bytes]);

/** A unique repository name per test, so tests never see each other's tags. */
export function uniqueRepository(prefix: string): string {
  return `tessera-test/${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A minimal image manifest over the given config and layers. */
export function manifestBytes(config: Descriptor, layers: Descriptor[], mediaType: string = MediaType.ociManifest): Buffer {
  const manifest: ImageManifest = { schemaVersion: 2, mediaType, config, layers };
  return canonicalJsonBytes(manifest);
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
