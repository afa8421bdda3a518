import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheKeyBuilder, DirectoryLayerCache, writeLayer } from '@tessera/builder';
import { ensureCliBuilt, tessera } from './cli-helpers';

let dir: string;

beforeAll(async () => {
  await ensureCliBuilt();
  dir = await mkdtemp(join(tmpdir(), 'tessera-cache-cli-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A cache directory with one entry per name. */
async function filledCache(name: string, keys: string[]): Promise<{ cacheDir: string; cache: DirectoryLayerCache; digests: string[] }> {
  const cacheDir = join(dir, name);
  const cache = new DirectoryLayerCache(cacheDir);
  const digests: string[] = [];
  for (const key of keys) {
    const content = Buffer.from(`content of ${key}`);
    const written = await writeLayer([{ path: key, type: 'file', mode: 0o644, uid: 0, gid: 0, content, size: content.length }], { compression: 'gzip', outputDir: join(dir, `${name}-work`) });
    await cache.put(new CacheKeyBuilder('cli').add(key).key(), { descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: written.digest, size: written.size }, diffId: written.diffId, path: written.path }, 'oci');
    digests.push(written.digest);
  }
  return { cacheDir, cache, digests };
}

describe('tessera cache verify', () => {
  it('reports a clean cache and exits 0', async () => {
    const { cacheDir } = await filledCache('clean', ['a', 'b']);
    const result = await tessera(['cache', 'verify', '--cache-dir', cacheDir]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`${cacheDir}: 2 blobs and 2 entries checked\ncache is clean\n`);
    expect(result.code).toBe(0);
  });

  it('names the problems of a corrupted cache and exits 1; --repair removes them and exits 0', async () => {
    const { cacheDir, cache, digests } = await filledCache('corrupted', ['a', 'b', 'c']);
    const blob = cache.store.path(digests[0]);
    await writeFile(blob, Buffer.concat([await readFile(blob), Buffer.from('x')]));
    const entryB = `${new CacheKeyBuilder('cli').add('b').key()}.json`;
    await writeFile(join(cacheDir, 'entries', entryB), 'not json');

    const result = await tessera(['cache', 'verify', '--cache-dir', cacheDir]);
    expect(result.code).toBe(1);
    const entryA = `${new CacheKeyBuilder('cli').add('a').key()}.json`;
    const lines = result.stdout.split('\n');
    expect(lines.slice(0, 2)).toEqual([`${cacheDir}: 3 blobs and 3 entries checked`, `corrupt blob ${digests[0]}`]);
    // Entries are listed in file-name order.
    expect(lines.slice(2, 4)).toEqual([`bad entry ${entryA}: blob ${digests[0]} is corrupt`, `bad entry ${entryB}: corrupt: not valid JSON`].sort());
    expect(lines.slice(4)).toEqual(['3 problems found; run with --repair to remove them', '']);

    const repaired = await tessera(['cache', 'verify', '--cache-dir', cacheDir, '--repair']);
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toContain(`corrupt blob ${digests[0]} (removed)`);
    expect(repaired.stdout).toContain('repaired 3 problems');
    expect(await readdir(join(cacheDir, 'entries'))).toEqual([`${new CacheKeyBuilder('cli').add('c').key()}.json`]);

    const after = await tessera(['cache', 'verify', '--cache-dir', cacheDir]);
    expect(after.code).toBe(0);
    expect(after.stdout).toBe(`${cacheDir}: 2 blobs and 1 entry checked\ncache is clean\n`);
  });

  it('fails on a missing directory, and explains usage mistakes', async () => {
    const missing = await tessera(['cache', 'verify', '--cache-dir', join(dir, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`cache directory ${join(dir, 'nope')} does not exist`);

    const noDir = await tessera(['cache', 'verify']);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toContain('needs --cache-dir DIR');

    const unknown = await tessera(['cache', 'prune', '--cache-dir', dir]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown cache action "prune"');

    const help = await tessera(['--help']);
    expect(help.stdout).toMatch(/\n {2}cache +Check \(and repair\) a local layer cache directory\n/);
  });
});
