import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractLayer, opaqueWhiteoutEntry, whiteoutEntry, writeLayer, type LayerEntry } from '../src/layer/index';

const d = (p: string, mode = 0o755): LayerEntry => ({ path: p, type: 'directory', mode, uid: 0, gid: 0 });
const f = (p: string, text: string, mode = 0o644): LayerEntry => ({ path: p, type: 'file', mode, uid: 0, gid: 0, content: Buffer.from(text) });
const s = (p: string, target: string): LayerEntry => ({ path: p, type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkTarget: target });

const lower: LayerEntry[] = [
  d('etc'),
  f('etc/a.conf', 'a'),
  f('etc/b.conf', 'b'),
  d('var'),
  d('var/cache'),
  f('var/cache/x', 'x'),
  d('var/cache/sub'),
  f('var/cache/sub/y', 'y'),
  d('usr'),
  d('usr/bin'),
  f('usr/bin/tool', 'tool', 0o755),
  s('tool', 'usr/bin/tool'),
];
const upper: LayerEntry[] = [
  whiteoutEntry('etc/a.conf'),
  d('var/cache', 0o750),
  opaqueWhiteoutEntry('var/cache'),
  f('var/cache/new', 'new'),
  d('var/cache/sub'),
  f('var/cache/sub/z', 'z'),
  whiteoutEntry('usr/bin'),
  f('usr/bin2/tool', 'tool2', 0o755),
  whiteoutEntry('tool'),
  s('tool2', 'usr/bin2/tool'),
];

async function tree(root: string): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (directory: string) => {
    for (const name of (await readdir(directory)).sort()) {
      const full = path.join(directory, name);
      const stats = await lstat(full);
      const relative = path.relative(root, full);
      if (stats.isDirectory()) {
        lines.push(`d ${(stats.mode & 0o7777).toString(8)} ${relative}`);
        await walk(full);
      } else if (stats.isSymbolicLink()) lines.push(`l ${relative} -> ${await readlink(full)}`);
      else lines.push(`f ${(stats.mode & 0o7777).toString(8)} ${relative} ${await readFile(full, 'utf8')}`);
    }
  };
  await walk(root);
  return lines;
}

describe('whiteouts across layers', () => {
  let work: string;
  let lowerPath: string;
  let upperPath: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'tessera-whiteout-'));
    lowerPath = (await writeLayer(lower, { compression: 'none', outputDir: work })).path;
    upperPath = (await writeLayer(upper, { compression: 'none', outputDir: work })).path;
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('applies .wh. and opaque whiteouts of the upper layer to the lower one', async () => {
    const root = path.join(work, 'ours');
    await mkdir(root);
    await extractLayer(createReadStream(lowerPath), root);
    await extractLayer(createReadStream(upperPath), root);
    expect(await tree(root)).toEqual([
      'd 755 etc',
      'f 644 etc/b.conf b',
      'l tool2 -> usr/bin2/tool',
      'd 755 usr',
      'd 755 usr/bin2',
      'f 755 usr/bin2/tool tool2',
      'd 755 var',
      'd 750 var/cache',
      'f 644 var/cache/new new',
      'd 755 var/cache/sub',
      'f 644 var/cache/sub/z z',
    ]);
  });

  it('gives the same tree as umoci unpack of the same two layers', async () => {
    const layout = path.join(work, 'layout');
    const bundle = path.join(work, 'bundle');
    execFileSync('umoci', ['init', '--layout', layout]);
    execFileSync('umoci', ['new', '--image', `${layout}:t`]);
    execFileSync('umoci', ['raw', 'add-layer', '--image', `${layout}:t`, lowerPath]);
    execFileSync('umoci', ['raw', 'add-layer', '--image', `${layout}:t`, upperPath]);
    execFileSync('umoci', ['unpack', '--image', `${layout}:t`, bundle]);

    const ours = path.join(work, 'ours-again');
    await mkdir(ours);
    await extractLayer(createReadStream(lowerPath), ours);
    await extractLayer(createReadStream(upperPath), ours);
    expect(await tree(ours)).toEqual(await tree(path.join(bundle, 'rootfs')));
  });
});
