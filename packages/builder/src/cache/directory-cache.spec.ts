import { mkdir, readFile, readdir, mkdtemp, rm, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layerMediaType, MediaType } from '@tessera/oci';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeLayer } from '../layer/writer';
import { DirectoryLayerCache } from './directory-cache';
import { CacheKeyBuilder } from './key';
import type { CacheableLayer } from './layer-cache';
import { TieredLayerCache } from './layer-cache';
import { verifyCacheDir } from './verify';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-dircache-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const keyOf = (name: string) => new CacheKeyBuilder('test').add(name).key();

async function layer(content: string): Promise<CacheableLayer> {
  const written = await writeLayer([{ path: 'hello.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from(content), size: content.length }], {
    compression: 'gzip',
    outputDir: join(dir, 'work'),
    mtime: new Date(0),
  });
  return { descriptor: { mediaType: layerMediaType('oci', 'gzip'), digest: written.digest, size: written.size }, diffId: written.diffId, path: written.path };
}

describe('DirectoryLayerCache', () => {
  it('stores a layer and returns its blob byte for byte', async () => {
    const cache = new DirectoryLayerCache(join(dir, 'cache'));
    const input = await layer('hello');
    const key = keyOf('a');
    expect(await cache.get(key, 'oci')).toBeUndefined();
    await cache.put(key, input, 'oci');
    const hit = await cache.get(key, 'oci');
    expect(hit).toMatchObject({ descriptor: input.descriptor, diffId: input.diffId });
    expect(hit!.path).toBe(join(dir, 'cache', 'blobs', 'sha256', input.descriptor.digest.slice(7)));
    expect(await readFile(hit!.path!)).toEqual(await readFile(input.path));
    expect(Date.now() - hit!.createdAt.getTime()).toBeLessThan(60_000);
    const entry = JSON.parse(await readFile(join(dir, 'cache', 'entries', `${key}.json`), 'utf8'));
    expect(entry).toMatchObject({ descriptor: input.descriptor, diffId: input.diffId, family: 'oci' });
    expect((await verifyCacheDir(join(dir, 'cache'))).clean).toBe(true);
  });

  it('gives the descriptor in the family asked for', async () => {
    const cache = new DirectoryLayerCache(join(dir, 'cache'));
    const input = await layer('family');
    await cache.put(keyOf('f'), input, 'oci');
    const hit = await cache.get(keyOf('f'), 'docker');
    expect(hit!.descriptor).toEqual({ ...input.descriptor, mediaType: MediaType.dockerLayerGzip });
  });

  it('overwrites an entry when the same key is put again', async () => {
    const cache = new DirectoryLayerCache(join(dir, 'cache'));
    await cache.put(keyOf('k'), await layer('one'), 'oci');
    const second = await layer('two');
    await cache.put(keyOf('k'), second, 'oci');
    expect((await cache.get(keyOf('k'), 'oci'))!.descriptor.digest).toBe(second.descriptor.digest);
    expect((await readdir(join(dir, 'cache', 'entries'))).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('treats an entry older than the TTL as a miss', async () => {
    let now = new Date('2026-01-01T00:00:00Z');
    const cache = new DirectoryLayerCache(join(dir, 'cache'), { ttlMs: 3_600_000, now: () => now });
    await cache.put(keyOf('t'), await layer('ttl'), 'oci');
    now = new Date('2026-01-01T00:59:00Z');
    expect(await cache.get(keyOf('t'), 'oci')).toBeDefined();
    now = new Date('2026-01-01T01:00:01Z');
    expect(await cache.get(keyOf('t'), 'oci')).toBeUndefined();
    // Without a TTL, it never expires.
    expect(await new DirectoryLayerCache(join(dir, 'cache')).get(keyOf('t'), 'oci')).toBeDefined();
  });

  it('treats an entry written long ago (old createdAt on disk) as a miss', async () => {
    const cache = new DirectoryLayerCache(join(dir, 'cache'), { ttlMs: 24 * 3_600_000 });
    await cache.put(keyOf('old'), await layer('old'), 'oci');
    const file = join(dir, 'cache', 'entries', `${keyOf('old')}.json`);
    const entry = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...entry, createdAt: new Date(Date.now() - 25 * 3_600_000).toISOString() }));
    expect(await cache.get(keyOf('old'), 'oci')).toBeUndefined();
  });

  it('treats a corrupt entry as a miss with a warning, and verify reports and repairs it', async () => {
    const warnings: string[] = [];
    const cache = new DirectoryLayerCache(join(dir, 'cache'), { onWarning: (m) => warnings.push(m) });
    await cache.put(keyOf('good'), await layer('good'), 'oci');
    await cache.put(keyOf('bad'), await layer('bad'), 'oci');
    await writeFile(join(dir, 'cache', 'entries', `${keyOf('bad')}.json`), '{"descriptor": {"mediaTy');
    expect(await cache.get(keyOf('bad'), 'oci')).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`entry ${keyOf('bad')} is unusable \\(not valid JSON\\)`))]);

    const report = await verifyCacheDir(join(dir, 'cache'));
    expect(report).toMatchObject({ clean: false, repaired: false, entriesChecked: 2, blobsChecked: 2, corruptBlobs: [] });
    expect(report.badEntries).toEqual([{ file: `${keyOf('bad')}.json`, reason: 'corrupt: not valid JSON' }]);

    const repaired = await verifyCacheDir(join(dir, 'cache'), { repair: true });
    expect(repaired).toMatchObject({ clean: true, repaired: true });
    expect(await verifyCacheDir(join(dir, 'cache'))).toMatchObject({ clean: true, entriesChecked: 1, badEntries: [] });
    expect(await cache.get(keyOf('good'), 'oci')).toBeDefined();
  });

  it('misses when the blob is gone, and verify names the entry', async () => {
    const cache = new DirectoryLayerCache(join(dir, 'cache'));
    const input = await layer('gone');
    await cache.put(keyOf('g'), input, 'oci');
    await cache.store.delete(input.descriptor.digest);
    expect(await cache.get(keyOf('g'), 'oci')).toBeUndefined();
    const report = await verifyCacheDir(join(dir, 'cache'));
    expect(report.badEntries).toEqual([{ file: `${keyOf('g')}.json`, reason: `blob ${input.descriptor.digest} is missing` }]);
  });

  it('verify finds a corrupt blob and the entries naming it, and old temporary files', async () => {
    const cache = new DirectoryLayerCache(join(dir, 'cache'));
    const input = await layer('corrupt');
    await cache.put(keyOf('c'), input, 'oci');
    const blob = cache.store.path(input.descriptor.digest);
    const bytes = await readFile(blob);
    bytes[bytes.length - 5] ^= 0xff;
    await writeFile(blob, bytes);
    const stale = join(dir, 'cache', 'entries', '.tmp-deadbeef-1');
    await writeFile(stale, '{}');
    await utimes(stale, new Date(0), new Date(0));
    const young = join(dir, 'cache', 'entries', '.tmp-cafe-2');
    await writeFile(young, '{}');

    const report = await verifyCacheDir(join(dir, 'cache'));
    expect(report.corruptBlobs).toEqual([input.descriptor.digest]);
    expect(report.badEntries).toEqual([{ file: `${keyOf('c')}.json`, reason: `blob ${input.descriptor.digest} is corrupt` }]);
    expect(report.staleTemporaryFiles).toEqual([stale]);

    await verifyCacheDir(join(dir, 'cache'), { repair: true });
    expect((await readdir(join(dir, 'cache', 'entries'))).sort()).toEqual(['.tmp-cafe-2']);
    expect(await cache.store.list()).toEqual([]);
    expect((await verifyCacheDir(join(dir, 'cache'))).clean).toBe(true);
  });

  it('treats an unreadable entry as a miss with a warning', async () => {
    const warnings: string[] = [];
    const cache = new DirectoryLayerCache(join(dir, 'cache'), { onWarning: (m) => warnings.push(m) });
    await mkdir(join(dir, 'cache', 'entries', `${keyOf('dir')}.json`), { recursive: true });
    expect(await cache.get(keyOf('dir'), 'oci')).toBeUndefined();
    expect(warnings).toEqual([expect.stringContaining(`cannot read entry ${keyOf('dir')} (EISDIR`)]);
  });

  it('rejects a key that could leave the entries directory', async () => {
    const cache = new DirectoryLayerCache(join(dir, 'cache'));
    await expect(cache.get('../../x', 'oci')).rejects.toThrow(/not a cache key/);
  });
});

describe('TieredLayerCache', () => {
  it('returns the first hit in order and writes to every cache', async () => {
    const first = new DirectoryLayerCache(join(dir, 'one'));
    const second = new DirectoryLayerCache(join(dir, 'two'));
    const tiered = new TieredLayerCache([first, second]);
    const onlySecond = await layer('second');
    await second.put(keyOf('s'), onlySecond, 'oci');
    expect((await tiered.get(keyOf('s'), 'oci'))!.path).toBe(second.store.path(onlySecond.descriptor.digest));

    const both = await layer('both');
    await tiered.put(keyOf('b'), both, 'oci');
    expect((await first.get(keyOf('b'), 'oci'))!.path).toBe(first.store.path(both.descriptor.digest));
    expect(await second.get(keyOf('b'), 'oci')).toBeDefined();
    expect(await tiered.get(keyOf('none'), 'oci')).toBeUndefined();
  });
});
