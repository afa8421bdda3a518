import { createReadStream, type BigIntStats, type Dirent } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { Limiter } from '@tessera/oci';
import xxhash from 'xxhash-wasm';
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
  /** Filesystem calls in flight at once (they run on libuv's thread pool, so on every core). */
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

let hasher: ReturnType<typeof xxhash> | undefined;

export async function hashFile(file: string): Promise<string> {
  const api = await (hasher ??= xxhash());
  const state = api.create64();
  for await (const chunk of createReadStream(file)) state.update(chunk as Buffer);
  return state.digest().toString(16).padStart(16, '0');
}

/** Reads one path into a FileState (undefined for sockets and paths that vanished). */
export async function statPath(hostPath: string, mode: ScanMode): Promise<FileState | undefined> {
  let stats: BigIntStats;
  try {
    stats = await lstat(hostPath, { bigint: true });
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
  if (type === 'symlink') state.linkTarget = await readlink(hostPath);
  if (type === 'char' || type === 'block') Object.assign(state, deviceNumbers(stats.rdev));
  if (type === 'file' && mode === 'full') state.contentHash = await hashFile(hostPath);
  return state;
}

/**
 * Walks `root` (without following symlinks) into a TreeState. Directories are read and paths stat'ed
 * concurrently under one limit; ignored paths are skipped by name before any syscall reaches them.
 */
export async function scanTree(root: string, options: ScanOptions): Promise<TreeState> {
  const ignore = new Set((options.ignore ?? []).map(toRelativeImagePath).filter((entry) => entry !== ''));
  const limiter = new Limiter(options.concurrency ?? Math.max(16, availableParallelism() * 8));
  const entries = new Map<string, FileState>();
  const limited = async <T>(work: () => Promise<T>): Promise<T> => {
    const release = await limiter.acquire();
    try {
      return await work();
    } finally {
      release();
    }
  };

  const visitDirectory = async (relative: string): Promise<void> => {
    const hostDir = path.join(root, relative);
    let children: Dirent[];
    try {
      children = await limited(() => readdir(hostDir, { withFileTypes: true }));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    await Promise.all(
      children.map(async (child) => {
        const childRelative = relative === '' ? child.name : `${relative}/${child.name}`;
        if (ignore.has(childRelative)) return;
        const state = await limited(() => statPath(path.join(root, childRelative), options.mode));
        if (!state) return;
        entries.set(childRelative, state);
        if (state.type === 'directory') await visitDirectory(childRelative);
      }),
    );
  };

  await visitDirectory('');
  return { root, mode: options.mode, entries };
}
