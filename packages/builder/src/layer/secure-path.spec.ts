import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confineArchivePath, resolveInRoot } from './secure-path';

describe('confineArchivePath', () => {
  it('confines absolute and climbing paths to the root', () => {
    expect(confineArchivePath('a/b')).toEqual({ relative: 'a/b', confined: false });
    expect(confineArchivePath('./a/./b/')).toEqual({ relative: 'a/b', confined: false });
    expect(confineArchivePath('a/../b')).toEqual({ relative: 'b', confined: false });
    expect(confineArchivePath('/etc/passwd')).toEqual({ relative: 'etc/passwd', confined: true });
    expect(confineArchivePath('../../x')).toEqual({ relative: 'x', confined: true });
    expect(confineArchivePath('..')).toEqual({ relative: '', confined: true });
  });
});

describe('resolveInRoot', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'tessera-securejoin-'));
    await mkdir(path.join(root, 'real/dir'), { recursive: true });
    await symlink('/real', path.join(root, 'abs'));
    await symlink('../../../../..', path.join(root, 'real/up'));
    await symlink('dir', path.join(root, 'real/rel'));
    await symlink('/real/dir', path.join(root, 'etc'));
    await symlink('/self', path.join(root, 'self'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('resolves symlinks as if root were /', async () => {
    expect(await resolveInRoot(root, 'abs/dir/x', { followFinal: false })).toBe(path.join(root, 'real/dir/x'));
    expect(await resolveInRoot(root, 'real/up/real/rel', { followFinal: true })).toBe(path.join(root, 'real/dir'));
    expect(await resolveInRoot(root, '../../etc/passwd', { followFinal: false })).toBe(path.join(root, 'real/dir/passwd'));
    expect(await resolveInRoot(root, 'etc', { followFinal: true })).toBe(path.join(root, 'real/dir'));
  });

  it('fails on symlink loops', async () => {
    await expect(resolveInRoot(root, 'self/x', { followFinal: false })).rejects.toThrow(/too many levels of symbolic links/);
  });

  it('does not follow the final component unless asked', async () => {
    expect(await resolveInRoot(root, 'real/rel', { followFinal: false })).toBe(path.join(root, 'real/rel'));
  });

  it('creates missing directories inside the root when asked', async () => {
    expect(await resolveInRoot(root, 'etc/new/deeper', { followFinal: true, createDirectories: true })).toBe(path.join(root, 'real/dir/new/deeper'));
  });
});
