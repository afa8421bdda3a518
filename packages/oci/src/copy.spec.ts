import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { canonicalJsonBytes } from './canonical-json';
import { copyImage } from './copy';
import { sha256Digest } from './digest';
import type { ImageDestination, ImageSource, RegistryLocation } from './image';
import { MediaType } from './media-types';
import type { Descriptor, RawManifest } from './types';

function blob(text: string, mediaType: string = MediaType.ociLayerGzip): { descriptor: Descriptor; bytes: Buffer } {
  const bytes = Buffer.from(text);
  return { descriptor: { mediaType, digest: sha256Digest(bytes), size: bytes.length }, bytes };
}

function raw(value: object, mediaType: string): RawManifest {
  const bytes = canonicalJsonBytes(value);
  return { bytes, mediaType, digest: sha256Digest(bytes) };
}

/** Two images sharing a layer, under one index. */
function fixture() {
  const shared = blob('shared');
  const images = ['amd64', 'arm64'].map((architecture) => {
    const config = blob(`config ${architecture}`, MediaType.ociConfig);
    const own = blob(`layer ${architecture}`);
    const manifest = raw({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: config.descriptor, layers: [shared.descriptor, own.descriptor] }, MediaType.ociManifest);
    return { architecture, config, own, manifest };
  });
  const index = raw(
    {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: images.map((i) => ({ mediaType: MediaType.ociManifest, digest: i.manifest.digest, size: i.manifest.bytes.length, platform: { os: 'linux', architecture: i.architecture } })),
    },
    MediaType.ociIndex,
  );
  const blobs = new Map([shared, ...images.flatMap((i) => [i.config, i.own])].map((b) => [b.descriptor.digest, b.bytes]));
  const manifests = new Map([index, ...images.map((i) => i.manifest)].map((m) => [m.digest, m]));
  const source: ImageSource = {
    description: 'memory:',
    location: { registry: 'r.example', repository: 'src' },
    getManifest: async () => index,
    getManifestByDigest: async (digest) => manifests.get(digest)!,
    openBlob: async (d) => Readable.from([blobs.get(d.digest)!]),
  };
  return { source, index, images, shared };
}

function recordingDestination(options: { location?: RegistryLocation; has?: string[]; mountable?: boolean; failOn?: string } = {}) {
  const events: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const destination: ImageDestination = {
    description: 'recording:',
    location: options.location,
    hasBlob: async (d) => (options.has ?? []).includes(d.digest),
    mountBlob: options.mountable === undefined ? undefined : async (d) => (events.push(`mount ${d.digest}`), options.mountable!),
    putBlob: async (d, open) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      if (d.digest === options.failOn) throw new Error('upload failed');
      for await (const _ of await open());
      events.push(`blob ${d.digest}`);
    },
    putManifest: async (m, tag) => void events.push(`manifest ${m.digest}${tag ? ` ${tag}` : ''}`),
  };
  return { destination, events, maxInFlight: () => maxInFlight };
}

describe('copyImage', () => {
  it('copies each blob once, blobs before manifests, children before the index, the top manifest written under its tags', async () => {
    const { source, index, images, shared } = fixture();
    const { destination, events, maxInFlight } = recordingDestination();
    const result = await copyImage(source, destination, { tags: ['a', 'b'], concurrency: 2 });
    expect(result).toEqual({ digest: index.digest, mediaType: MediaType.ociIndex, blobs: { copied: 5, mounted: 0, skipped: 0 }, bytes: expect.any(Number) });
    expect(events.filter((e) => e === `blob ${shared.descriptor.digest}`)).toHaveLength(1);
    expect(maxInFlight()).toBe(2);
    for (const image of images) {
      const at = events.indexOf(`manifest ${image.manifest.digest}`);
      expect(at).toBeGreaterThan(events.indexOf(`blob ${image.own.descriptor.digest}`));
      expect(at).toBeGreaterThan(events.indexOf(`blob ${shared.descriptor.digest}`));
      expect(at).toBeLessThan(events.indexOf(`manifest ${index.digest} a`));
    }
    // The first tag's PUT stores the index itself: no separate PUT by digest.
    expect(events.slice(-2)).toEqual([`manifest ${index.digest} a`, `manifest ${index.digest} b`]);
    expect(events).not.toContain(`manifest ${index.digest}`);
  });

  it('selects one platform, whose manifest becomes the top level', async () => {
    const { source, images } = fixture();
    const { destination, events } = recordingDestination();
    const result = await copyImage(source, destination, { platform: { os: 'linux', architecture: 'arm64' }, tags: ['t'] });
    expect(result.digest).toBe(images[1].manifest.digest);
    expect(events.filter((e) => e.startsWith('manifest'))).toEqual([`manifest ${images[1].manifest.digest} t`]);
  });

  it('skips what the destination has, mounts on the same registry, and uploads when a mount is refused', async () => {
    const { source, shared } = fixture();
    const sameRegistry = { registry: 'r.example', repository: 'dst' };
    const mounted = recordingDestination({ location: sameRegistry, has: [shared.descriptor.digest], mountable: true });
    expect((await copyImage(source, mounted.destination)).blobs).toEqual({ copied: 0, mounted: 4, skipped: 1 });
    const refused = recordingDestination({ location: sameRegistry, mountable: false });
    expect((await copyImage(source, refused.destination)).blobs).toEqual({ copied: 5, mounted: 0, skipped: 0 });
    const elsewhere = recordingDestination({ location: { registry: 'other.example', repository: 'dst' }, mountable: true });
    const result = await copyImage(source, elsewhere.destination);
    expect(result.blobs.mounted).toBe(0);
    expect(elsewhere.events.some((e) => e.startsWith('mount'))).toBe(false);
  });

  it('writes no manifest when a blob fails, and reports the failure after every transfer stopped', async () => {
    const { source, images } = fixture();
    const { destination, events } = recordingDestination({ failOn: images[0].own.descriptor.digest });
    await expect(copyImage(source, destination)).rejects.toThrow('upload failed');
    expect(events.filter((e) => e === `manifest ${images[0].manifest.digest}`)).toEqual([]);
    expect(events.some((e) => e.startsWith('manifest sha256') && e.includes(images[0].manifest.digest))).toBe(false);
  });
});
