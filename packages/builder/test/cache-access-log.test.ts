import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BlobStore, RegistryClient, registryImageSource, type ImageManifest, type ImageSource } from '@tessera/oci';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachingImageSource, CacheKeyBuilder, RegistryLayerCache, writeLayer } from '@tessera/builder';
import { pushBusyboxBase } from '../../../tools/images/index';
import { startRegistry, type RunningRegistry } from '../../../tools/registry/registry';

let registry: RunningRegistry;
let client: RegistryClient;
let dir: string;

beforeAll(async () => {
  registry = await startRegistry();
  client = new RegistryClient({ insecureRegistries: [registry.host] });
  dir = await mkdtemp(join(tmpdir(), 'tessera-cache-log-'));
});
afterAll(async () => {
  client.close();
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Access-log lines of requests, as `METHOD URI`, in the order the registry served them. */
function requests(): string[] {
  return [...registry.log().matchAll(/"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP\/1\.1" (\d+)/g)].map((m) => `${m[1]} ${m[2]}`);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('cachingImageSource', () => {
  let base: ImageSource;
  let layers: ImageManifest['layers'];

  beforeAll(async () => {
    await pushBusyboxBase(registry.host, 'base/busybox');
    base = registryImageSource(client, { registry: registry.host, repository: 'base/busybox', tag: 'latest' });
    layers = (JSON.parse((await base.getManifest()).bytes.toString('utf8')) as ImageManifest).layers;
    expect(layers.length).toBeGreaterThan(0);
  });

  it('downloads a base blob once; the second read is local and makes no GET', async () => {
    const store = new BlobStore(join(dir, 'warm'));
    const layer = layers[0];
    const gets = () => requests().filter((r) => r === `GET /v2/base/busybox/blobs/${layer.digest}`).length;
    const before = gets();

    const first = await readAll(await cachingImageSource(base, store).openBlob(layer));
    expect(gets()).toBe(before + 1);
    expect(await store.has({ digest: layer.digest, size: layer.size })).toBe(true);

    // A new source over the same store, as in the next build.
    const second = await readAll(await cachingImageSource(base, store).openBlob(layer));
    expect(second).toEqual(first);
    expect(second.length).toBe(layer.size);
    expect(gets()).toBe(before + 1);
  });

  it('stores nothing when the download fails', async () => {
    const store = new BlobStore(join(dir, 'failed'));
    const layer = layers[0];
    // The registry sends the real blob, which is one byte short of what this descriptor promises.
    const wrong = { ...layer, size: layer.size + 1 };
    await expect(readAll(await cachingImageSource(base, store).openBlob(wrong))).rejects.toThrow(/does not match/);
    expect(await store.list()).toEqual([]);
    expect(await readdir(store.directory)).toEqual([]); // the store began a copy, and removed it
  });

  it('stores nothing when the connection breaks halfway', async () => {
    const store = new BlobStore(join(dir, 'broken'));
    const layer = layers[0];
    const breaking: ImageSource = {
      ...base,
      async openBlob(descriptor) {
        const upstream = await base.openBlob(descriptor);
        let sent = 0;
        return upstream.pipe(
          new (await import('node:stream')).Transform({
            transform(chunk: Buffer, _e, done) {
              sent += chunk.length;
              done(sent > descriptor.size / 2 ? new Error('connection reset') : null, chunk);
            },
          }),
        );
      },
    };
    await expect(readAll(await cachingImageSource(breaking, store).openBlob(layer))).rejects.toThrow(/connection reset/);
    expect(await readdir(store.directory)).toEqual([]); // the store began a copy, and removed it
  });
});

describe('RegistryLayerCache push order', () => {
  it('pushes the layer and config before the tagged manifest', async () => {
    const cache = new RegistryLayerCache(client, { registry: registry.host, repository: 'cache/order' });
    const content = Buffer.from('ordered');
    const written = await writeLayer([{ path: 'x', type: 'file', mode: 0o644, uid: 0, gid: 0, content, size: content.length }], { compression: 'gzip', outputDir: join(dir, 'order') });
    const key = new CacheKeyBuilder('order').add('x').key();
    const start = requests().length;
    await cache.put(key, { descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: written.digest, size: written.size }, diffId: written.diffId, path: written.path }, 'oci');
    const writes = requests().slice(start).filter((r) => r.startsWith('PUT '));
    expect(writes).toHaveLength(3);
    expect(writes[0]).toContain(`digest=${encodeURIComponent(written.digest)}`);
    expect(writes[1]).toMatch(/\/blobs\/uploads\/.*digest=sha256%3A/);
    expect(writes[2]).toBe(`PUT /v2/cache/order/manifests/${key}`);

    // Putting it again does not upload the layer again (only a new config: the entry's time changed).
    const again = requests().length;
    await cache.put(key, { descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: written.digest, size: written.size }, diffId: written.diffId, path: written.path }, 'oci');
    const uploads = requests().slice(again).filter((r) => r.startsWith('PUT ') && r.includes('/blobs/uploads/'));
    expect(uploads).toHaveLength(1);
    expect(uploads[0]).not.toContain(encodeURIComponent(written.digest));
  });
});
