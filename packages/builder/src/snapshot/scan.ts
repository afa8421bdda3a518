import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { Limiter } from '@tessera/oci';
import { hashFile } from '../context/hash';
import type { LayerEntry } from '../layer/entry';

/** What a walk compares: `full` content hash plus metadata, `redo` stat metadata, `time` the mtime only. */
export type ScanMode = 'full' | 'redo' | 'time';

export type FileType = Exclude<LayerEntry['type'], 'hardlink'>;

export interface FileState {
  type: FileType;
  /** Permission bits with setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  dev: bigint;
  ino: bigint;
  nlink: number;
  linkTarget?: string;
  devmajor?: number;
  devminor?: number;
  /** xxhash64 of the content (hex), regular files in `full` mode only. */
  contentHash?: string;
}

export interface TreeState {
  root: string;
  mode: ScanMode;
  /** Relative image path (`etc/passwd`, no leading slash; the root itself is not listed) → state. */
  entries: Map<string, FileState>;
}

export interface ScanOptions {
  /** Absolute image paths (`/proc`, mount targets) neither listed nor descended into: no syscall touches them. */
  ignore?: string[];
  mode: ScanMode;
  /** Files hashed at once in `full` mode (on libuv's thread pool, so on every core). */
  concurrency?: number;
}

/** Normalises `/a/b/` style image paths to the relative keys of a TreeState. */
export function toRelativeImagePath(imagePath: string): string {
  return path.posix.normalize(`/${imagePath}`).slice(1).replace(/\/+$/, '');
}

export function fileTypeOf(stats: BigIntStats): FileType | undefined {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isCharacterDevice()) return 'char';
  if (stats.isBlockDevice()) return 'block';
  if (stats.isFIFO()) return 'fifo';
  return undefined; // sockets cannot go in a layer
}

/** Linux's dev_t encoding (see major(3)): 12 bits of major and 20 bits of minor, split across the word. */
export function deviceNumbers(rdev: bigint): { devmajor: number; devminor: number } {
  return {
    devmajor: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    devminor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

/** One path's state without its content hash (undefined for sockets and paths that vanished). */
function readState(hostPath: string): FileState | undefined {
  let stats: BigIntStats;
  try {
    stats = lstatSync(hostPath, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const type = fileTypeOf(stats);
  if (!type) return undefined;
  const state: FileState = {
    type,
    mode: Number(stats.mode & 0o7777n),
    uid: Number(stats.uid),
    gid: Number(stats.gid),
    size: type === 'file' ? Number(stats.size) : 0,
    mtimeNs: stats.mtimeNs,
    dev: stats.dev,
    ino: stats.ino,
    nlink: Number(stats.nlink),
  };
  if (type === 'symlink') state.linkTarget = readlinkSync(hostPath);
  if (type === 'char' || type === 'block') Object.assign(state, deviceNumbers(stats.rdev));
  return state;
}

/** Reads one path into a FileState (undefined for sockets and paths that vanished). */
export async function statPath(hostPath: string, mode: ScanMode): Promise<FileState | undefined> {
  const state = readState(hostPath);
  if (state?.type === 'file' && mode === 'full') state.contentHash = await hashFile(hostPath);
  return state;
}

/**
 * Walks `root` (without following symlinks) into a TreeState; ignored paths are skipped by name before
 * any syscall reaches them. Directories are read and paths stat'ed synchronously: for a tree of many
 * small files, a promise per syscall costs ten times the syscall itself (100,000 files: about 0.5 s
 * instead of 6 s). In `full` mode the contents are then hashed concurrently on the thread pool.
 */
export async function scanTree(root: string, options: ScanOptions): Promise<TreeState> {
  const ignore = new Set((options.ignore ?? []).map(toRelativeImagePath).filter((entry) => entry !== ''));
  const entries = new Map<string, FileState>();
  const visitDirectory = (relative: string): void => {
    let children: string[];
    try {
      children = readdirSync(path.join(root, relative));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const name of children) {
      const childRelative = relative === '' ? name : `${relative}/${name}`;
      if (ignore.has(childRelative)) continue;
      const state = readState(path.join(root, childRelative));
      if (!state) continue;
      entries.set(childRelative, state);
      if (state.type === 'directory') visitDirectory(childRelative);
    }
  };
  visitDirectory('');
  if (options.mode === 'full') {
    const limiter = new Limiter(options.concurrency ?? Math.max(4, availableParallelism() * 2));
    const files = [...entries].filter(([, state]) => state.type === 'file');
    await Promise.all(
      files.map(([relative, state]) =>
        limiter.run(async () => {
          state.contentHash = await hashFile(path.join(root, relative));
        }),
      ),
    );
  }
  return { root, mode: options.mode, entries };
}
