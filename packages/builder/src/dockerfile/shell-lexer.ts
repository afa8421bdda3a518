import { ShellExpansionError } from './errors';

/** Variables visible to an expansion: a map, or a lookup returning undefined for an unset name. */
export type ExpansionEnv = ReadonlyMap<string, string> | ((name: string) => string | undefined);

export type EscapeToken = '\\' | '`';

export interface ExpandOptions {
  /** The Dockerfile's escape character (the `# escape=` directive); default `\`. */
  escapeToken?: EscapeToken;
  /** Receives every variable name the word references, set or not (cache keys, secret-arg warnings). */
  referenced?: Set<string>;
  /** Receives the referenced names that were unset. */
  unset?: Set<string>;
  /** Leave references to unset variables as written instead of expanding them to ''. */
  skipUnset?: boolean;
  /** Keep quote characters in the result (quotes still group words). */
  rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  rawEscapes?: boolean;
}

/**
 * Expands one word the way BuildKit's shell lexer does: `$V`, `${V}`, `${V:-d}`, `${V-d}`,
 * `${V:+x}`, `${V+x}`, `${V:?msg}`, `${V?msg}`, `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`,
 * `${V/p/r}`, `${V//p/r}`; quotes are removed, single quotes prevent expansion, and the
 * escape character makes the next character literal. Spaces are kept.
 */
export function expandWord(word: string, env: ExpansionEnv, options: ExpandOptions = {}): string {
  return new ShellLexer(word, env, options).run().value;
}

/** Like expandWord, then splits into words on unquoted whitespace (including whitespace that came from a variable). */
export function expandWords(text: string, env: ExpansionEnv, options: ExpandOptions = {}): string[] {
  return new ShellLexer(text, env, options).run().words;
}

/**
 * Expands heredoc content as a shell expands an unquoted heredoc body: `$` references are
 * replaced, the escape character only escapes `$`, itself and a newline, and quotes are literal.
 */
export function expandHeredocContent(content: string, env: ExpansionEnv, options: ExpandOptions = {}): string {
  return new ShellLexer(content, env, options).runHeredoc();
}

const EOF = undefined;
const SPECIAL_PARAMETERS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);
const IDENTIFIER = /^[\p{L}_][\p{L}\p{N}_]*$/u;
const NAME_CHAR = /^[\p{L}\p{N}_]$/u;
const SPACE = /^\s$/u;

class WordCollector {
  readonly words: string[] = [];
  private word = '';
  private inWord = false;

  /** A character from unquoted text: whitespace ends the current word. */
  addChar(ch: string): void {
    if (SPACE.test(ch)) {
      if (this.inWord && this.word.length > 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
      return;
    }
    this.addRaw(ch);
  }

  addRaw(text: string): void {
    this.word += text;
    this.inWord = true;
  }

  /** Text from an unquoted expansion: split like unquoted characters. */
  addSplit(text: string): void {
    for (const ch of text) this.addChar(ch);
  }

  finish(): string[] {
    if (this.word.length > 0) this.words.push(this.word);
    this.word = '';
    this.inWord = false;
    return this.words;
  }
}

class ShellLexer {
  private readonly chars: string[];
  private pos = 0;
  private readonly escape: string;

  constructor(
    private readonly source: string,
    private readonly env: ExpansionEnv,
    private readonly options: ExpandOptions,
  ) {
    this.chars = Array.from(source);
    this.escape = options.escapeToken ?? '\\';
  }

  run(): { value: string; words: string[] } {
    try {
      return this.until(undefined);
    } catch (error) {
      if (error instanceof LexProblem) throw new ShellExpansionError(this.source, error.message);
      throw error;
    }
  }

  runHeredoc(): string {
    try {
      let out = '';
      while (this.peek() !== EOF) {
        const ch = this.peek();
        if (ch === '$') {
          out += this.dollar();
          continue;
        }
        this.pos++;
        const next = this.peek();
        if (ch === this.escape && (next === '$' || next === this.escape)) {
          this.pos++;
          out += this.options.rawEscapes ? ch + next : next;
          continue;
        }
        if (ch === this.escape && next === '\n') {
          this.pos++;
          continue;
        }
        out += ch;
      }
      return out;
    } catch (error) {
      if (error instanceof LexProblem) throw new ShellExpansionError(this.source, error.message);
      throw error;
    }
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    return this.chars[this.pos++];
  }

  /** Processes text until `stop` (consumed) or the end; `rawEscapes` keeps escapes (for patterns). */
  private until(stop: string | undefined, keepEscapes = false): { value: string; words: string[] } {
    let value = '';
    const words = new WordCollector();
    while (this.peek() !== EOF) {
      const ch = this.peek() as string;
      if (stop !== undefined && ch === stop) {
        this.pos++;
        return { value, words: words.finish() };
      }
      if (ch === "'") {
        const quoted = this.singleQuoted();
        value += quoted;
        words.addRaw(quoted);
      } else if (ch === '"') {
        const quoted = this.doubleQuoted();
        value += quoted;
        words.addRaw(quoted);
      } else if (ch === '$') {
        const expanded = this.dollar();
        value += expanded;
        words.addSplit(expanded);
      } else {
        this.pos++;
        if (ch === this.escape) {
          const escaped = this.next();
          if (escaped === EOF) break; // a trailing escape is dropped
          const text = this.options.rawEscapes || keepEscapes ? ch + escaped : escaped;
          value += text;
          words.addRaw(text);
        } else {
          value += ch;
          words.addChar(ch);
        }
      }
    }
    if (stop !== undefined) throw new LexProblem(`unexpected end of statement while looking for matching ${stop}`);
    return { value, words: words.finish() };
  }

  private singleQuoted(): string {
    this.pos++;
    let out = '';
    for (;;) {
      const ch = this.next();
      if (ch === EOF) throw new LexProblem('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return this.options.rawQuotes ? `'${out}'` : out;
      out += ch;
    }
  }

  private doubleQuoted(): string {
    this.pos++;
    let out = '';
    for (;;) {
      const ch = this.peek();
      if (ch === EOF) throw new LexProblem('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.pos++;
        return this.options.rawQuotes ? `"${out}"` : out;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      this.pos++;
      if (ch === this.escape) {
        const next = this.peek();
        if (next === EOF) continue;
        if (next === '"' || next === '$' || next === this.escape) {
          this.pos++;
          out += this.options.rawEscapes ? ch + next : next;
          continue;
        }
      }
      out += ch;
    }
  }

  private lookup(name: string): string | undefined {
    const value = typeof this.env === 'function' ? this.env(name) : this.env.get(name);
    if (IDENTIFIER.test(name)) {
      this.options.referenced?.add(name);
      if (value === undefined) this.options.unset?.add(name);
    }
    return value;
  }

  private dollar(): string {
    this.pos++; // `$`
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      const value = this.lookup(name);
      if (value === undefined && this.options.skipUnset) return `$${name}`;
      return value ?? '';
    }
    this.pos++; // `{`
    const first = this.peek();
    if (first === EOF) throw new LexProblem("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new LexProblem('syntax error: bad substitution');
    const name = this.name();
    let op = this.next();
    if (op === EOF) throw new LexProblem("syntax error: missing '}'");
    if (op === '}') {
      const value = this.lookup(name);
      if (value === undefined && this.options.skipUnset) return `\${${name}}`;
      return value ?? '';
    }
    let written = op;
    const nullIsUnset = op === ':';
    if (nullIsUnset) {
      op = this.next();
      if (op === EOF) throw new LexProblem("syntax error: missing '}'");
      written += op;
    }
    if (op === '-' || op === '+' || op === '?') return this.defaulting(name, op, nullIsUnset, written);
    if (!nullIsUnset && (op === '#' || op === '%')) return this.trimming(name, op, written);
    if (!nullIsUnset && op === '/') return this.replacing(name, written);
    throw new LexProblem(`unsupported modifier (${written}) in substitution`);
  }

  private wordUntilBrace(keepEscapes = false): string {
    try {
      return this.until('}', keepEscapes).value;
    } catch (error) {
      if (error instanceof LexProblem && this.peek() === EOF) throw new LexProblem("syntax error: missing '}'");
      throw error;
    }
  }

  private defaulting(name: string, op: string, nullIsUnset: boolean, written: string): string {
    const word = this.wordUntilBrace();
    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnset) return `\${${name}${written}${word}}`;
    const missing = value === undefined || (nullIsUnset && value === '');
    if (op === '-') return missing ? word : (value as string);
    if (op === '+') return missing ? '' : word;
    if (!missing) return value as string;
    const fallback = value === undefined ? 'is not allowed to be unset' : 'is not allowed to be empty';
    throw new LexProblem(`${name}: ${word || fallback}`);
  }

  private trimming(name: string, op: string, written: string): string {
    const longest = this.peek() === op;
    if (longest) {
      this.pos++;
      written += op;
    }
    const pattern = this.wordUntilBrace(true);
    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnset) return `\${${name}${written}${pattern}}`;
    const text = value ?? '';
    const matcher = globToRegExp(pattern, this.escape);
    const chars = Array.from(text);
    const cuts = [...Array(chars.length + 1).keys()];
    if (op === '#') {
      // Prefix removal: shortest prefix first unless `##`.
      for (const cut of longest ? cuts.reverse() : cuts) {
        if (matcher.test(chars.slice(0, cut).join(''))) return chars.slice(cut).join('');
      }
    } else {
      // Suffix removal: shortest suffix first unless `%%`.
      for (const cut of longest ? cuts : cuts.reverse()) {
        if (matcher.test(chars.slice(cut).join(''))) return chars.slice(0, cut).join('');
      }
    }
    return text;
  }

  private replacing(name: string, written: string): string {
    const all = this.peek() === '/';
    if (all) {
      this.pos++;
      written += '/';
    }
    let pattern: string;
    try {
      pattern = this.until('/', true).value;
    } catch (error) {
      if (error instanceof LexProblem && this.peek() === EOF) throw new LexProblem("syntax error: missing '/' in ${}");
      throw error;
    }
    const replacement = this.wordUntilBrace();
    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnset) return `\${${name}${written}${pattern}/${replacement}}`;
    const chars = Array.from(value ?? '');
    if (pattern === '') return chars.join('');
    const matcher = globToRegExp(pattern, this.escape);
    let out = '';
    let start = 0;
    while (start <= chars.length) {
      const end = longestMatchAt(chars, start, matcher);
      if (end === undefined || end === start) {
        if (start < chars.length) out += chars[start];
        start++;
        continue;
      }
      out += replacement;
      start = end;
      if (!all) {
        out += chars.slice(start).join('');
        return out;
      }
    }
    return out;
  }

  /** A variable name: letters, digits and `_`; or a run of digits; or one special parameter. */
  private name(): string {
    const first = this.peek();
    if (first === EOF) return '';
    if (/^\p{Nd}$/u.test(first)) {
      let digits = '';
      while (this.peek() !== EOF && /^\p{Nd}$/u.test(this.peek() as string)) digits += this.next();
      return digits;
    }
    if (SPECIAL_PARAMETERS.has(first)) {
      this.pos++;
      return first;
    }
    let name = '';
    while (this.peek() !== EOF && NAME_CHAR.test(this.peek() as string)) name += this.next();
    return name;
  }
}

class LexProblem extends Error {}

function longestMatchAt(chars: string[], start: number, matcher: RegExp): number | undefined {
  for (let end = chars.length; end >= start; end--) {
    if (matcher.test(chars.slice(start, end).join(''))) return end;
  }
  return undefined;
}

/** Shell pattern (`*`, `?`, `[...]`, escapes) to an anchored regular expression. */
function globToRegExp(pattern: string, escape: string): RegExp {
  const chars = Array.from(pattern);
  let source = '';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === escape && i + 1 < chars.length) {
      source += escapeRegExp(chars[++i]);
    } else if (ch === '*') {
      source += '[\\s\\S]*';
    } else if (ch === '?') {
      source += '[\\s\\S]';
    } else if (ch === '[') {
      const close = chars.indexOf(']', i + 2);
      if (close === -1) {
        source += '\\[';
        continue;
      }
      let body = chars.slice(i + 1, close);
      const negate = body[0] === '!' || body[0] === '^';
      if (negate) body = body.slice(1);
      source += `[${negate ? '^' : ''}${body.map((c) => (c === '-' ? '-' : escapeRegExp(c))).join('')}]`;
      i = close;
    } else {
      source += escapeRegExp(ch);
    }
  }
  try {
    return new RegExp(`^(?:${source})$`, 'u');
  } catch {
    throw new LexProblem(`bad pattern ${JSON.stringify(pattern)} in substitution`);
  }
}

function escapeRegExp(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}
