import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractLayer } from '../src/layer/index';
import { HOST_ESCAPE_PATHS, hostileCases, tarOf } from './fixtures/hostile-tar/corpus';

/** Everything in the jail outside the root: path → type, mode, size, mtime, content hash or link target. */
async function snapshotOutside(jail: string, root: string): Promise<Map<string, string>> {
  const snapshot = new Map<string, string>();
  const walk = async (directory: string) => {
    for (const name of await readdir(directory)) {
      const full = path.join(directory, name);
      if (full === root) continue;
      const stats = await lstat(full);
      let detail = `${stats.mode.toString(8)} ${stats.size} ${stats.mtimeMs} ${stats.nlink} ${stats.uid}:${stats.gid}`;
      if (stats.isSymbolicLink()) detail += ` -> ${await readlink(full)}`;
      else if (stats.isFile()) detail += ` ${createHash('sha256').update(await readFile(full)).digest('hex')}`;
      snapshot.set(path.relative(jail, full), detail);
      if (stats.isDirectory()) await walk(full);
    }
  };
  const jailStats = await lstat(jail);
  snapshot.set('.', `${jailStats.mode.toString(8)} ${jailStats.mtimeMs}`);
  await walk(jail);
  return snapshot;
}

describe('extractLayer: hostile tar corpus', () => {
  let jail: string;
  let root: string;

  beforeEach(async () => {
    jail = await mkdtemp(path.join(tmpdir(), 'tessera-jail-'));
    root = path.join(jail, 'root');
    await mkdir(root);
    await writeFile(path.join(jail, 'sentinel.txt'), 'sentinel');
    await mkdir(path.join(jail, 'outside'));
    await writeFile(path.join(jail, 'outside', 'keep.txt'), 'keep');
    await mkdir(path.join(jail, 'etc'));
    await writeFile(path.join(jail, 'etc', 'passwd'), 'root:x:0:0');
  });

  afterEach(async () => {
    await rm(jail, { recursive: true, force: true });
  });

  it('has at least 15 cases', () => {
    expect(hostileCases.length).toBeGreaterThanOrEqual(15);
  });

  for (const testCase of hostileCases) {
    it(testCase.name, async () => {
      await testCase.prepare?.(root, jail);
      const archive = await testCase.archive(jail);
      const before = await snapshotOutside(jail, root);

      const run = extractLayer(Readable.from([archive]), root, { preserveOwnership: false, ...testCase.options });
      let warnings: string[] = [];
      if (testCase.error) {
        await expect(run).rejects.toThrow(testCase.error);
      } else {
        warnings = (await run).warnings;
      }

      expect(await snapshotOutside(jail, root)).toEqual(before);
      for (const hostPath of HOST_ESCAPE_PATHS) await expect(lstat(hostPath), hostPath).rejects.toThrow(/ENOENT/);
      if (testCase.warning) expect(warnings.some((warning) => testCase.warning!.test(warning)), warnings.join('\n')).toBe(true);
      for (const [relative, expected] of Object.entries(testCase.expectInRoot ?? {})) {
        const full = path.join(root, relative);
        const stats = await lstat(full);
        if (expected === 'directory') expect(stats.isDirectory(), relative).toBe(true);
        else if (expected === 'symlink') expect(stats.isSymbolicLink(), relative).toBe(true);
        else if (expected !== 'exists') {
          expect(stats.isFile(), relative).toBe(true);
          expect(await readFile(full, 'utf8')).toBe(expected);
        }
      }
      for (const relative of testCase.absentInRoot ?? []) {
        await expect(lstat(path.join(root, relative)), relative).rejects.toThrow(/ENOENT/);
      }
    });
  }
});

describe('extractLayer: metadata', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'tessera-extract-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('applies modes, mtimes and (when privileged) ownership, setuid and fifos', async () => {
    const mtime = new Date('2020-02-02T02:02:02Z');
    const tar = await tarOf([
      { header: { name: 'ro', type: 'directory', mode: 0o555, mtime } },
      { header: { name: 'ro/file', type: 'file', mode: 0o640, uid: 1234, gid: 5678, mtime }, content: 'data' },
      { header: { name: 'suid', type: 'file', mode: 0o4755, mtime }, content: '' },
      { header: { name: 'link', type: 'symlink', linkname: 'ro/file', mtime } },
      { header: { name: 'pipe', type: 'fifo', mode: 0o600, mtime } },
    ]);
    const stats = await extractLayer(Readable.from([tar]), root, { privileged: true, preserveOwnership: true });
    expect(stats).toMatchObject({ entries: 5, files: 2, bytes: 4 });

    const dir = await lstat(path.join(root, 'ro'));
    expect(dir.mode & 0o7777).toBe(0o555);
    expect(dir.mtime.getTime()).toBe(mtime.getTime());
    const file = await lstat(path.join(root, 'ro/file'));
    expect([file.mode & 0o7777, file.uid, file.gid, file.mtime.getTime()]).toEqual([0o640, 1234, 5678, mtime.getTime()]);
    expect((await lstat(path.join(root, 'suid'))).mode & 0o7777).toBe(0o4755);
    expect((await lstat(path.join(root, 'link'))).mtime.getTime()).toBe(mtime.getTime());
    expect((await lstat(path.join(root, 'pipe'))).isFIFO()).toBe(true);
  });

  it('creates device nodes when privileged', async () => {
    const tar = await tarOf([{ header: { name: 'dev/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 } }]);
    await extractLayer(Readable.from([tar]), root, { privileged: true });
    const node = await lstat(path.join(root, 'dev/null'));
    expect(node.isCharacterDevice()).toBe(true);
    expect(node.rdev).toBe(0x103);
  });

  it('keeps whiteout files as plain files when applyWhiteouts is false', async () => {
    const tar = await tarOf([{ header: { name: 'etc/.wh.passwd', type: 'file' }, content: '' }]);
    await extractLayer(Readable.from([tar]), root, { applyWhiteouts: false });
    expect((await lstat(path.join(root, 'etc/.wh.passwd'))).isFile()).toBe(true);
  });
});
