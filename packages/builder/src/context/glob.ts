import { posix } from 'node:path';
import { TesseraError } from '@tessera/oci';

/** Go's `filepath.Clean` for `/`-separated paths: like `posix.normalize`, but without a trailing slash. */
export function cleanPath(path: string): string {
  const normalized = posix.normalize(path);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

/** Whether `pattern` holds a Go `filepath.Match` metacharacter. */
export function hasGlobMeta(pattern: string): boolean {
  return /[*?[\\]/.test(pattern);
}

function badPattern(pattern: string, reason: string): TesseraError {
  return new TesseraError(`invalid pattern ${JSON.stringify(pattern)}: ${reason}`, 'BAD_PATTERN');
}

function escapeRegexChar(ch: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(ch) ? `\\${ch}` : ch;
}

/**
 * Translates the character class that starts at `pattern[start] === '['` (Go `filepath.Match` syntax:
 * `[^...]` negates, `lo-hi` ranges, `\` escapes, a `]` right after the opening is literal).
 * A class never matches `/`, as in Go.
 */
export function translateCharClass(pattern: string, start: number): { regex: string; next: number } {
  let i = start + 1;
  let negated = false;
  if (pattern[i] === '^') {
    negated = true;
    i++;
  }
  const readChar = (): string => {
    let ch = pattern[i];
    if (ch === '\\') {
      i++;
      ch = pattern[i];
    }
    if (ch === undefined) throw badPattern(pattern, 'unterminated character class');
    i++;
    return ch;
  };
  let body = '';
  let ranges = 0;
  for (;;) {
    if (i >= pattern.length) throw badPattern(pattern, 'unterminated character class');
    if (pattern[i] === ']' && ranges > 0) {
      i++;
      break;
    }
    const lo = readChar();
    let hi = lo;
    if (pattern[i] === '-' && pattern[i + 1] !== undefined && pattern[i + 1] !== ']') {
      i++;
      hi = readChar();
      if (hi < lo) throw badPattern(pattern, `bad range ${lo}-${hi}`);
    }
    body += lo === hi ? escapeRegexChar(lo) : `${escapeRegexChar(lo)}-${escapeRegexChar(hi)}`;
    ranges++;
  }
  return { regex: negated ? `[^/${body}]` : `(?!/)[${body}]`, next: i };
}

/** Regex source for one Go `filepath.Match` pattern: `*` and `?` never match `/`. */
export function goPatternRegexSource(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; ) {
    const ch = pattern[i];
    if (ch === '*') {
      out += '[^/]*';
      i++;
    } else if (ch === '?') {
      out += '[^/]';
      i++;
    } else if (ch === '[') {
      const cls = translateCharClass(pattern, i);
      out += cls.regex;
      i = cls.next;
    } else if (ch === '\\') {
      if (i + 1 >= pattern.length) throw badPattern(pattern, 'trailing backslash');
      out += escapeRegexChar(pattern[i + 1]);
      i += 2;
    } else {
      out += escapeRegexChar(ch);
      i++;
    }
  }
  return out;
}

/** Compiles a Go `filepath.Match` pattern into a whole-string matcher. */
export function compileGoPattern(pattern: string): (name: string) => boolean {
  const regex = new RegExp(`^${goPatternRegexSource(pattern)}$`, 's');
  return (name) => regex.test(name);
}

export { escapeRegexChar };
