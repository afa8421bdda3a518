import { describe, expect, it } from 'vitest';
import { detectCompression } from './compression';
import type { LayerEntry } from './entry';
import { compareEntryPaths, normaliseEntryPath, sortLayerEntries, whiteoutEntry } from './writer';

const entry = (p: string, type: LayerEntry['type'] = 'file', linkTarget?: string): LayerEntry => ({ path: p, type, mode: 0o644, uid: 0, gid: 0, linkTarget });

describe('entry ordering', () => {
  it('orders by path components, bytewise, parents first', () => {
    const sorted = ['a-b', 'a/b', 'a', 'B', 'a/b/c', 'é'].sort(compareEntryPaths);
    expect(sorted).toEqual(['B', 'a', 'a/b', 'a/b/c', 'a-b', 'é']);
  });

  it('moves hardlinks after their targets, keeps duplicates stable', () => {
    const sorted = sortLayerEntries([entry('z'), entry('a', 'hardlink', 'z'), entry('m'), entry('m', 'directory')]).map((e) => `${e.path}:${e.type}`);
    expect(sorted).toEqual(['m:file', 'm:directory', 'z:file', 'a:hardlink']);
  });

  it('rejects unsafe entry paths', () => {
    expect(normaliseEntryPath('./app/x/')).toBe('app/x');
    for (const bad of ['/abs', 'a/../b', '..', '', 'a//b']) expect(() => normaliseEntryPath(bad), bad).toThrow(/invalid layer entry path/);
  });

  it('names whiteouts next to their target', () => {
    expect(whiteoutEntry('etc/x.conf').path).toBe('etc/.wh.x.conf');
    expect(whiteoutEntry('top').path).toBe('.wh.top');
  });
});

describe('detectCompression', () => {
  it('recognises magic bytes', () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 8]))).toBe('gzip');
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
    expect(detectCompression(Buffer.from('BZh91AY'))).toBe('bzip2');
    expect(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]))).toBe('xz');
    expect(detectCompression(Buffer.from('app/main.js'))).toBe('none');
  });
});
