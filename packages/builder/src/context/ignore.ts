import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { cleanPath, compileGoPattern, escapeRegexChar, translateCharClass } from './glob';
import { TesseraError } from '@tessera/oci';

/** One cleaned `.dockerignore` pattern. */
export interface IgnorePattern {
  /** The cleaned pattern, without the leading `!`. */
  pattern: string;
  /** A `!` pattern: re-includes what it matches. */
  exclusion: boolean;
  matches(path: string): boolean;
}

/** Matches context-relative paths (`/`-separated) against `.dockerignore` patterns, moby/patternmatcher style. */
export interface IgnoreMatcher {
  readonly patterns: readonly IgnorePattern[];
  /** Whether `path` is excluded: the last pattern matching the path or one of its parent directories wins. */
  matches(path: string): boolean;
  /**
   * Whether an exception (`!pattern`) could re-include something below the excluded directory `dir`,
   * so a walk must still descend into it. Conservative: may say yes when nothing is re-included.
   */
  mightReincludeBelow(dir: string): boolean;
  /** The patterns that might match something below the directory `dir` (conservative: may name more). */
  patternsBelow(dir: string): IgnorePattern[];
  /**
   * For walks, which visit parents before children: one bit per pattern, set when the pattern matches
   * `path` or a parent (`parentBits` is the parent directory's result, 0 at the top). Each pattern then
   * runs once per path instead of once per parent directory. `undefined` when there are more patterns
   * than bits; the walk then calls `matches`.
   */
  matchBits(path: string, parentBits: number): number | undefined;
  /** `matches` from `matchBits`' result: the last pattern that matched wins. */
  matchesByBits(bits: number): boolean;
}

const MAX_BIT_PATTERNS = 31;

/**
 * Compiles one cleaned pattern the way moby's patternmatcher does: `*` and `?` stay within a path segment,
 * `**` spans segments (`**` + `/` also matches zero segments), `[...]` classes and `\` escapes as in Go.
 */
function compilePattern(pattern: string): (path: string) => boolean {
  let regex = '^';
  let kind: 'exact' | 'prefix' | 'suffix' | 'regexp' = 'exact';
  for (let i = 0; i < pattern.length; ) {
    const ch = pattern[i];
    if (ch === '*' && pattern[i + 1] === '*') {
      const first = i === 0;
      i += 2;
      if (pattern[i] === '/') i++;
      if (i >= pattern.length) {
        // A trailing `**` matches everything below, as in .gitignore.
        if (kind === 'exact') kind = 'prefix';
        else {
          regex += '.*';
          kind = 'regexp';
        }
      } else {
        regex += '(.*/)?';
        kind = 'regexp';
      }
      if (first) kind = 'suffix';
    } else if (ch === '*') {
      regex += '[^/]*';
      kind = 'regexp';
      i++;
    } else if (ch === '?') {
      regex += '[^/]';
      kind = 'regexp';
      i++;
    } else if (ch === '[') {
      const cls = translateCharClass(pattern, i);
      regex += cls.regex;
      kind = 'regexp';
      i = cls.next;
    } else if (ch === '\\') {
      if (i + 1 < pattern.length) {
        regex += escapeRegexChar(pattern[i + 1]);
        kind = 'regexp';
        i += 2;
      } else {
        regex += '\\\\';
        i++;
      }
    } else {
      regex += escapeRegexChar(ch);
      i++;
    }
  }
  switch (kind) {
    case 'exact':
      return (path) => path === pattern;
    case 'prefix': {
      const prefix = pattern.slice(0, -2);
      return (path) => path.startsWith(prefix);
    }
    case 'suffix': {
      // `**/foo` (or `**foo`): anything ending in the literal rest, or the rest itself.
      const suffix = pattern.slice(2);
      if (suffix === '') return () => true;
      return (path) => path.endsWith(suffix) || (suffix.startsWith('/') && path === suffix.slice(1));
    }
    case 'regexp': {
      const compiled = new RegExp(regex + '$', 's');
      return (path) => compiled.test(path);
    }
  }
}

function normalizePattern(raw: string): { pattern: string; exclusion: boolean } | undefined {
  let text = raw.trim();
  if (text === '') return undefined;
  let exclusion = false;
  if (text.startsWith('!')) {
    exclusion = true;
    text = text.slice(1).trim();
    if (text === '') throw new TesseraError('illegal exclusion pattern: "!"', 'BAD_PATTERN');
  }
  let pattern = cleanPath(text);
  // Context paths are relative, so `/foo` means `foo`.
  if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
  return { pattern, exclusion };
}

export function createIgnoreMatcher(patterns: readonly string[]): IgnoreMatcher {
  const compiled: IgnorePattern[] = [];
  for (const raw of patterns) {
    const normalized = normalizePattern(raw);
    if (!normalized) continue;
    // Validates the syntax the way Go's filepath.Match would.
    compileGoPattern(normalized.pattern);
    compiled.push({ ...normalized, matches: compilePattern(normalized.pattern) });
  }
  const exceptions = compiled.filter((p) => p.exclusion);

  const matches = (path: string): boolean => {
    const file = cleanPath(path);
    const parent = file.includes('/') ? file.slice(0, file.lastIndexOf('/')) : '.';
    const parentDirs = parent.split('/');
    let matched = false;
    for (const pattern of compiled) {
      // An exclusion only matters once something matched, an inclusion only while nothing has.
      if (pattern.exclusion !== matched) continue;
      let match = pattern.matches(file);
      if (!match && parent !== '.') {
        for (let i = 1; i <= parentDirs.length && !match; i++) match = pattern.matches(parentDirs.slice(0, i).join('/'));
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  };

  const patternsBelow = (dir: string): IgnorePattern[] => {
    const clean = cleanPath(dir);
    if (clean === '.') return compiled;
    const dirSegments = clean.split('/');
    return compiled.filter(({ pattern }) => {
      const segments = pattern.split('/');
      for (let i = 0; i < dirSegments.length; i++) {
        const segment = segments[i];
        if (segment === undefined || segment.includes('**')) return true;
        if (!compileGoPattern(segment)(dirSegments[i])) return false;
      }
      return segments.length > dirSegments.length;
    });
  };
  const mightReincludeBelow = (dir: string): boolean => exceptions.length > 0 && patternsBelow(dir).some((p) => p.exclusion);

  const trackable = compiled.length <= MAX_BIT_PATTERNS;
  const matchBits = (path: string, parentBits: number): number | undefined => {
    if (!trackable) return undefined;
    let bits = parentBits;
    for (let i = 0; i < compiled.length; i++) if (!(bits & (1 << i)) && compiled[i]!.matches(path)) bits |= 1 << i;
    return bits;
  };
  const matchesByBits = (bits: number): boolean => {
    let matched = false;
    for (let i = 0; i < compiled.length; i++) if (compiled[i]!.exclusion === matched && bits & (1 << i)) matched = !matched;
    return matched;
  };

  return { patterns: compiled, matches, mightReincludeBelow, patternsBelow, matchBits, matchesByBits };
}

/** Parses `.dockerignore` text: `#` comment lines, blank lines skipped, a UTF-8 BOM dropped. */
export function parseIgnoreFile(text: string): string[] {
  const patterns: string[] = [];
  for (const [index, line] of text.split(/\r?\n/).entries()) {
    const content = index === 0 ? line.replace(/^\uFEFF/, '') : line;
    if (content.startsWith('#')) continue;
    const normalized = normalizePattern(content);
    if (normalized) patterns.push((normalized.exclusion ? '!' : '') + normalized.pattern);
  }
  return patterns;
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * The ignore patterns of a build: `<Dockerfile>.dockerignore` beside the Dockerfile wins over
 * `<context>/.dockerignore` (BuildKit's rule); neither present means no patterns.
 */
export async function loadIgnorePatterns(contextRoot: string, dockerfilePath?: string): Promise<string[]> {
  if (dockerfilePath) {
    const specific = await readIfPresent(join(dirname(dockerfilePath), `${basename(dockerfilePath)}.dockerignore`));
    if (specific !== undefined) return parseIgnoreFile(specific);
  }
  const general = await readIfPresent(join(contextRoot, '.dockerignore'));
  return general === undefined ? [] : parseIgnoreFile(general);
}
