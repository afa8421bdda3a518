import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LayerEntry } from '../src/layer/entry';
import { runInSandbox } from '../src/sandbox/index';
import { diffTree, scanTree, withOverlay, type ScanMode, type TreeState } from '../src/snapshot/index';
import { BASE_ENV, makeBusyboxRootfs } from './sandbox-fixtures';

const IGNORE = ['/proc', '/dev'];
const OLD = new Date('2020-01-02T03:04:05Z');

/** RUN-like changes: each line is one case of the corpus. */
const CORPUS = `set -e
cd /data
printf bbbb > modify.txt && touch -r ref.txt modify.txt
chmod 600 chmod.txt
chown 1234:5678 chown.txt
rm delete.txt
rm -rf deltree
rm -rf dir2file && echo f > dir2file
rm file2dir && mkdir file2dir && echo inner > file2dir/inner
mkdir replace.next && echo new > replace.next/new && rm -rf replace && mv replace.next replace
ln -sfn target2 link
ln hard1 hard2
mkdir new && echo n > new/n1 && ln new/n1 new/n2 && mkfifo new/fifo && ln -s ../untouched new/sym
echo appended >> nested/deep/file.txt
`;

function makeBase(): string {
  const root = makeBusyboxRootfs();
  const data = path.join(root, 'data');
  const file = (relative: string, content: string) => {
    mkdirSync(path.dirname(path.join(data, relative)), { recursive: true });
    writeFileSync(path.join(data, relative), content);
    utimesSync(path.join(data, relative), OLD, OLD);
  };
  file('modify.txt', 'aaaa');
  file('ref.txt', 'ref');
  file('chmod.txt', 'c');
  file('chown.txt', 'o');
  file('delete.txt', 'd');
  file('deltree/a/b/c.txt', 'c');
  file('deltree/d.txt', 'd');
  file('dir2file/x.txt', 'x');
  file('file2dir', 'was a file');
  file('replace/old1', '1');
  file('replace/sub/old2', '2');
  file('hard1', 'h');
  file('untouched/u1', 'u');
  file('nested/deep/file.txt', 'deep');
  symlinkSync('target1', path.join(data, 'link'));
  return root;
}

function comparable(entries: LayerEntry[]) {
  return entries.map(({ path: p, type, mode, uid, gid, size, linkTarget }) => ({ path: p, type, mode, uid, gid, size, linkTarget }));
}

async function runCorpus(rootfs: string, overlay?: Parameters<typeof runInSandbox>[0]['overlay'], isolation: 'auto' | 'userns' = 'auto') {
  const stderr: string[] = [];
  const result = await runInSandbox({ rootfs, argv: ['/bin/sh', '-c', CORPUS], env: BASE_ENV, cwd: '/', uid: 0, gid: 0, network: 'none', isolation, overlay, onStderr: (line) => stderr.push(line) });
  expect(result.exitCode, stderr.join('\n')).toBe(0);
}

describe('snapshots of a corpus of RUN changes', () => {
  let walkRoot: string;
  let overlayRoot: string;
  const walk: Partial<Record<ScanMode, LayerEntry[]>> = {};
  let overlayEntries: LayerEntry[];
  let usernsOverlayEntries: LayerEntry[];

  beforeAll(async () => {
    walkRoot = makeBase();
    overlayRoot = path.join(path.dirname(walkRoot), 'rootfs-overlay');
    execFileSync('cp', ['-a', '--', walkRoot, overlayRoot]);
    const usernsRoot = path.join(path.dirname(walkRoot), 'rootfs-userns');
    execFileSync('cp', ['-a', '--', walkRoot, usernsRoot]);

    const modes: ScanMode[] = ['full', 'redo', 'time'];
    const before = new Map<ScanMode, TreeState>();
    for (const mode of modes) before.set(mode, await scanTree(walkRoot, { mode, ignore: IGNORE }));
    await runCorpus(walkRoot);
    for (const mode of modes) walk[mode] = diffTree(before.get(mode)!, await scanTree(walkRoot, { mode, ignore: IGNORE }));

    ({ entries: overlayEntries } = await withOverlay(overlayRoot, (overlay) => runCorpus(overlayRoot, overlay), { ignore: IGNORE }));
    // In a user namespace the overlay marks opaque directories with user.overlay.opaque.
    ({ entries: usernsOverlayEntries } = await withOverlay(usernsRoot, (overlay) => runCorpus(usernsRoot, overlay, 'userns'), { ignore: IGNORE }));
  });
  afterAll(() => {
    rmSync(path.dirname(walkRoot), { recursive: true, force: true });
  });

  it('gives identical entries from a full walk and from the overlay upper dir', () => {
    expect(comparable(overlayEntries)).toEqual(comparable(walk.full!));
    expect(comparable(usernsOverlayEntries)).toEqual(comparable(walk.full!));
  });

  it('describes each change the way an OCI layer needs it', () => {
    const byPath = new Map(walk.full!.map((entry) => [entry.path, entry]));
    const paths = [...byPath.keys()];
    expect(paths).toContain('data/.wh.delete.txt');
    expect(paths).toContain('data/.wh.deltree');
    expect(paths.filter((p) => p.startsWith('data/deltree'))).toEqual([]);
    expect(paths).toContain('data/replace/.wh..wh..opq');
    expect(paths.filter((p) => p.startsWith('data/replace/'))).toEqual(['data/replace/.wh..wh..opq', 'data/replace/new']);
    expect(byPath.get('data/dir2file')).toMatchObject({ type: 'file', size: 2 });
    expect(paths.filter((p) => p.startsWith('data/dir2file/'))).toEqual([]);
    expect(byPath.get('data/file2dir')).toMatchObject({ type: 'directory' });
    expect(paths).not.toContain('data/file2dir/.wh..wh..opq');
    expect(byPath.get('data/link')).toMatchObject({ type: 'symlink', linkTarget: 'target2' });
    expect(byPath.get('data/hard1')).toMatchObject({ type: 'file' });
    expect(byPath.get('data/hard2')).toMatchObject({ type: 'hardlink', linkTarget: 'data/hard1' });
    expect(byPath.get('data/new/n2')).toMatchObject({ type: 'hardlink', linkTarget: 'data/new/n1' });
    expect(byPath.get('data/new/fifo')).toMatchObject({ type: 'fifo' });
    expect(byPath.get('data/chown.txt')).toMatchObject({ uid: 1234, gid: 5678 });
    expect(byPath.get('data/chmod.txt')).toMatchObject({ mode: 0o600 });
    // Parents of changed files come along with their metadata; untouched siblings do not.
    expect(byPath.get('data/nested')).toMatchObject({ type: 'directory' });
    expect(byPath.get('data/nested/deep')).toMatchObject({ type: 'directory' });
    expect(paths.filter((p) => p.startsWith('data/untouched'))).toEqual([]);
    expect(paths).not.toContain('data/ref.txt');
    expect(paths.filter((p) => /^(bin|usr|etc|proc|dev)(\/|$)/.test(p))).toEqual([]);
  });

  it('follows what each walk mode compares', () => {
    const has = (mode: ScanMode, p: string) => walk[mode]!.some((entry) => entry.path === p);
    // Same size and mtime, new content: only a content hash sees it.
    expect([has('full', 'data/modify.txt'), has('redo', 'data/modify.txt'), has('time', 'data/modify.txt')]).toEqual([true, false, false]);
    // Metadata only: redo and full see it, time does not.
    for (const p of ['data/chmod.txt', 'data/chown.txt']) expect([has('full', p), has('redo', p), has('time', p)]).toEqual([true, true, false]);
    // Structural changes show in every mode.
    for (const mode of ['full', 'redo', 'time'] as const) {
      expect(has(mode, 'data/.wh.delete.txt') && has(mode, 'data/replace/.wh..wh..opq') && has(mode, 'data/new/n1')).toBe(true);
    }
  });

  it('leaves the overlay rootfs with the same content as the walked one', async () => {
    const summarize = (state: TreeState) =>
      [...state.entries].map(([p, s]) => `${p} ${s.type} ${s.mode.toString(8)} ${s.uid}:${s.gid} ${s.size} ${s.linkTarget ?? ''} ${s.contentHash ?? ''} ${s.nlink}`).sort();
    const walked = await scanTree(walkRoot, { mode: 'full', ignore: IGNORE });
    const applied = await scanTree(overlayRoot, { mode: 'full', ignore: IGNORE });
    expect(summarize(applied)).toEqual(summarize(walked));
    // The overlay's workspace is gone.
    const siblings = readdirSync(path.dirname(overlayRoot));
    expect(siblings.filter((name) => name.includes('-overlay-'))).toEqual([]);
  });

  it('keeps the rootfs unchanged when the RUN fails under an overlay', async () => {
    const before = await scanTree(overlayRoot, { mode: 'full', ignore: IGNORE });
    await expect(
      withOverlay(overlayRoot, async (overlay) => {
        await runInSandbox({ rootfs: overlayRoot, argv: ['/bin/sh', '-c', 'rm -rf /data /bin/ls; echo x > /new'], env: BASE_ENV, cwd: '/', uid: 0, gid: 0, network: 'none', isolation: 'auto', overlay });
        throw new Error('RUN failed');
      }),
    ).rejects.toThrow('RUN failed');
    const after = await scanTree(overlayRoot, { mode: 'full', ignore: IGNORE });
    expect(diffTree(before, after)).toEqual([]);
  });
});
