import { describe, expect, it } from 'vitest';
import { createIgnoreMatcher, parseIgnoreFile } from './ignore';

describe('createIgnoreMatcher (moby/patternmatcher semantics)', () => {
  const cases: [patterns: string[], path: string, excluded: boolean][] = [
    [['foo'], 'foo', true],
    [['foo'], 'foo/bar', true], // a matching directory excludes its contents
    [['foo'], 'bar/foo', false], // patterns are anchored at the context root
    [['foo'], 'foobar', false],
    [['*.md'], 'README.md', true],
    [['*.md'], 'docs/a.md', false], // `*` stays within one segment
    [['**/*.md'], 'docs/deep/a.md', true],
    [['**/*.md'], 'a.md', true], // `**/` also matches zero segments
    [['*.md', '!README.md'], 'README.md', false],
    [['*.md', '!README.md'], 'CHANGES.md', true],
    [['!README.md', '*.md'], 'README.md', true], // the last matching pattern wins
    [['docs', '!docs/keep.md'], 'docs/keep.md', false],
    [['docs', '!docs/keep.md'], 'docs/other.md', true],
    [['a/*/c'], 'a/b/c', true],
    [['a/*/c'], 'a/b/x/c', false],
    [['a/**/c'], 'a/b/x/c', true],
    [['a/**/c'], 'a/c', true],
    [['a?c'], 'abc', true],
    [['a?c'], 'a/c', false], // `?` never matches a separator
    [['a?c'], 'ac', false],
    [['[a-c]x'], 'bx', true],
    [['[a-c]x'], 'dx', false],
    [['[^a-c]x'], 'dx', true],
    [['[^a-c]x'], 'ax', false],
    [['./foo/../bar/'], 'bar/baz', true], // patterns are cleaned
    [['/abs'], 'abs', true], // a leading slash is the context root
    [['foo/**'], 'foo/x/y', true],
    [['foo/**'], 'foo', false], // `foo/**` matches below foo, not foo itself
    [['**'], 'any/thing', true],
    [['\\*literal'], '*literal', true], // backslash escapes a metacharacter
    [['\\*literal'], 'xliteral', false],
    [['  spaced.txt  '], 'spaced.txt', true],
    [['*', '!keep'], 'keep', false],
    [['*', '!keep'], 'keep/child', false], // an exception on a directory re-includes its contents
    [['*', '!keep'], 'other', true],
    [['dir/*.log'], 'dir/sub/a.log', false],
    [['dir/*.log'], 'dir/a.log', true],
    [['**/node_modules'], 'a/b/node_modules/x/y', true],
    [['foo.txt'], './foo.txt', true], // paths are cleaned too
    [['.git'], '.gitignore', false],
    [['*'], '.hidden', true], // `*` matches dotfiles, as Go's filepath.Match does
    [['**/*.go'], 'a/b.go/c', true], // parent directory b.go matches
    [['**foo'], 'afoo', true], // leading `**` without a slash is a plain suffix
    [['[]a]x'], ']x', true], // `]` right after `[` is literal
    [['!x'], 'x', false], // an exception alone excludes nothing
  ];

  it.each(cases)('%j excludes %s: %s', (patterns, path, excluded) => {
    expect(createIgnoreMatcher(patterns).matches(path)).toBe(excluded);
  });

  // The walk's per-pattern bits, built parent by parent, must agree with matching each whole path.
  it.each(cases.filter(([, path]) => !path.startsWith('./')))('%j by bits along %s agrees with matches', (patterns, path) => {
    const matcher = createIgnoreMatcher(patterns);
    let bits = 0;
    let prefix = '';
    for (const segment of path.split('/')) {
      prefix = prefix ? `${prefix}/${segment}` : segment;
      bits = matcher.matchBits(prefix, bits)!;
      expect(matcher.matchesByBits(bits)).toBe(matcher.matches(prefix));
    }
  });

  it('has no bits to give past 31 patterns, so a walk falls back to matches', () => {
    const many = createIgnoreMatcher(Array.from({ length: 32 }, (_, i) => `p${i}`));
    expect(many.matchBits('p1', 0)).toBeUndefined();
    expect(createIgnoreMatcher(['p1']).matchBits('p1', 0)).toBe(1);
  });

  it('refuses malformed patterns', () => {
    expect(() => createIgnoreMatcher(['a[b'])).toThrow(/invalid pattern/);
    expect(() => createIgnoreMatcher(['!'])).toThrow(/illegal exclusion/);
  });

  it('says when an excluded directory must still be descended', () => {
    const matcher = createIgnoreMatcher(['node_modules', '!node_modules/keep/file', 'dist']);
    expect(matcher.mightReincludeBelow('node_modules')).toBe(true);
    expect(matcher.mightReincludeBelow('node_modules/keep')).toBe(true);
    expect(matcher.mightReincludeBelow('node_modules/other')).toBe(false);
    expect(matcher.mightReincludeBelow('dist')).toBe(false);
    expect(createIgnoreMatcher(['a', '!**/x']).mightReincludeBelow('a/b')).toBe(true);
    expect(createIgnoreMatcher(['a', '!*/x']).mightReincludeBelow('a')).toBe(true);
    expect(createIgnoreMatcher(['a', '!b/x']).mightReincludeBelow('a')).toBe(false);
  });
});

describe('parseIgnoreFile', () => {
  it('drops comments, blanks and the BOM, cleans and keeps exceptions', () => {
    expect(parseIgnoreFile('\uFEFF# comment\nfoo\n\n  !bar/  \r\n/baz\n  # not a comment? \n')).toEqual(['foo', '!bar', 'baz', '# not a comment?']);
  });
});
