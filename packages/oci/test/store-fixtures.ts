import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { canonicalJsonBytes } from '../src/canonical-json';
import { sha256Digest } from '../src/digest';
import { MediaType } from '../src/media-types';
import { ociLayoutDestination } from '../src/store/oci-layout';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform, RawManifest } from '../src/types';

export const run = promisify(execFile);

/** A gzip layer holding one file of random bytes, with its diff ID. */
export async function randomLayer(size = 4096, name = 'data.bin'): Promise<{ blob: Buffer; descriptor: Descriptor; diffId: string }> {
  const pack = tar.pack();
  pack.entry({ name, size, mode: 0o644, mtime: new Date(0) }, randomBytes(size));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(Buffer.from(chunk as Uint8Array));
  const tarBytes = Buffer.concat(chunks);
  const blob = gzipSync(tarBytes);
  return { blob, descriptor: { mediaType: MediaType.ociLayerGzip, digest: sha256Digest(blob), size: blob.length }, diffId: sha256Digest(tarBytes) };
}

function raw(value: unknown, mediaType: string): RawManifest {
  const bytes = canonicalJsonBytes(value);
  return { bytes, mediaType, digest: sha256Digest(bytes) };
}

/** Write an image of `layerCount` random layers into an OCI layout under `tag` (no tag: only the blobs). */
export async function writeRandomImage(
  directory: string,
  tag: string | undefined,
  options: { layerCount?: number; platform?: Platform; layerSize?: number } = {},
): Promise<{ manifest: RawManifest; layers: Descriptor[]; config: Descriptor }> {
  const destination = await ociLayoutDestination(directory);
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const layers = await Promise.all(Array.from({ length: options.layerCount ?? 2 }, () => randomLayer(options.layerSize)));
  const config: ImageConfig = {
    ...platform,
    config: { Cmd: ['/bin/sh'], Env: ['PATH=/usr/bin:/bin'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  };
  const configBytes = canonicalJsonBytes(config);
  const configDescriptor: Descriptor = { mediaType: MediaType.ociConfig, digest: sha256Digest(configBytes), size: configBytes.length };
  for (const layer of layers) await destination.putBlob(layer.descriptor, async () => Readable.from([layer.blob]));
  await destination.putBlob(configDescriptor, async () => Readable.from([configBytes]));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: configDescriptor,
    layers: layers.map((l) => l.descriptor),
  };
  const manifestRaw = raw(manifest, MediaType.ociManifest);
  await destination.putManifest(manifestRaw, tag);
  if (tag !== undefined) await destination.close!();
  return { manifest: manifestRaw, layers: layers.map((l) => l.descriptor), config: configDescriptor };
}

/** An OCI index with one random image per platform, tagged `tag`. */
export async function writeRandomIndex(directory: string, tag: string, platforms: Platform[]): Promise<{ index: RawManifest; children: Descriptor[] }> {
  const children: Descriptor[] = [];
  for (const platform of platforms) {
    const image = await writeRandomImage(directory, undefined, { platform, layerCount: 1 });
    children.push({ mediaType: MediaType.ociManifest, digest: image.manifest.digest, size: image.manifest.bytes.length, platform });
  }
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: children };
  const indexRaw = raw(index, MediaType.ociIndex);
  const destination = await ociLayoutDestination(directory);
  await destination.putManifest(indexRaw, tag);
  await destination.close!();
  return { index: indexRaw, children };
}

export async function skopeo(...args: string[]): Promise<string> {
  const { stdout } = await run('skopeo', args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}
