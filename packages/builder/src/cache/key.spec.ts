import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hashEntries } from '../context/hash';
import type { LayerEntry } from '../layer/entry';
import { assertCacheKey, CacheKeyBuilder, chainCacheKey, copyCacheKey, isCacheKey, runCacheKey, stageBaseKey, type RunKeyInput } from './key';

const base = stageBaseKey('sha256:' + 'a'.repeat(64));

const run: RunKeyInput = {
  parentKey: base,
  instruction: 'RUN make install',
  env: ['PATH=/usr/bin:/bin', 'VERSION=1.2'],
  user: 'root',
  workdir: '/src',
  shell: ['/bin/sh', '-c'],
  mounts: ['type=cache,target=/root/.cache,id=pip'],
  network: 'default',
};

describe('CacheKeyBuilder', () => {
  it('gives 64 lowercase hex digits, usable as a tag and a file name', () => {
    const key = new CacheKeyBuilder('test').add('x').key();
    expect(key).toMatch(/^[a-f0-9]{64}$/);
    expect(isCacheKey(key)).toBe(true);
  });

  it('frames parts, so moving a boundary changes the key', () => {
    const split = (...parts: string[]) => new CacheKeyBuilder('test').add(...parts).key();
    expect(split('ab', 'c')).not.toBe(split('a', 'bc'));
    expect(split('a', '')).not.toBe(split('a'));
    expect(split('ab', 'c')).toBe(split('ab', 'c'));
  });

  it('tells undefined from an empty string, and lists from the parts after them', () => {
    expect(new CacheKeyBuilder('t').add(undefined).key()).not.toBe(new CacheKeyBuilder('t').add('').key());
    expect(new CacheKeyBuilder('t').addList(['a', 'b']).add('c').key()).not.toBe(new CacheKeyBuilder('t').addList(['a']).add('b', 'c').key());
  });

  it('separates kinds', () => {
    expect(new CacheKeyBuilder('copy').add('x').key()).not.toBe(new CacheKeyBuilder('run').add('x').key());
  });

  it('rejects keys that are not safe as tags or file names', () => {
    expect(() => assertCacheKey('../etc/passwd')).toThrow(/not a cache key/);
    expect(isCacheKey('ABC')).toBe(false);
    expect(isCacheKey('')).toBe(false);
    expect(isCacheKey('a'.repeat(129))).toBe(false);
  });
});

describe('runCacheKey', () => {
  const key = runCacheKey(run);

  it('is stable and ignores the order of the environment', () => {
    expect(runCacheKey({ ...run })).toBe(key);
    expect(runCacheKey({ ...run, env: [...run.env].reverse() })).toBe(key);
  });

  it.each<[string, Partial<RunKeyInput>]>([
    ['a changed ARG value', { env: ['PATH=/usr/bin:/bin', 'VERSION=1.3'] }],
    ['a changed parent', { parentKey: stageBaseKey('sha256:' + 'b'.repeat(64)) }],
    ['a changed instruction', { instruction: 'RUN make install ' }],
    ['another user', { user: 'app' }],
    ['another workdir', { workdir: '/' }],
    ['another shell', { shell: ['/bin/bash', '-c'] }],
    ['another mount', { mounts: ['type=cache,target=/root/.cache,id=npm'] }],
    ['no mounts', { mounts: [] }],
    ['another network', { network: 'none' }],
    ['another layer format', { layerFormat: 'zstd:3' }],
    ['a shell word moved into the instruction', { shell: ['/bin/sh'], instruction: '-c RUN make install' }],
  ])('changes with %s', (_, change) => {
    expect(runCacheKey({ ...run, ...change })).not.toBe(key);
  });

  it('rejects a parent that is not a key', () => {
    expect(() => runCacheKey({ ...run, parentKey: 'sha256:abc' })).toThrow(/not a cache key/);
  });
});

describe('stageBaseKey and chainCacheKey', () => {
  it('depend on the base, the platform and both chained keys', () => {
    expect(stageBaseKey('sha256:' + 'a'.repeat(64), { platform: 'linux/arm64' })).not.toBe(base);
    const copy = copyCacheKey({ instruction: 'COPY a /a', workdir: '/', entriesHash: '0'.repeat(16) });
    expect(chainCacheKey(base, copy)).not.toBe(chainCacheKey(copy, base));
    expect(chainCacheKey(base, copy)).toMatch(/^[a-f0-9]{64}$/);
  });
});

describe('copyCacheKey with hashEntries', () => {
  const dirs: string[] = [];
  afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  /** A context directory somewhere under tmp, and its entries as the COPY planner would list them. */
  async function context(files: Record<string, string>, options: { uid?: number; mtime?: Date } = {}): Promise<LayerEntry[]> {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-key-'));
    dirs.push(dir);
    const entries: LayerEntry[] = [{ path: 'app', type: 'directory', mode: 0o755, uid: options.uid ?? 0, gid: 0 }];
    await mkdir(join(dir, 'app'));
    for (const [name, content] of Object.entries(files)) {
      const source = join(dir, 'app', name);
      await writeFile(source, content);
      if (options.mtime) await utimes(source, options.mtime, options.mtime);
      entries.push({ path: `app/${name}`, type: 'file', mode: 0o644, uid: options.uid ?? 0, gid: 0, source, size: content.length, mtime: options.mtime });
    }
    return entries;
  }

  const key = async (entries: LayerEntry[], change: { chown?: string; instruction?: string } = {}) =>
    copyCacheKey({ instruction: change.instruction ?? 'COPY app /app', workdir: '/', chown: change.chown, entriesHash: await hashEntries(entries) });

  it('does not depend on where the context is or on mtimes', async () => {
    const a = await key(await context({ 'main.js': 'console.log(1)' }, { mtime: new Date('2001-01-01') }));
    const b = await key(await context({ 'main.js': 'console.log(1)' }, { mtime: new Date('2024-06-01') }));
    expect(a).toBe(b);
  });

  it('changes when a file is renamed, its content changes, or its owner changes', async () => {
    const original = await key(await context({ 'main.js': 'console.log(1)' }));
    expect(await key(await context({ 'index.js': 'console.log(1)' }))).not.toBe(original);
    expect(await key(await context({ 'main.js': 'console.log(2)' }))).not.toBe(original);
    expect(await key(await context({ 'main.js': 'console.log(1)' }, { uid: 1000 }), { chown: '1000' })).not.toBe(original);
    expect(await key(await context({ 'main.js': 'console.log(1)' }), { chown: '1000' })).not.toBe(original);
  });

  it('changes with the expanded instruction (an ARG used in it)', async () => {
    const entries = await context({ 'main.js': 'x' });
    expect(await key(entries, { instruction: 'COPY app /opt/v1' })).not.toBe(await key(entries, { instruction: 'COPY app /opt/v2' }));
  });
});
