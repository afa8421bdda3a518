import { copyFile, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pullAndUnpack, pushBusyboxBase, runInRootfs, skopeoInspect } from '../../tools/images/index';
import { ensureCliBuilt, incompleteTags, startTessera, tessera, writeRandomFile } from './helpers';

const registry = inject('registryHost');
const BUILDS = 8;
const COMMON_MTIME = new Date('2026-01-01T00:00:00Z');

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tessera-concurrency-'));
  await ensureCliBuilt();
  await pushBusyboxBase(registry, 'reliability/busybox');
}, 180_000);

afterAll(() => rm(tmp, { recursive: true, force: true }));

describe(`${BUILDS} builds at once sharing one --cache-dir and one --cache-repo`, () => {
  it('all succeed with correct images, twice (cold, then warm), and the cache verifies clean', async () => {
    const cacheDir = join(tmp, 'cache');
    const cacheRepo = `${registry}/reliability/concurrency-cache-${Date.now()}`;
    const common = join(tmp, 'common.bin');
    await writeRandomFile(common, 16 << 20);
    const contexts: string[] = [];
    for (let i = 0; i < BUILDS; i++) {
      const context = await mkdtemp(join(tmp, `ctx-${i}-`));
      // The same common file (one shared layer digest) and a file of each build's own. The copies get
      // one mtime: layers keep file mtimes, and copies made across a second boundary would differ.
      await copyFile(common, join(context, 'common.bin'));
      await utimes(join(context, 'common.bin'), COMMON_MTIME, COMMON_MTIME);
      await writeFile(join(context, 'own.txt'), `build ${i}\n`);
      await writeFile(
        join(context, 'Dockerfile'),
        `FROM ${registry}/reliability/busybox\nCOPY common.bin /common.bin\nCOPY own.txt /own.txt\nRUN cat /own.txt > /result && wc -c < /common.bin >> /result\n`,
      );
      contexts.push(context);
    }
    const repository = (i: number) => `reliability/concurrency-${i}`;
    const buildAll = async () => {
      const procs = contexts.map((context, i) =>
        startTessera([
          'build', '--context', context, '--cache=true', '--cache-dir', cacheDir, '--cache-repo', cacheRepo, '--cache-copy-layers',
          '--destination', `${registry}/${repository(i)}:v1`, '--insecure-registry', registry,
        ]),
      );
      return Promise.all(procs.map((p) => p.result));
    };

    const digests: string[][] = [];
    for (const round of ['cold', 'warm']) {
      const started = Date.now();
      const results = await buildAll();
      console.log(`${round}: ${BUILDS} concurrent builds in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      results.forEach((r, i) => expect(r.code, `${round} build ${i}: ${r.stderr}`).toBe(0));
      const layers: string[] = [];
      const commonLayers = new Set<string>();
      for (let i = 0; i < BUILDS; i++) {
        const manifest = await skopeoInspect(`${registry}/${repository(i)}:v1`, 'raw');
        expect(manifest.layers).toHaveLength(4);
        commonLayers.add(manifest.layers[1].digest);
        layers.push(manifest.layers.map((l: { digest: string }) => l.digest).join(','));
        expect(await incompleteTags(registry, repository(i))).toEqual([]);
      }
      expect(commonLayers.size).toBe(1);
      digests.push(layers);
      // Not a vacuous check: the cold round does log its misses.
      if (round === 'cold') expect(results.some((r) => /cache miss/.test(r.stderr))).toBe(true);
      if (round === 'warm') results.forEach((r, i) => expect(r.stderr, `warm build ${i}`).not.toMatch(/cache miss/));
      const verify = await tessera(['cache', 'verify', '--cache-dir', cacheDir]);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    }
    // The warm round takes every layer from the cache: the same layers as the cold round.
    expect(digests[1]).toEqual(digests[0]);
    expect(new Set(digests[0]).size).toBe(BUILDS);

    const image = await pullAndUnpack(`${registry}/${repository(5)}:v1`);
    try {
      const { stdout } = await runInRootfs(image.rootfs, ['/bin/cat', '/result']);
      expect(stdout).toBe(`build 5\n${16 << 20}\n`);
    } finally {
      await image.remove();
    }
  }, 600_000);
});
