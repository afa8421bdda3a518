import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LayerEntry } from '../layer/entry';
import { FileHashMemo, hashEntries, hashFile, WalkKey } from './hash';
import { createIgnoreMatcher } from './ignore';
import { resolveCopySources } from './sources';
import { expectEveryEditChangesKey } from '../../test/tree-edits';

describe('content hashing', () => {
  let dirA: string;
  let dirB: string;
  beforeAll(async () => {
    dirA = await mkdtemp(join(tmpdir(), 'tessera-hash-a-'));
    dirB = await mkdtemp(join(tmpdir(), 'tessera-hash-b-'));
    for (const dir of [dirA, dirB]) await writeFile(join(dir, 'main.js'), 'console.log(1)\n');
    await writeFile(join(dirB, 'other.js'), 'console.log(2)\n');
  });
  afterAll(async () => {
    await rm(dirA, { recursive: true, force: true });
    await rm(dirB, { recursive: true, force: true });
  });

  const fileEntry = (dir: string, path: string, name = 'main.js', extra: Partial<LayerEntry> = {}): LayerEntry => ({
    path,
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    source: join(dir, name),
    mtime: new Date(),
    ...extra,
  });

  it('hashes file content as 16 hex digits', async () => {
    expect(await hashFile(join(dirA, 'main.js'))).toMatch(/^[0-9a-f]{16}$/);
    expect(await hashFile(join(dirA, 'main.js'))).toBe(await hashFile(join(dirB, 'main.js')));
    expect(await hashFile(join(dirA, 'main.js'))).not.toBe(await hashFile(join(dirB, 'other.js')));
  });

  it('is stable across locations, mtimes and entry order', async () => {
    const dir: LayerEntry = { path: 'app', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: new Date(1) };
    const a = await hashEntries([dir, fileEntry(dirA, 'app/main.js')]);
    const b = await hashEntries([fileEntry(dirB, 'app/main.js', 'main.js', { mtime: new Date(0) }), { ...dir, mtime: new Date(5) }]);
    expect(a).toBe(b);
  });

  it('changes with the path, mode, owner, content, link target and in-memory content', async () => {
    const base = await hashEntries([fileEntry(dirA, 'app/main.js')]);
    const variants = [
      [fileEntry(dirA, 'app/renamed.js')],
      [fileEntry(dirA, 'app/main.js', 'main.js', { mode: 0o755 })],
      [fileEntry(dirA, 'app/main.js', 'main.js', { uid: 1 })],
      [fileEntry(dirA, 'app/main.js', 'main.js', { gid: 1 })],
      [fileEntry(dirB, 'app/main.js', 'other.js')],
      [{ path: 'app/main.js', type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkTarget: 'x' } as LayerEntry],
      [{ path: 'app/main.js', type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('console.log(3)\n') } as LayerEntry],
    ];
    const hashes = await Promise.all(variants.map((entries) => hashEntries(entries)));
    expect(new Set([base, ...hashes]).size).toBe(variants.length + 1);
    // Same bytes from disk or from memory hash the same.
    expect(await hashEntries([{ path: 'app/main.js', type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('console.log(1)\n') }])).toBe(base);
  });

  it('frames parts so that shifting bytes between fields changes the hash', async () => {
    const link = (path: string, linkTarget: string): LayerEntry => ({ path, type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkTarget });
    expect(await hashEntries([link('ab', 'c')])).not.toBe(await hashEntries([link('a', 'bc')]));
    expect(await hashEntries([link('a', 'b'), link('c', 'd')])).not.toBe(await hashEntries([link('a', 'bc'), link('', 'd')]));
  });
});

describe('FileHashMemo', () => {
  it('reuses a remembered hash while the stat is unchanged, and rehashes a rewritten file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-memo-'));
    const file = join(dir, 'a.txt');
    const memoFile = join(dir, 'memo.json');
    await writeFile(file, 'one');
    const first = await FileHashMemo.load(memoFile);
    const real = await first.hash(file);
    expect(real).toBe(await hashFile(file));
    await first.save();
    // Plant a different hash under the same stat: a memo hit must return it without reading the file.
    const stored = JSON.parse(await readFile(memoFile, 'utf8')) as Record<string, string>;
    expect(Object.keys(stored)).toEqual([file]);
    const signature = stored[file]!.split(' ')[0];
    await writeFile(memoFile, JSON.stringify({ [file]: `${signature} planted` }));
    expect(await (await FileHashMemo.load(memoFile)).hash(file)).toBe('planted');
    // Rewriting the file changes its ctime (and mtime), so the memo misses and the file is hashed again.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writeFile(file, 'two');
    expect(await (await FileHashMemo.load(memoFile)).hash(file)).toBe(await hashFile(file));
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the hashes of files a build did not look at when it saves', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-memo-'));
    const [a, b] = [join(dir, 'a.txt'), join(dir, 'b.txt')];
    const memoFile = join(dir, 'memo.json');
    await writeFile(a, 'a');
    await writeFile(b, 'b');
    const first = await FileHashMemo.load(memoFile);
    await first.hash(a);
    await first.hash(b);
    await first.save();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writeFile(a, 'a2');
    const second = await FileHashMemo.load(memoFile);
    await second.hash(a);
    await second.save();
    const stored = JSON.parse(await readFile(memoFile, 'utf8')) as Record<string, string>;
    expect(Object.keys(stored).sort()).toEqual([a, b]);
    expect(stored[a]!.split(' ')[1]).toBe(await hashFile(a));
    await rm(dir, { recursive: true, force: true });
  });

  it('remembers walk results across loads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-memo-'));
    const memoFile = join(dir, 'memo.json');
    const first = await FileHashMemo.load(memoFile);
    expect(first.recallWalk('k')).toBeUndefined();
    first.rememberWalk('k', 'entries-hash');
    await first.save();
    expect((await FileHashMemo.load(memoFile)).recallWalk('k')).toBe('entries-hash');
    await rm(dir, { recursive: true, force: true });
  });
});

describe('WalkKey', () => {
  const keyOf = async (root: string, context = ['ctx']) => {
    const key = await WalkKey.start();
    const sources = await resolveCopySources({ root }, ['src'], { ignore: createIgnoreMatcher([]), visit: (file, index) => key.file(file, index) });
    expect(sources[0]!.contents).toBeUndefined();
    return key.finish(sources, context);
  };

  it('is stable for an untouched tree and changes with what decides the entries', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tessera-walk-'));
    await mkdir(join(root, 'src'));
    await writeFile(join(root, 'src/x.txt'), 'x');
    expect(await keyOf(root, ['other'])).not.toBe(await keyOf(root));
    await expectEveryEditChangesKey(join(root, 'src'), () => keyOf(root));
    await rm(root, { recursive: true, force: true });
  });
});
