import { describe, expect, it } from 'vitest';
import { cleanPath, compileGoPattern, hasGlobMeta } from './glob';

describe('Go filepath.Match patterns', () => {
  it.each([
    ['*.js', 'a.js', true],
    ['*.js', '.js', true],
    ['*', 'a/b', false],
    ['a?c', 'abc', true],
    ['[abc]', 'b', true],
    ['[^abc]', 'b', false],
    ['[a-z][0-9]', 'q7', true],
    ['[\\]]', ']', true],
    ['\\*', '*', true],
    ['\\*', 'x', false],
    ['a.b', 'axb', false], // regex metacharacters are literal
    ['(x)+', '(x)+', true],
  ])('%s matches %s: %s', (pattern, name, expected) => {
    expect(compileGoPattern(pattern)(name)).toBe(expected);
  });

  it('rejects bad patterns', () => {
    expect(() => compileGoPattern('[a')).toThrow(/unterminated/);
    expect(() => compileGoPattern('[z-a]')).toThrow(/bad range/);
    expect(() => compileGoPattern('a\\')).toThrow(/trailing backslash/);
  });

  it('detects metacharacters and cleans like Go', () => {
    expect(hasGlobMeta('a/b.txt')).toBe(false);
    expect(hasGlobMeta('a/*.txt')).toBe(true);
    expect(cleanPath('./a//b/../c/')).toBe('a/c');
    expect(cleanPath('/')).toBe('/');
    expect(cleanPath('')).toBe('.');
  });
});
