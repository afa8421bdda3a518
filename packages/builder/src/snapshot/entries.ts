import * as path from 'node:path';
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX, type LayerEntry } from '../layer/entry';
import type { FileState } from './scan';

/**
 * Turns a set of changed paths into layer entries, the same way for every snapshotter: hardlinks among
 * the changed files, every ancestor directory (with its current metadata), whiteouts and opaque markers.
 */
export interface ChangeSet {
  /** Host directory the changed files are read from. */
  root: string;
  /** Current state of every path the layer may mention (changed paths and their ancestors). */
  current: (relative: string) => FileState | undefined;
  changed: Set<string>;
  /** Paths deleted (a whiteout each). */
  deleted: Set<string>;
  /** Directories whose lower content is hidden wholesale. */
  opaque: Set<string>;
}

const WHITEOUT_MODE = 0o600;

export function buildEntries(changes: ChangeSet): LayerEntry[] {
  const paths = new Set(changes.changed);
  for (const changed of [...changes.changed, ...changes.deleted, ...changes.opaque]) {
    for (let parent = path.posix.dirname(changed); parent !== '.'; parent = path.posix.dirname(parent)) {
      if (paths.has(parent)) break;
      paths.add(parent);
    }
  }
  for (const dir of changes.opaque) paths.add(dir);

  const entries: LayerEntry[] = [];
  const firstPathOfInode = new Map<string, string>();
  for (const relative of [...paths].sort()) {
    const state = changes.current(relative);
    if (!state) continue;
    const entry: LayerEntry = {
      path: relative,
      type: state.type,
      mode: state.mode,
      uid: state.uid,
      gid: state.gid,
      mtime: new Date(Number(state.mtimeNs / 1_000_000n)),
    };
    if (state.type === 'file') {
      const inode = `${state.dev}:${state.ino}`;
      const linkedTo = state.nlink > 1 ? firstPathOfInode.get(inode) : undefined;
      if (linkedTo !== undefined) {
        entry.type = 'hardlink';
        entry.linkTarget = linkedTo;
      } else {
        if (state.nlink > 1) firstPathOfInode.set(inode, relative);
        entry.size = state.size;
        entry.source = path.join(changes.root, relative);
      }
    } else if (state.type === 'symlink') {
      entry.linkTarget = state.linkTarget;
    } else if (state.type === 'char' || state.type === 'block') {
      entry.devmajor = state.devmajor;
      entry.devminor = state.devminor;
    }
    entries.push(entry);
  }
  for (const deleted of changes.deleted) entries.push(whiteout(path.posix.dirname(deleted), `${WHITEOUT_PREFIX}${path.posix.basename(deleted)}`));
  for (const dir of changes.opaque) entries.push(whiteout(dir, OPAQUE_WHITEOUT));
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function whiteout(dir: string, name: string): LayerEntry {
  return { path: dir === '.' ? name : `${dir}/${name}`, type: 'file', mode: WHITEOUT_MODE, uid: 0, gid: 0, size: 0, content: Buffer.alloc(0) };
}
