import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  canonicalJsonBytes,
  copyImage,
  layerMediaType,
  MediaType,
  RegistryClient,
  registryImageDestination,
  sha256Digest,
  type MediaFamily,
  type RegistryLocation,
} from '@tessera/oci';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BuiltImage, CacheKeyBuilder, DirectoryLayerCache, RegistryLayerCache, TieredLayerCache, writeLayer, type CacheableLayer } from '@tessera/builder';
import { skopeoInspect } from '../../../tools/images/index';

let host: string;
let client: RegistryClient;
let dir: string;

beforeAll(async () => {
  host = inject('registryHost');
  client = new RegistryClient({ insecureRegistries: [host] });
  dir = await mkdtemp(join(tmpdir(), 'tessera-regcache-'));
});
afterAll(async () => {
  client.close();
  await rm(dir, { recursive: true, force: true });
});

const repo = (name: string): RegistryLocation => ({ registry: host, repository: `tessera-test/cache-${name}-${randomBytes(4).toString('hex')}` });
const keyOf = (name: string) => new CacheKeyBuilder('registry-test').add(name, randomBytes(8)).key();

async function layer(family: MediaFamily = 'oci'): Promise<CacheableLayer> {
  const content = randomBytes(3000);
  const written = await writeLayer([{ path: 'data.bin', type: 'file', mode: 0o644, uid: 0, gid: 0, content, size: content.length }], {
    compression: 'gzip',
    outputDir: join(dir, 'layers'),
    mtime: new Date(0),
  });
  return { descriptor: { mediaType: layerMediaType(family, 'gzip'), digest: written.digest, size: written.size }, diffId: written.diffId, path: written.path };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('RegistryLayerCache', () => {
  it.each<[MediaFamily, string, string]>([
    ['oci', MediaType.ociManifest, MediaType.ociConfig],
    ['docker', MediaType.dockerManifest, MediaType.dockerConfig],
  ])('puts and gets an entry in the %s family', async (family, manifestType, configType) => {
    const location = repo(family);
    const cache = new RegistryLayerCache(client, location);
    const input = await layer(family);
    const key = keyOf(family);
    await cache.put(key, input, family);

    const hit = await cache.get(key, family);
    expect(hit).toMatchObject({ descriptor: input.descriptor, diffId: input.diffId });
    expect(Math.abs(Date.now() - hit!.createdAt.getTime())).toBeLessThan(60_000);
    expect(hit!.path).toBeUndefined();
    expect(hit!.source!.location).toEqual(location);
    expect(await readAll(await hit!.source!.openBlob(hit!.descriptor))).toEqual(await readFile(input.path));

    // The entry is an ordinary one-layer image that other tools read.
    const ref = `${location.registry}/${location.repository}:${key}`;
    const manifest = await skopeoInspect(ref, 'raw');
    expect(manifest).toMatchObject({ mediaType: manifestType, config: { mediaType: configType }, layers: [input.descriptor] });
    const config = await skopeoInspect(ref, 'config');
    expect(config.rootfs).toEqual({ type: 'layers', diff_ids: [input.diffId] });
  });

  it('answers in the family of the image being built', async () => {
    const cache = new RegistryLayerCache(client, repo('family'));
    const input = await layer('docker');
    const key = keyOf('family');
    await cache.put(key, input, 'docker');
    expect((await cache.get(key, 'oci'))!.descriptor).toEqual({ ...input.descriptor, mediaType: MediaType.ociLayerGzip });
  });

  it('misses an unknown key, in an existing or an unknown repository, without a warning', async () => {
    const warnings: string[] = [];
    const location = repo('miss');
    const cache = new RegistryLayerCache(client, location, { onWarning: (m) => warnings.push(m) });
    expect(await cache.get(keyOf('nothing'), 'oci')).toBeUndefined();
    await cache.put(keyOf('something'), await layer(), 'oci');
    expect(await cache.get(keyOf('nothing'), 'oci')).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it('does not push when read-only (--no-push-cache), but still reads', async () => {
    const location = repo('readonly');
    const readOnly = new RegistryLayerCache(client, location, { push: false });
    const input = await layer();
    const key = keyOf('readonly');
    await readOnly.put(key, input, 'oci');
    expect(await client.headManifest({ ...location, tag: key })).toBeUndefined();
    expect(await client.headBlob(location, input.descriptor.digest)).toBeUndefined();
    expect(await readOnly.get(key, 'oci')).toBeUndefined();

    await new RegistryLayerCache(client, location).put(key, input, 'oci');
    expect(await readOnly.get(key, 'oci')).toMatchObject({ descriptor: input.descriptor, diffId: input.diffId });
  });

  it('treats an entry older than the TTL as a miss', async () => {
    const location = repo('ttl');
    const key = keyOf('ttl');
    const twoDaysAgo = new Date(Date.now() - 48 * 3_600_000);
    await new RegistryLayerCache(client, location, { now: () => twoDaysAgo }).put(key, await layer(), 'oci');
    expect(await new RegistryLayerCache(client, location, { ttlMs: 24 * 3_600_000 }).get(key, 'oci')).toBeUndefined();
    expect(await new RegistryLayerCache(client, location, { ttlMs: 72 * 3_600_000 }).get(key, 'oci')).toBeDefined();
    expect((await new RegistryLayerCache(client, location).get(key, 'oci'))!.createdAt).toEqual(twoDaysAgo);
  });

  it('treats a tag that is not a cache entry as a miss with a warning', async () => {
    const location = repo('foreign');
    const key = keyOf('foreign');
    const blobs = [randomBytes(10), randomBytes(10)];
    const layers = blobs.map((b) => ({ mediaType: MediaType.ociLayerGzip, digest: sha256Digest(b), size: b.length }));
    const configBytes = canonicalJsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
    const config = { mediaType: MediaType.ociConfig, digest: sha256Digest(configBytes), size: configBytes.length };
    for (const [d, b] of [...layers.map((l, i) => [l, blobs[i]] as const), [config, configBytes] as const]) await client.uploadBlob(location, d, async () => Readable.from([b]));
    await client.putManifest({ ...location, tag: key }, { mediaType: MediaType.ociManifest, bytes: canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers }) });

    const warnings: string[] = [];
    expect(await new RegistryLayerCache(client, location, { onWarning: (m) => warnings.push(m) }).get(key, 'oci')).toBeUndefined();
    expect(warnings).toEqual([expect.stringContaining('an entry has exactly one layer')]);
  });

  it('gives a hit that a push to another repository of the registry mounts instead of uploading', async () => {
    const cacheRepo = repo('mount-cache');
    const cache = new RegistryLayerCache(client, cacheRepo);
    const input = await layer();
    const key = keyOf('mount');
    await cache.put(key, input, 'oci');
    const hit = (await cache.get(key, 'oci'))!;

    const image = new BuiltImage([hit], { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [hit.diffId] } }, 'oci');
    const target = repo('mount-target');
    const result = await copyImage(image, registryImageDestination(client, target), { tags: ['latest'] });
    expect(result.blobs).toEqual({ mounted: 1, copied: 1, skipped: 0 }); // the layer is mounted; only the config moves
    expect((await skopeoInspect(`${target.registry}/${target.repository}:latest`, 'raw')).layers).toEqual([input.descriptor]);
  });

  it('works behind a directory cache in a TieredLayerCache', async () => {
    const location = repo('tiered');
    const directory = new DirectoryLayerCache(join(dir, 'tiered'));
    const registry = new RegistryLayerCache(client, location);
    const tiered = new TieredLayerCache([directory, registry]);
    const input = await layer();
    const key = keyOf('tiered');
    await registry.put(key, input, 'oci');
    expect((await tiered.get(key, 'oci'))!.source!.location).toEqual(location);

    const both = keyOf('both');
    await tiered.put(both, input, 'oci');
    expect((await tiered.get(both, 'oci'))!.path).toBe(directory.store.path(input.descriptor.digest));
    expect(await registry.get(both, 'oci')).toBeDefined();
  });
});
