import { describe, expect, it } from 'vitest';
import { ShellExpansionError } from './errors';
import { expandHeredocContent, expandWord, expandWords } from './shell-lexer';

const env = new Map<string, string>([
  ['A', 'a'],
  ['B', 'b'],
  ['EMPTY', ''],
  ['SPACED', 'x  y'],
  ['PATHV', '/usr/local/bin/node'],
  ['FILE', 'archive.tar.gz'],
]);

describe('expandWord', () => {
  it.each([
    ['plain', 'plain'],
    ['$A', 'a'],
    ['${A}', 'a'],
    ['pre-$A-post', 'pre-a-post'],
    ['${A}b', 'ab'],
    ['$Ab', ''], // the name is Ab, which is unset
    ['$UNSET', ''],
    ['${UNSET}', ''],
    ['$', '$'],
    ['a$', 'a$'],
    ['$/x', '$/x'],
    ['${A:-d}', 'a'],
    ['${UNSET:-d}', 'd'],
    ['${EMPTY:-d}', 'd'],
    ['${A-d}', 'a'],
    ['${UNSET-d}', 'd'],
    ['${EMPTY-d}', ''],
    ['${A:+x}', 'x'],
    ['${UNSET:+x}', ''],
    ['${EMPTY:+x}', ''],
    ['${A+x}', 'x'],
    ['${UNSET+x}', ''],
    ['${EMPTY+x}', 'x'],
    ['${A:?boom}', 'a'],
    ['${EMPTY?boom}', ''],
    ['${UNSET:-${B}}', 'b'],
    ['${UNSET:-${ALSO_UNSET:-deep}}', 'deep'],
    ['${UNSET:-$A$B}', 'ab'],
    ['${UNSET:-a b}', 'a b'],
    ['${UNSET:-\\}}', '}'],
    ['${UNSET:-"q}"}', 'q}'],
    ["'$A'", '$A'],
    ['"$A"', 'a'],
    ['"${A}-x"', 'a-x'],
    ["\"'$A'\"", "'a'"],
    ["'\"$A\"'", '"$A"'],
    ['\\$A', '$A'],
    ['\\${A}', '${A}'],
    ['"\\$A"', '$A'],
    ['"a\\"b"', 'a"b'],
    ['"a\\nb"', 'a\\nb'],
    ['a\\ b', 'a b'],
    ['a\\', 'a'],
    ['$SPACED', 'x  y'],
    ['"$SPACED"', 'x  y'],
    ['${PATHV##*/}', 'node'],
    ['${PATHV#*/}', 'usr/local/bin/node'],
    ['${FILE%.*}', 'archive.tar'],
    ['${FILE%%.*}', 'archive'],
    ['${FILE/tar/zip}', 'archive.zip.gz'],
    ['${FILE//a/A}', 'Archive.tAr.gz'],
    ['${FILE#nomatch}', 'archive.tar.gz'],
    ['$1', ''],
    ['$@x', 'x'],
  ])('%s → %s', (word, expected) => {
    expect(expandWord(word, env)).toBe(expected);
  });

  it('keeps the escape character literal when the escape directive is a backtick', () => {
    expect(expandWord('C:\\path\\$A', env, { escapeToken: '`' })).toBe('C:\\path\\a');
    expect(expandWord('`$A', env, { escapeToken: '`' })).toBe('$A');
  });

  it('accepts a lookup function as env', () => {
    expect(expandWord('${X:-none}/$Y', (name) => (name === 'Y' ? 'y' : undefined))).toBe('none/y');
  });

  it('records referenced and unset variables', () => {
    const referenced = new Set<string>();
    const unset = new Set<string>();
    expandWord('$A ${NOPE:-${B}} \\$ESCAPED \'$QUOTED\' "$DQ"', env, { referenced, unset });
    expect([...referenced].sort()).toEqual(['A', 'B', 'DQ', 'NOPE']);
    expect([...unset].sort()).toEqual(['DQ', 'NOPE']);
  });

  it('keeps unset references with skipUnset', () => {
    expect(expandWord('$A/$NOPE/${NOPE2}/${NOPE3:-x}', env, { skipUnset: true })).toBe('a/$NOPE/${NOPE2}/${NOPE3:-x}');
  });

  it('keeps quotes and escapes when asked', () => {
    expect(expandWord('"a b" \'c\' \\d', env, { rawQuotes: true, rawEscapes: true })).toBe('"a b" \'c\' \\d');
  });

  it.each([
    ['${UNSET:?must be set}', 'UNSET: must be set'],
    ['${UNSET?}', 'UNSET: is not allowed to be unset'],
    ['${EMPTY:?}', 'EMPTY: is not allowed to be empty'],
    ['${}', 'bad substitution'],
    ['${:a}', 'bad substitution'],
    ['${A', "missing '}'"],
    ['${A:-x', "missing '}'"],
    ['${A:x}', 'unsupported modifier (:x) in substitution'],
    ['${A!}', 'unsupported modifier (!) in substitution'],
    ["'open", 'matching single-quote'],
    ['"open', 'matching double-quote'],
  ])('%s fails with %s', (word, message) => {
    expect(() => expandWord(word, env)).toThrow(ShellExpansionError);
    expect(() => expandWord(word, env)).toThrow(message);
  });
});

describe('expandWords', () => {
  it.each([
    ['a b  c', ['a', 'b', 'c']],
    ['"a b" c', ['a b', 'c']],
    ["'a b' c", ['a b', 'c']],
    ['a\\ b c', ['a b', 'c']],
    ['$SPACED z', ['x', 'y', 'z']],
    ['"$SPACED" z', ['x  y', 'z']],
    ['pre"mid dle"post', ['premid dlepost']],
    ['$EMPTY', []],
    ['  ', []],
    ['80/tcp ${PORT:-443}/udp', ['80/tcp', '443/udp']],
  ])('%s → %j', (text, expected) => {
    expect(expandWords(text, env)).toEqual(expected);
  });
});

describe('expandHeredocContent', () => {
  it('expands variables and keeps quotes and other escapes', () => {
    expect(expandHeredocContent('echo "$A" \'${B}\' \\$C \\n\n', env)).toBe('echo "a" \'b\' $C \\n\n');
  });
});
