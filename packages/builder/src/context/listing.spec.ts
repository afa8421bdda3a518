import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createIgnoreMatcher } from './ignore';
import { findPrunes, isListedTree, LISTED_TREE_MIN_SUBDIRECTORIES, listedTreeDigest } from './listing';
import { expectEveryEditChangesKey } from '../../test/tree-edits';

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
    await expectEveryEditChangesKey(root, () => listedTreeDigest(root, []));
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
