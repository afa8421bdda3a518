import { spawn } from 'node:child_process';
import type { Stats } from 'node:fs';
import { isAbsolute } from 'node:path';
import { createHasher, toHex } from './hash';
import type { IgnoreMatcher } from './ignore';

/**
 * A directory with at least this many subdirectories (its link count less two) is listed by GNU find
 * instead of walked in Node: tens of thousands of lstat calls cost Node's main thread several
 * microseconds each, while find runs on the other core, and can start before the build reaches the COPY.
 */
export const LISTED_TREE_MIN_SUBDIRECTORIES = 64;

/** Per entry: type, mode, uid, gid, size, mtime, ctime (nanoseconds), inode, device, link target, path; each ends in NUL. */
const FIND_FORMAT = ['%y', '%m', '%U', '%G', '%s', '%T@', '%C@', '%i', '%D', '%l', '%P'].map((directive) => `${directive}\\0`).join('');

/**
 * `**` + `/` + one segment of plain characters and `*`: means the same to find's `-name` (bytes, in the
 * C locale) as to `.dockerignore`. `?` is left out: it is one byte to find but one character to Go.
 */
const NAME_ANYWHERE = /^\*\*\/([^/[\]\\?]+)$/;

/** Whether a directory is big enough to be listed by find (see `LISTED_TREE_MIN_SUBDIRECTORIES`). */
export function isListedTree(stats: Pick<Stats, 'nlink' | 'isDirectory'>): boolean {
  return stats.isDirectory() && stats.nlink - 2 >= LISTED_TREE_MIN_SUBDIRECTORIES;
}

/**
 * The names find must prune so that its listing of the context directory `contextPath` leaves out
 * exactly what `.dockerignore` does: only patterns of the form `**` + `/name` can reach below it. `undefined` when
 * another pattern (an anchored path, a `[class]`, an exception) could: then the tree is walked in Node.
 */
export function findPrunes(ignore: IgnoreMatcher, contextPath: string): string[] | undefined {
  const names: string[] = [];
  for (const pattern of ignore.patternsBelow(contextPath)) {
    const name = NAME_ANYWHERE.exec(pattern.pattern)?.[1];
    if (pattern.exclusion || !name) return undefined;
    names.push(name);
  }
  return names;
}

/**
 * A digest of what is below a directory, from GNU find's listing: every path with its type, mode, ids,
 * size, mtime and ctime (nanoseconds), inode, device and link target, the stat fields that stand for
 * content as in `FileHashMemo`; `prune` names are left out with everything below them. The listing
 * streams into the hash; nothing is kept. `undefined` when find is missing, is not GNU find, or reports
 * any error: the caller then walks the tree itself.
 */
export async function listedTreeDigest(directory: string, prune: readonly string[]): Promise<string | undefined> {
  if (!isAbsolute(directory)) throw new Error(`listedTreeDigest needs an absolute path, not ${directory}`);
  const hasher = await createHasher();
  const pruning = prune.length ? ['(', ...prune.flatMap((name, i) => [...(i ? ['-o'] : []), '-name', name]), ')', '-prune', '-o'] : [];
  const child = spawn('find', [directory, '-mindepth', '1', ...pruning, '-printf', FIND_FORMAT], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  let complaint = '';
  child.stderr.on('data', (chunk: Buffer) => (complaint += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('close', (code) => resolve(code));
  });
  hasher.update(Buffer.from(`tessera-find-v1\0${prune.join('\0')}\0`));
  let bytes = 0;
  try {
    for await (const chunk of child.stdout) {
      hasher.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  } catch {
    return undefined;
  }
  const code = await exited;
  // GNU find prints at least one field per entry; an empty listing of a big directory means it printed nothing.
  return code === 0 && complaint === '' && bytes > 0 ? toHex(hasher.digest()) : undefined;
}

/**
 * Listings of big directories by find, started as early as a build knows their paths (before the COPY
 * that needs them) and shared by every instruction that copies them.
 */
export class TreeListings {
  private readonly digests = new Map<string, Promise<string | undefined>>();

  constructor(private readonly ignore: IgnoreMatcher) {}

  /**
   * The digest of a big directory's listing (see `listedTreeDigest`), started now if `prefetch` did not;
   * `undefined` when `.dockerignore` or find rule it out.
   */
  digest(directory: string, contextPath: string): Promise<string | undefined> {
    const key = `${directory}\0${contextPath}`;
    let digest = this.digests.get(key);
    if (!digest) {
      const prune = findPrunes(this.ignore, contextPath);
      digest = prune ? listedTreeDigest(directory, prune) : Promise.resolve(undefined);
      this.digests.set(key, digest);
    }
    return digest;
  }

  /** Whether a directory is listed by find: big enough, and `.dockerignore` means the same to find there. */
  lists(stats: Pick<Stats, 'nlink' | 'isDirectory'>, contextPath: string): boolean {
    return isListedTree(stats) && findPrunes(this.ignore, contextPath) !== undefined;
  }

  /** Starts listing `directory` (absolute, at `contextPath` in the context) if it `lists` it. */
  prefetch(directory: string, contextPath: string, stats: Pick<Stats, 'nlink' | 'isDirectory'>): void {
    if (this.lists(stats, contextPath)) void this.digest(directory, contextPath);
  }
}
