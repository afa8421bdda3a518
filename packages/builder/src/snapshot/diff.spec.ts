import { describe, expect, it } from 'vitest';
import { diffTree, hasChanged } from './diff';
import type { FileState, ScanMode, TreeState } from './scan';

const base: FileState = { type: 'file', mode: 0o644, uid: 0, gid: 0, size: 4, mtimeNs: 1_000_000_000n, dev: 1n, ino: 10n, nlink: 1, contentHash: 'aaaa' };
const dir = (ino: bigint, extra: Partial<FileState> = {}): FileState => ({ ...base, type: 'directory', size: 0, ino, contentHash: undefined, ...extra });
const file = (ino: bigint, extra: Partial<FileState> = {}): FileState => ({ ...base, ino, ...extra });
const tree = (mode: ScanMode, entries: Record<string, FileState>): TreeState => ({ root: '/r', mode, entries: new Map(Object.entries(entries)) });

describe('hasChanged', () => {
  it('compares by mode: content in full, stat fields in redo, mtime only in time', () => {
    const content = { ...base, contentHash: 'bbbb' };
    const chmod = { ...base, mode: 0o600 };
    const inode = { ...base, ino: 11n };
    const touched = { ...base, mtimeNs: 2_000_000_000n };
    expect([content, chmod, inode, touched].map((after) => hasChanged(base, after, 'full'))).toEqual([true, true, false, true]);
    expect([content, chmod, inode, touched].map((after) => hasChanged(base, after, 'redo'))).toEqual([false, true, true, true]);
    expect([content, chmod, inode, touched].map((after) => hasChanged(base, after, 'time'))).toEqual([false, false, false, true]);
  });

  it('counts a new hard link to a file as a change of that file, a removed one not', () => {
    expect(hasChanged(base, { ...base, nlink: 2 }, 'redo')).toBe(true);
    expect(hasChanged({ ...base, nlink: 2 }, base, 'redo')).toBe(false);
  });
});

describe('diffTree', () => {
  it('whites out only the top of a deleted tree and adds parents of changes', () => {
    const before = tree('redo', { a: dir(1n), 'a/b': dir(2n), 'a/b/c': file(3n), keep: dir(4n), 'keep/x': file(5n), 'keep/y': file(6n) });
    const after = tree('redo', { keep: dir(4n), 'keep/x': file(5n, { size: 9 }) });
    expect(diffTree(before, after).map((entry) => `${entry.type} ${entry.path}`)).toEqual([
      'file .wh.a',
      'directory keep',
      'file keep/.wh.y',
      'file keep/x',
    ]);
  });

  it('marks a directory replaced by a new inode opaque and includes all its content whatever the mtimes', () => {
    const before = tree('time', { d: dir(1n), 'd/old': file(2n), 'd/same': file(3n) });
    const after = tree('time', { d: dir(7n), 'd/same': file(8n) });
    expect(diffTree(before, after).map((entry) => entry.path)).toEqual(['d', 'd/.wh..wh..opq', 'd/same']);
  });

  it('writes later paths of one inode as hard links to the first, and a link to an unchanged file as a file', () => {
    const before = tree('redo', { old: file(1n, { nlink: 2 }), other: file(1n, { nlink: 2 }) });
    const after = tree('redo', { old: file(1n, { nlink: 2 }), other: file(1n, { nlink: 2 }), n1: file(5n, { nlink: 2 }), n2: file(5n, { nlink: 2 }) });
    const entries = diffTree(before, after);
    expect(entries.map(({ path, type, linkTarget }) => ({ path, type, linkTarget }))).toEqual([
      { path: 'n1', type: 'file', linkTarget: undefined },
      { path: 'n2', type: 'hardlink', linkTarget: 'n1' },
    ]);
    expect(entries[0]).toMatchObject({ source: '/r/n1', size: 4 });
  });

  it('replaces a directory by a file without whiteouts for its children', () => {
    const before = tree('redo', { d: dir(1n), 'd/x': file(2n) });
    const after = tree('redo', { d: file(3n) });
    expect(diffTree(before, after).map((entry) => `${entry.type} ${entry.path}`)).toEqual(['file d']);
  });
});
