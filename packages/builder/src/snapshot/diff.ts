import * as path from 'node:path';
import type { LayerEntry } from '../layer/entry';
import { buildEntries } from './entries';
import type { FileState, ScanMode, TreeState } from './scan';

/** Whether a path that kept its type changed, by what the mode compares. */
export function hasChanged(before: FileState, after: FileState, mode: ScanMode): boolean {
  if (before.mtimeNs !== after.mtimeNs) return true;
  if (mode === 'time') return false;
  if (before.mode !== after.mode || before.uid !== after.uid || before.gid !== after.gid) return true;
  if (before.linkTarget !== after.linkTarget || before.devmajor !== after.devmajor || before.devminor !== after.devminor) return true;
  if (after.type === 'directory') return false;
  // A new hard link to this inode: the layer needs this path as the link's target.
  if (after.nlink > before.nlink) return true;
  if (before.size !== after.size) return true;
  if (mode === 'redo') return before.ino !== after.ino || before.dev !== after.dev;
  return before.contentHash !== after.contentHash;
}

/**
 * The layer that turns `before` into `after`: changed and new paths with their ancestor directories,
 * `.wh.NAME` for each deleted path (only the topmost of a deleted tree), and `.wh..wh..opq` for a
 * directory replaced wholesale (a new inode, e.g. removed and made again), whose whole content follows.
 */
export function diffTree(before: TreeState, after: TreeState): LayerEntry[] {
  const mode = after.mode;
  const changed = new Set<string>();
  const deleted = new Set<string>();
  const opaque = new Set<string>();
  const replacedDirs: string[] = [];
  for (const [relative, now] of after.entries) {
    const was = before.entries.get(relative);
    if (!was || was.type !== now.type) {
      changed.add(relative);
    } else if (now.type === 'directory' && (was.ino !== now.ino || was.dev !== now.dev)) {
      opaque.add(relative);
      replacedDirs.push(relative);
    } else if (hasChanged(was, now, mode)) {
      changed.add(relative);
    }
  }
  // Everything under a replaced directory is new, whatever its mtime says.
  if (replacedDirs.length > 0) {
    for (const relative of after.entries.keys()) if (isUnderAny(relative, opaque)) changed.add(relative);
  }
  for (const [relative] of before.entries) {
    if (after.entries.has(relative)) continue;
    const parent = path.posix.dirname(relative);
    if (parent !== '.') {
      const parentNow = after.entries.get(parent);
      const parentWas = before.entries.get(parent);
      // Covered by the parent's own whiteout, type change or opaque marker.
      if (!parentNow || parentNow.type !== 'directory' || parentWas?.type !== 'directory' || opaque.has(parent) || isUnderAny(parent, opaque)) continue;
    }
    deleted.add(relative);
  }
  return buildEntries({ root: after.root, current: (relative) => after.entries.get(relative), changed, deleted, opaque });
}

function isUnderAny(relative: string, dirs: Set<string>): boolean {
  for (let parent = path.posix.dirname(relative); parent !== '.'; parent = path.posix.dirname(parent)) {
    if (dirs.has(parent)) return true;
  }
  return false;
}
