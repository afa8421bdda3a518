import { constants, lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { lstat, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { join, posix, relative, sep } from 'node:path';
import { TesseraError } from '@tessera/oci';
import type { BuildContext } from './context';
import { isInside } from './context';
import { cleanPath, compileGoPattern, hasGlobMeta } from './glob';
import { createIgnoreMatcher, type IgnoreMatcher } from './ignore';

export type ContextEntryType = 'file' | 'directory' | 'symlink' | 'fifo' | 'char' | 'block';

/** One file found below a directory source. */
export interface ContextFile {
  /** Path relative to the directory source, `/`-separated. */
  relativePath: string;
  absolutePath: string;
  type: ContextEntryType;
  /** `lstat` of the file: links below a source are never followed. */
  stats: Stats;
  linkTarget?: string;
}

/** One COPY/ADD source after wildcard expansion, checked against the context and `.dockerignore`. */
export interface ResolvedSource {
  /** The source as written in the Dockerfile. */
  source: string;
  /** The matched path relative to the context root (`.` for the root itself). */
  relativePath: string;
  /** Where the content is read: the matched path, or a top-level symlink's target inside the context. */
  absolutePath: string;
  type: ContextEntryType;
  /** `stat` of what is copied (the target for a followed symlink, the link itself otherwise). */
  stats: Stats;
  /** Set when the source is a symlink copied as a link (its target is outside the context or missing). */
  linkTarget?: string;
  /** The path `COPY --parents` keeps: `relativePath`, or the part after a `/./` pivot in the source. */
  parentsPath: string;
  /** Whether the source came from a wildcard. */
  wildcard: boolean;
  /** For directories: the contents to copy, parents before children, filtered by `.dockerignore` and `--exclude`. */
  contents?: ContextFile[];
  /** Set when the `skipContents` option left the directory's contents to the caller: where the directory is in the context. */
  contentsSkipped?: { contextPath: string };
}

export interface ResolveCopySourcesOptions {
  /** The build's `.dockerignore` matcher (context-relative paths). */
  ignore: IgnoreMatcher;
  /** `COPY --exclude` patterns, matched against paths relative to each source (a wildcard match by its name). */
  excludes?: string[];
  /** Expand Go `filepath.Match` wildcards (`*`, `?`, `[...]`) per path segment, as Docker does. */
  allowWildcards?: boolean;
  /**
   * Passes each file below a directory source here, with the source's index in the result, instead of
   * keeping `contents`: a walk that only looks at each file once holds none of them in memory.
   */
  visit?: (file: ContextFile, sourceIndex: number) => void;
  /**
   * With `visit`: directory sources this says yes to are neither walked nor listed (`contentsSkipped`),
   * for a caller that takes their contents another way. Not asked for a directory `.dockerignore`
   * excludes, which is walked for what exceptions re-include. `contextPath` is where the directory is
   * in the context (a followed symlink's target).
   */
  skipContents?: (directory: string, stats: Stats, contextPath: string) => boolean;
}

function notFound(source: string): TesseraError {
  return new TesseraError(
    `COPY failed: file not found in build context or excluded by .dockerignore: ${source}`,
    'COPY_SOURCE_NOT_FOUND',
    'check the path relative to the build context and the .dockerignore patterns',
  );
}

function outsideContext(source: string): TesseraError {
  return new TesseraError(
    `COPY failed: forbidden path outside the build context: ${source}`,
    'COPY_SOURCE_OUTSIDE_CONTEXT',
    'sources are relative to the build context; move the file into the context or widen the context',
  );
}

const TYPE_BY_FORMAT = new Map<number, ContextEntryType>([
  [constants.S_IFREG, 'file'],
  [constants.S_IFDIR, 'directory'],
  [constants.S_IFLNK, 'symlink'],
  [constants.S_IFIFO, 'fifo'],
  [constants.S_IFCHR, 'char'],
  [constants.S_IFBLK, 'block'],
]);

/** The entry type from the mode's format bits (one lookup, not six method calls per walked file); sockets are not copied. */
function entryType(stats: Stats): ContextEntryType | undefined {
  return TYPE_BY_FORMAT.get(stats.mode & constants.S_IFMT);
}

const toSlash = (path: string) => (sep === '/' ? path : path.split(sep).join('/'));
const joinRelative = (base: string, name: string) => (base === '.' || base === '' ? name : `${base}/${name}`);

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

interface WalkFilters {
  ignore: IgnoreMatcher;
  exclude: IgnoreMatcher;
}

/** Where a walk is: a directory's paths in the context and in the source, and its patterns' match bits. */
interface WalkPosition {
  directory: string;
  contextPath: string;
  sourcePath: string;
  ignoreBits: number | undefined;
  excludeBits: number | undefined;
}

/** The match bits of a path below which a walk starts, from its parent directories down. */
function bitsOf(matcher: IgnoreMatcher, path: string): number | undefined {
  let bits: number | undefined = 0;
  if (path === '' || path === '.') return bits;
  let prefix = '';
  for (const segment of path.split('/')) {
    prefix = prefix ? `${prefix}/${segment}` : segment;
    bits = matcher.matchBits(prefix, bits ?? 0);
    if (bits === undefined) return undefined;
  }
  return bits;
}

/**
 * Where a walk's files go, in walk order. An excluded directory waits in `pending` and is passed on
 * only before the first file found below it (re-included by an exception).
 */
class WalkSink {
  readonly pending: ContextFile[] = [];
  count = 0;

  constructor(private readonly receive: (file: ContextFile) => void) {}

  add(file: ContextFile): void {
    for (const directory of this.pending) this.receive(directory);
    this.count += this.pending.length + 1;
    this.pending.length = 0;
    this.receive(file);
  }
}

/** Walks a directory source; each file goes to `receive`. Returns how many files it passed on. */
function walkFrom(directory: string, contextPath: string, filters: WalkFilters, receive: (file: ContextFile) => void): number {
  const sink = new WalkSink(receive);
  walkDirectory({ directory, contextPath, sourcePath: '', ignoreBits: bitsOf(filters.ignore, contextPath), excludeBits: 0 }, filters, sink);
  return sink.count;
}

/** Whether `path` is matched, by bits where the walk tracks them; an empty matcher matches nothing. */
function matchedBy(matcher: IgnoreMatcher, path: string, bits: number | undefined): boolean {
  if (matcher.patterns.length === 0) return false;
  return bits === undefined ? matcher.matches(path) : matcher.matchesByBits(bits);
}

/**
 * Walks a directory depth first in name order, parents before children. Excluded directories are
 * skipped unless an exception could re-include something below; such a directory is passed on only
 * if something below it is. Synchronous calls on purpose: a context tree is many small files, and a
 * thread-pool round trip per lstat costs ten times the call.
 */
function walkDirectory(at: WalkPosition, filters: WalkFilters, sink: WalkSink): void {
  const { ignore, exclude } = filters;
  const names = readdirSync(at.directory).sort();
  const prefix = at.directory.endsWith(sep) ? at.directory : at.directory + sep;
  for (const name of names) {
    const absolutePath = prefix + name;
    const stats = lstatSync(absolutePath);
    const type = entryType(stats);
    if (!type) continue;
    const inContext = joinRelative(at.contextPath, name);
    const inSource = joinRelative(at.sourcePath, name);
    const ignoreBits = ignore.patterns.length && at.ignoreBits !== undefined ? ignore.matchBits(inContext, at.ignoreBits) : at.ignoreBits;
    const excludeBits = exclude.patterns.length && at.excludeBits !== undefined ? exclude.matchBits(inSource, at.excludeBits) : at.excludeBits;
    const ignored = matchedBy(ignore, inContext, ignoreBits);
    const excludedByFlag = matchedBy(exclude, inSource, excludeBits);
    const excluded = ignored || excludedByFlag;
    if (type === 'directory') {
      const mayDescend =
        !excluded || ((!ignored || ignore.mightReincludeBelow(inContext)) && (!excludedByFlag || exclude.mightReincludeBelow(inSource)));
      if (!mayDescend) continue;
      const directory: ContextFile = { relativePath: inSource, absolutePath, type, stats };
      if (excluded) sink.pending.push(directory);
      else sink.add(directory);
      walkDirectory({ directory: absolutePath, contextPath: inContext, sourcePath: inSource, ignoreBits, excludeBits }, filters, sink);
      // Nothing below was re-included: the excluded directory is not passed on.
      if (excluded && sink.pending.at(-1) === directory) sink.pending.pop();
    } else if (!excluded) {
      const linkTarget = type === 'symlink' ? readlinkSync(absolutePath) : undefined;
      sink.add({ relativePath: inSource, absolutePath, type, stats, linkTarget });
    }
  }
}

/** Expands a wildcard source segment by segment (Go `filepath.Match` per segment), in name order. */
async function expandWildcard(root: string, pattern: string): Promise<string[]> {
  let candidates = ['.'];
  for (const segment of pattern.split('/')) {
    const next: string[] = [];
    for (const base of candidates) {
      if (!hasGlobMeta(segment)) {
        next.push(joinRelative(base, segment));
        continue;
      }
      // Never list a directory reached through a symlink that leaves the context.
      const real = await realpath(join(root, base)).catch(() => undefined);
      if (!real || !isInside(root, real)) continue;
      const directoryStats = await stat(real);
      if (!directoryStats.isDirectory()) continue;
      const matches = compileGoPattern(segment);
      for (const name of (await readdir(real)).sort()) if (matches(name)) next.push(joinRelative(base, name));
    }
    candidates = next;
  }
  return candidates;
}

/** The part of a source kept by `--parents`: everything, or what follows a `/./` pivot. */
function parentsPathOf(written: string, relativePath: string): string {
  const body = written.replace(/^\/+/, '').replace(/^(\.\/)+/, '');
  const pivot = body.lastIndexOf('/./');
  if (pivot < 0) return relativePath;
  const prefix = cleanPath(body.slice(0, pivot));
  return relativePath.startsWith(`${prefix}/`) ? relativePath.slice(prefix.length + 1) : relativePath;
}

async function resolveOne(
  root: string,
  written: string,
  relativePath: string,
  wildcard: boolean,
  filters: WalkFilters,
  visit?: (file: ContextFile) => void,
  skipContents?: (directory: string, stats: Stats, contextPath: string) => boolean,
): Promise<ResolvedSource | undefined> {
  const matchedPath = join(root, relativePath);
  // A parent directory that is a symlink must not lead out of the context.
  if (relativePath !== '.') {
    const realParent = await realpath(join(matchedPath, '..')).catch(() => undefined);
    if (realParent && !isInside(root, realParent)) throw outsideContext(written);
  }
  const linkStats = await lstatOrUndefined(matchedPath);
  if (!linkStats) return undefined;
  if (relativePath !== '.' && filters.ignore.matches(relativePath) && !(linkStats.isDirectory() && filters.ignore.mightReincludeBelow(relativePath))) {
    return undefined;
  }
  if (wildcard && filters.exclude.matches(posix.basename(relativePath))) return undefined;

  let absolutePath = matchedPath;
  let stats = linkStats;
  let contextPath = relativePath;
  let linkTarget: string | undefined;
  if (linkStats.isSymbolicLink()) {
    // BuildKit follows a symlink named as a source; we follow it only while it stays in the context.
    const target = await realpath(matchedPath).catch(() => undefined);
    if (target && isInside(root, target)) {
      absolutePath = target;
      stats = await stat(target);
      contextPath = toSlash(relative(root, target)) || '.';
      if (contextPath !== '.' && filters.ignore.matches(contextPath) && !(stats.isDirectory() && filters.ignore.mightReincludeBelow(contextPath))) {
        return undefined;
      }
    } else {
      linkTarget = await readlink(matchedPath);
    }
  }
  const type = entryType(stats);
  if (!type) return undefined;
  const resolved: ResolvedSource = {
    source: written,
    relativePath,
    absolutePath,
    type,
    stats,
    linkTarget,
    parentsPath: parentsPathOf(written, relativePath),
    wildcard,
  };
  if (type === 'directory') {
    const excludedItself = contextPath !== '.' && filters.ignore.matches(contextPath);
    if (visit && !excludedItself && skipContents?.(absolutePath, stats, contextPath)) {
      resolved.contentsSkipped = { contextPath };
      return resolved;
    }
    let found: number;
    if (visit) found = walkFrom(absolutePath, contextPath, filters, visit);
    else {
      const contents: ContextFile[] = [];
      found = walkFrom(absolutePath, contextPath, filters, (file) => contents.push(file));
      resolved.contents = contents;
    }
    if (excludedItself && found === 0) return undefined;
  }
  return resolved;
}

/** A COPY/ADD source as a clean context-relative path (absolute sources are relative to the root); `undefined` when it leaves the context. */
export function sourcePathInContext(written: string): string | undefined {
  const relativePath = cleanPath(written.replace(/^\/+/, '') || '.');
  return relativePath === '..' || relativePath.startsWith('../') ? undefined : relativePath;
}

/**
 * Resolves COPY/ADD sources against the context: wildcards expanded, `.dockerignore` applied,
 * `..` and symlinks leaving the context refused. A symlink named as a source (or matched by a
 * wildcard) is followed when its target is inside the context, as BuildKit does; symlinks below a
 * directory source are kept as links. Absolute sources are relative to the context root, as in Docker.
 */
export async function resolveCopySources(
  context: Pick<BuildContext, 'root'>,
  sources: string[],
  options: ResolveCopySourcesOptions,
): Promise<ResolvedSource[]> {
  const root = context.root;
  const filters: WalkFilters = { ignore: options.ignore, exclude: createIgnoreMatcher(options.excludes ?? []) };
  const resolved: ResolvedSource[] = [];
  for (const written of sources) {
    const relativePath = sourcePathInContext(written);
    if (relativePath === undefined) throw outsideContext(written);
    const wildcard = options.allowWildcards !== false && hasGlobMeta(relativePath);
    const candidates = wildcard ? await expandWildcard(root, relativePath) : [relativePath];
    let found = 0;
    for (const candidate of candidates) {
      const index = resolved.length;
      const source = await resolveOne(root, written, candidate, wildcard, filters, options.visit && ((file) => options.visit!(file, index)), options.skipContents);
      if (source) {
        resolved.push(source);
        found++;
      }
    }
    if (found === 0) throw notFound(written);
  }
  return resolved;
}
