import { lstat, mkdir, readlink } from 'node:fs/promises';
import * as path from 'node:path';
import { TesseraError } from '@tessera/oci';

/** Same bound as Linux's MAXSYMLINKS-style loop protection in go-securejoin. */
const MAX_SYMLINKS = 255;

/**
 * Cleans an archive path lexically as if it were absolute inside the root: leading `/` and `..` that
 * climb above the root are dropped (the containerd/BuildKit behaviour). Returns the relative path
 * ("" for the root itself) and whether anything had to be confined.
 */
export function confineArchivePath(name: string): { relative: string; confined: boolean } {
  const relative = path.posix.join('/', name).slice(1).replace(/\/+$/, '');
  const naive = path.posix.normalize(name);
  const confined = name.startsWith('/') || naive === '..' || naive.startsWith('../');
  return { relative, confined };
}

function components(value: string): string[] {
  return value.split('/').filter((part) => part !== '' && part !== '.');
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export interface ResolveOptions {
  /** Follow a symlink at the last component (false: resolve to the link itself, as lstat/unlink/link need). */
  followFinal: boolean;
  /** Create every missing component as a directory (mode 0755): for resolving a parent directory. */
  createDirectories?: boolean;
}

/**
 * Resolves `unsafePath` inside `root` component by component, the way go-securejoin does: every symlink
 * met on the way is read and its target resolved as if `root` were `/`, and `..` never climbs above the
 * root. The result is a host path inside `root`, whatever the rootfs holds.
 *
 * Not safe against another process changing the rootfs concurrently (Node has no openat2/RESOLVE_IN_ROOT);
 * the extractor is the only writer of the rootfs while it runs.
 */
export async function resolveInRoot(root: string, unsafePath: string, options: ResolveOptions): Promise<string> {
  let pending = components(unsafePath);
  const resolved: string[] = [];
  let symlinks = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const isFinal = pending.length === 0;
    const candidate = path.join(root, ...resolved, part);
    let stats;
    try {
      stats = await lstat(candidate);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      if (options.createDirectories) await mkdir(candidate, { mode: 0o755 });
      resolved.push(part);
      continue;
    }
    if (stats.isSymbolicLink() && (!isFinal || options.followFinal)) {
      if (++symlinks > MAX_SYMLINKS) {
        throw new TesseraError(`too many levels of symbolic links resolving ${JSON.stringify(unsafePath)} inside the root`, 'SYMLINK_LOOP');
      }
      const target = await readlink(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      pending = [...components(target), ...pending];
      continue;
    }
    if ((!isFinal || options.createDirectories) && !stats.isDirectory()) {
      throw new TesseraError(`cannot resolve ${JSON.stringify(unsafePath)}: /${[...resolved, part].join('/')} is not a directory`, 'NOT_A_DIRECTORY');
    }
    resolved.push(part);
  }
  return path.join(root, ...resolved);
}
