import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '@tessera/oci';
import { decompressStream, opaqueWhiteoutEntry, readLayerEntries, whiteoutEntry, writeLayer, type LayerEntry } from '../src/layer/index';

const repoRoot = path.resolve(__dirname, '../../..');

function sampleEntries(sourceFile: string): LayerEntry[] {
  const base = { uid: 0, gid: 0 };
  return [
    { ...base, path: 'app', type: 'directory', mode: 0o755, mtime: new Date('2024-05-05T10:00:00Z') },
    { ...base, path: 'app/main.js', type: 'file', mode: 0o644, content: Buffer.from('console.log(1)\n'), mtime: new Date('2024-05-05T10:00:01Z') },
    { ...base, path: 'app/data.bin', type: 'file', mode: 0o600, source: sourceFile, uid: 1000, gid: 1000 },
    { ...base, path: 'app/current', type: 'symlink', mode: 0o777, linkTarget: 'main.js' },
    { ...base, path: 'app/again.js', type: 'hardlink', mode: 0o644, linkTarget: 'app/main.js' },
    { ...base, path: 'app-b', type: 'directory', mode: 0o700 },
    { ...base, path: 'dev/console', type: 'char', mode: 0o600, devmajor: 5, devminor: 1 },
    { ...base, path: 'run/fifo', type: 'fifo', mode: 0o644 },
    { ...base, path: `deep/${'long-directory-name/'.repeat(8)}leaf.txt`, type: 'file', mode: 0o644, content: Buffer.from('deep') },
    { ...base, path: 'bin/ping', type: 'file', mode: 0o4755, content: Buffer.from('#!'), xattrs: { 'security.capability': Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0]) } },
    whiteoutEntry('etc/removed.conf'),
    opaqueWhiteoutEntry('var/cache'),
  ];
}

function shuffled<T>(items: T[], seed: number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

describe('writeLayer', () => {
  let work: string;
  let sourceFile: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'tessera-writer-'));
    sourceFile = path.join(work, 'data.bin');
    await writeFile(sourceFile, Buffer.alloc(70_000, 7));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('gives identical digests for the same entries in any order', async () => {
    const entries = sampleEntries(sourceFile);
    const digests = new Set<string>();
    for (const [index, order] of [entries, shuffled(entries, 1), shuffled(entries, 2), [...entries].reverse()].entries()) {
      const layer = await writeLayer(order, { compression: 'gzip', outputDir: path.join(work, `order-${index}`) });
      digests.add(`${layer.digest} ${layer.diffId}`);
    }
    expect(digests.size).toBe(1);
  });

  it('sorts parents first and puts hardlinks after their targets', async () => {
    const layer = await writeLayer(shuffled(sampleEntries(sourceFile), 3), { compression: 'none', outputDir: path.join(work, 'sorted') });
    const names = (await readLayerEntries(layer.path)).map((entry) => entry.name);
    expect(names.slice(0, 6)).toEqual(['app/', 'app/current', 'app/data.bin', 'app/main.js', 'app/again.js', 'app-b/']);
  });

  it('replaces or clamps mtimes', async () => {
    const fixed = new Date('2001-01-01T00:00:00Z');
    const replaced = await writeLayer(sampleEntries(sourceFile), { compression: 'none', outputDir: path.join(work, 'mtime'), mtime: fixed });
    expect(new Set((await readLayerEntries(replaced.path)).map((entry) => entry.mtime.getTime()))).toEqual(new Set([fixed.getTime()]));

    const clamp = new Date('2024-05-05T10:00:00Z');
    const clamped = await writeLayer(sampleEntries(sourceFile), { compression: 'none', outputDir: path.join(work, 'clamp'), clampMtime: clamp });
    const times = new Map((await readLayerEntries(clamped.path)).map((entry) => [entry.name, entry.mtime.getTime()]));
    expect(times.get('app/main.js')).toBe(clamp.getTime()); // 10:00:01 clamped down
    expect(times.get('app-b/')).toBe(0); // no mtime: the epoch
  });

  for (const compression of ['gzip', 'zstd', 'none'] as const) {
    it(`round-trips ${compression} through readLayerEntries with correct digests`, async () => {
      const layer = await writeLayer(sampleEntries(sourceFile), { compression, outputDir: path.join(work, compression) });
      const bytes = await readFile(layer.path);
      expect(layer.digest).toBe(sha256Digest(bytes));
      expect(layer.size).toBe(bytes.length);
      expect(path.basename(layer.path)).toBe(layer.digest.slice('sha256:'.length));
      const tar = Buffer.concat(await decompressStream(createReadStream(layer.path)).toArray());
      expect(layer.diffId).toBe(sha256Digest(tar));
      expect(layer.uncompressedSize).toBe(tar.length);

      const entries = await readLayerEntries(layer.path, { contentDigest: true });
      const byName = new Map(entries.map((entry) => [entry.name, entry]));
      expect(byName.get('app/data.bin')).toMatchObject({ size: 70_000, uid: 1000, gid: 1000, mode: 0o600, uname: '', gname: '', contentDigest: sha256Digest(Buffer.alloc(70_000, 7)) });
      expect(byName.get('app/current')).toMatchObject({ type: 'symlink', linkname: 'main.js' });
      expect(byName.get('app/again.js')).toMatchObject({ type: 'link', linkname: 'app/main.js' });
      expect(byName.get('dev/console')).toMatchObject({ type: 'character-device', devmajor: 5, devminor: 1 });
      expect(byName.get('run/fifo')?.type).toBe('fifo');
      expect(byName.get('bin/ping')).toMatchObject({ mode: 0o4755 });
      expect(byName.get('etc/.wh.removed.conf')?.size).toBe(0);
      expect(byName.has('var/cache/.wh..wh..opq')).toBe(true);
      expect(byName.has(`deep/${'long-directory-name/'.repeat(8)}leaf.txt`)).toBe(true);
    });
  }

  it('writes a gzip header without name or mtime and a fixed OS byte', async () => {
    const layer = await writeLayer(sampleEntries(sourceFile), { compression: 'gzip', outputDir: path.join(work, 'gzip-header') });
    const head = (await readFile(layer.path)).subarray(0, 10);
    expect([...head]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
  });

  it('matches the GNU tar listing, including PAX xattrs', async () => {
    const layer = await writeLayer(sampleEntries(sourceFile), { compression: 'gzip', outputDir: path.join(work, 'gnu'), mtime: new Date(0) });
    const listing = execFileSync('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-tvzf', layer.path], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    const lines = listing.trim().split('\n').map((line) => line.replace(/\s+/g, ' '));
    expect(lines).toContain('drwxr-xr-x 0/0 0 1970-01-01 00:00 app/');
    expect(lines).toContain('-rw------- 1000/1000 70000 1970-01-01 00:00 app/data.bin');
    expect(lines).toContain('lrwxrwxrwx 0/0 0 1970-01-01 00:00 app/current -> main.js');
    expect(lines).toContain('hrw-r--r-- 0/0 0 1970-01-01 00:00 app/again.js link to app/main.js');
    expect(lines).toContain('crw------- 0/0 5,1 1970-01-01 00:00 dev/console');
    expect(lines).toContain('-rwsr-xr-x* 0/0 2 1970-01-01 00:00 bin/ping');
    expect(lines.length).toBe(sampleEntries(sourceFile).length);
    const names = execFileSync('tar', ['-tzf', layer.path], { encoding: 'utf8' }).trim().split('\n');
    const ours = (await readLayerEntries(layer.path)).map((entry) => entry.name);
    expect(names).toEqual(ours);
  });

  it('fails cleanly, leaving no temp file, when a source changes size', async () => {
    const outputDir = path.join(work, 'changed');
    const entries: LayerEntry[] = [{ path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, source: sourceFile, size: 10 }];
    await expect(writeLayer(entries, { compression: 'gzip', outputDir })).rejects.toThrow(/changed size while being read/);
    expect(execFileSync('ls', ['-A', outputDir], { encoding: 'utf8' })).toBe('');
  });

  it('decompresses bzip2 and xz archives by magic bytes', async () => {
    const layer = await writeLayer(sampleEntries(sourceFile), { compression: 'none', outputDir: path.join(work, 'plain') });
    const expected = (await readLayerEntries(layer.path)).map((entry) => entry.name);
    for (const program of ['bzip2', 'xz']) {
      const compressed = path.join(work, `layer.${program}`);
      await writeFile(compressed, execFileSync(program, ['-c', layer.path]));
      expect((await readLayerEntries(compressed)).map((entry) => entry.name)).toEqual(expected);
    }
    const corrupt = path.join(work, 'corrupt.xz');
    await writeFile(corrupt, Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(100, 1)]));
    await expect(readLayerEntries(corrupt)).rejects.toThrow(/xz failed to decompress/);
  });

  it('writes a 1 GB file with bounded memory', async () => {
    execFileSync('npx', ['tsc', '-b', 'packages/oci', 'packages/builder'], { cwd: repoRoot, stdio: 'inherit' });
    const big = path.join(work, 'big.sparse');
    await truncate(await writeFile(big, '').then(() => big), 1024 ** 3);
    const script = `
      const { writeLayer } = require(${JSON.stringify(path.join(repoRoot, 'packages/builder/dist/index.js'))});
      writeLayer([{ path: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, source: ${JSON.stringify(big)} }],
        { compression: 'gzip', level: 1, outputDir: ${JSON.stringify(path.join(work, 'big'))} })
        .then((layer) => console.log(JSON.stringify({ layer, maxRssKb: process.resourceUsage().maxRSS })));`;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(child.status, child.stderr).toBe(0);
    const { layer, maxRssKb } = JSON.parse(child.stdout);
    expect(layer.uncompressedSize).toBe(1024 ** 3 + 512 + 1024);
    expect(maxRssKb).toBeLessThan(200 * 1024);
  }, 180_000);
});
