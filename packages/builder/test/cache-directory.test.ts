import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryLayerCache, CacheKeyBuilder, verifyCacheDir } from '@tessera/builder';
import { ensureCliBuilt, repoRoot } from './cli-helpers';

/**
 * Each child writes a layer per key, for keys overlapping with the other children (the same key always gets
 * the same content, as with a deterministic layer writer), into one cache directory, many times over.
 */
const CHILD = `
const { DirectoryLayerCache, CacheKeyBuilder, writeLayer } = require(process.env.BUILDER_DIST);
const { join } = require('node:path');
(async () => {
  const [cacheDir, workDir, first, count, rounds] = process.argv.slice(1);
  const cache = new DirectoryLayerCache(cacheDir);
  for (let round = 0; round < Number(rounds); round++) {
    await Promise.all(Array.from({ length: Number(count) }, async (_, i) => {
      const n = Number(first) + i;
      const content = Buffer.from('layer ' + n + '\\n'.repeat(n * 1000));
      const written = await writeLayer([{ path: 'f' + n, type: 'file', mode: 0o644, uid: 0, gid: 0, content, size: content.length }],
        { compression: 'gzip', outputDir: join(workDir, String(round)), mtime: new Date(0) });
      const key = new CacheKeyBuilder('multi').add(String(n)).key();
      await cache.put(key, { descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: written.digest, size: written.size }, diffId: written.diffId, path: written.path }, 'oci');
      const hit = await cache.get(key, 'oci');
      if (!hit || hit.descriptor.digest !== written.digest) throw new Error('read back a different entry for ' + n);
    }));
  }
})().catch((e) => { console.error(e); process.exit(1); });
`;

function child(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['-e', CHILD, ...args], {
      env: { ...process.env, BUILDER_DIST: join(repoRoot, 'packages/builder/dist/index.js') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('error', reject);
    proc.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('DirectoryLayerCache shared by processes', () => {
  let dir: string;
  beforeAll(async () => {
    await ensureCliBuilt();
    dir = await mkdtemp(join(tmpdir(), 'tessera-cache-multi-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('four processes writing overlapping keys at once leave a clean, complete cache', async () => {
    const cacheDir = join(dir, 'cache');
    // Children 0..3 write keys [0,12), [4,16), [8,20), [12,24): every key but the ends is written by two or three.
    const results = await Promise.all([0, 1, 2, 3].map((i) => child([cacheDir, join(dir, `work-${i}`), String(i * 4), '12', '3'])));
    for (const r of results) expect(r, r.stderr).toMatchObject({ code: 0 });

    const report = await verifyCacheDir(cacheDir);
    expect(report).toMatchObject({ clean: true, blobsChecked: 24, entriesChecked: 24, corruptBlobs: [], badEntries: [], staleTemporaryFiles: [] });
    expect((await readdir(join(cacheDir, 'entries'))).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect((await readdir(join(cacheDir, 'blobs', 'sha256'))).filter((n) => n.startsWith('.tmp-'))).toEqual([]);

    const cache = new DirectoryLayerCache(cacheDir);
    for (let n = 0; n < 24; n++) {
      const hit = await cache.get(new CacheKeyBuilder('multi').add(String(n)).key(), 'oci');
      expect(hit, `key ${n}`).toBeDefined();
    }
  });
});
