import { chmod, mkdir, mkdtemp, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createIgnoreMatcher } from './ignore';
import { findPrunes, isListedTree, LISTED_TREE_MIN_SUBDIRECTORIES, listedTreeDigest } from './listing';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tessera-listing-'));
});
afterEach(() => rm(root, { recursive: true, force: true }));

describe('findPrunes', () => {
  it('turns `**/name` patterns into names to prune, and refuses what find cannot mean the same way', () => {
    expect(findPrunes(createIgnoreMatcher([]), 'node_modules')).toEqual([]);
    // Patterns that cannot reach below the directory do not matter.
    expect(findPrunes(createIgnoreMatcher(['.git', 'docs/*.md']), 'node_modules')).toEqual([]);
    expect(findPrunes(createIgnoreMatcher(['**/Dockerfile.*', '**/.cache']), 'node_modules')).toEqual(['Dockerfile.*', '.cache']);
    expect(findPrunes(createIgnoreMatcher(['node_modules/.cache']), 'node_modules')).toBeUndefined();
    expect(findPrunes(createIgnoreMatcher(['**/a?b']), 'node_modules')).toBeUndefined();
    expect(findPrunes(createIgnoreMatcher(['**/[ab]']), 'node_modules')).toBeUndefined();
    expect(findPrunes(createIgnoreMatcher(['**/*.md', '!**/README.md']), 'node_modules')).toBeUndefined();
    // At the context root every pattern reaches below.
    expect(findPrunes(createIgnoreMatcher(['.git']), '.')).toBeUndefined();
  });
});

describe('listedTreeDigest', () => {
  it('is stable for an untouched tree and changes with every change that could change a layer', async () => {
    await mkdir(join(root, 'pkg/lib'), { recursive: true });
    await writeFile(join(root, 'pkg/lib/a.js'), 'aaa');
    await writeFile(join(root, 'pkg/b.js'), 'bbb');
    const digests = [await listedTreeDigest(root, [])];
    expect(digests[0]).toMatch(/^[0-9a-f]{16}$/);
    expect(await listedTreeDigest(root, [])).toBe(digests[0]);
    const expectNew = async () => {
      const digest = await listedTreeDigest(root, []);
      expect(digests).not.toContain(digest);
      digests.push(digest);
    };
    // Same size and mtime put back: the ctime still moves.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const { atime, mtime } = await stat(join(root, 'pkg/b.js'));
    await writeFile(join(root, 'pkg/b.js'), 'BBB');
    await utimes(join(root, 'pkg/b.js'), atime, mtime);
    await expectNew();
    await rename(join(root, 'pkg/lib/a.js'), join(root, 'pkg/lib/c.js'));
    await expectNew();
    await chmod(join(root, 'pkg/b.js'), 0o600);
    await expectNew();
    await symlink('b.js', join(root, 'pkg/link'));
    await expectNew();
    await mkdir(join(root, 'pkg/empty'));
    await expectNew();
  });

  it('leaves pruned names out, with everything below them', async () => {
    await mkdir(join(root, 'pkg/.cache/deep'), { recursive: true });
    await writeFile(join(root, 'pkg/index.js'), 'x');
    await writeFile(join(root, 'pkg/Dockerfile.dev'), 'FROM a');
    await writeFile(join(root, 'pkg/.cache/deep/entry'), '1');
    const before = await listedTreeDigest(root, ['.cache', 'Dockerfile.*']);
    await writeFile(join(root, 'pkg/Dockerfile.dev'), 'FROM b');
    await writeFile(join(root, 'pkg/.cache/deep/entry'), '2');
    await writeFile(join(root, 'pkg/.cache/new'), '3');
    expect(await listedTreeDigest(root, ['.cache', 'Dockerfile.*'])).toBe(before);
    await writeFile(join(root, 'pkg/index.js'), 'y');
    expect(await listedTreeDigest(root, ['.cache', 'Dockerfile.*'])).not.toBe(before);
  });

  it('gives no digest when find cannot list the tree', async () => {
    expect(await listedTreeDigest(join(root, 'missing'), [])).toBeUndefined();
  });

  it('lists only directories with many subdirectories', async () => {
    for (let i = 0; i < LISTED_TREE_MIN_SUBDIRECTORIES; i++) await mkdir(join(root, 'big', `d${i}`), { recursive: true });
    await mkdir(join(root, 'small/one'), { recursive: true });
    expect(isListedTree(await stat(join(root, 'big')))).toBe(true);
    expect(isListedTree(await stat(join(root, 'small')))).toBe(false);
  });
});
