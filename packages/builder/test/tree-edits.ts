import { chmod, mkdir, rename, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';

/** Rewrites a file and puts its atime and mtime back, as a tool restoring timestamps would: only the ctime moves. */
export async function rewriteKeepingTimes(file: string, content: string): Promise<void> {
  const { atime, mtime } = await stat(file);
  // A later ctime than the first write's, even on a coarse clock.
  await new Promise((resolve) => setTimeout(resolve, 20));
  await writeFile(file, content);
  await utimes(file, atime, mtime);
}

/**
 * Writes `dir/sub/a.txt` and `dir/b.txt`, then makes each edit that must change a tree's key — a rewrite
 * behind the same size and mtime (only the ctime moves), a rename, a chmod, a new symlink, a new empty
 * directory — and checks that `keyOf` gives a key not seen before after each one, and the same key twice
 * for an untouched tree.
 */
export async function expectEveryEditChangesKey(dir: string, keyOf: () => Promise<string | undefined>): Promise<void> {
  await mkdir(join(dir, 'sub'), { recursive: true });
  await writeFile(join(dir, 'sub/a.txt'), 'aaa');
  await writeFile(join(dir, 'b.txt'), 'bbb');
  const keys = [await keyOf()];
  expect(keys[0]).toBeTruthy();
  expect(await keyOf()).toBe(keys[0]);
  const edits: Array<() => Promise<void>> = [
    () => rewriteKeepingTimes(join(dir, 'b.txt'), 'BBB'),
    () => rename(join(dir, 'sub/a.txt'), join(dir, 'sub/c.txt')),
    () => chmod(join(dir, 'b.txt'), 0o600),
    () => symlink('b.txt', join(dir, 'link')),
    () => mkdir(join(dir, 'empty')),
  ];
  for (const edit of edits) {
    await edit();
    const key = await keyOf();
    expect(keys).not.toContain(key);
    keys.push(key);
  }
}
