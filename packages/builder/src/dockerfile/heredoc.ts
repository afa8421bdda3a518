import { InstructionProblem, ShellExpansionError } from './errors';
import type { Heredoc } from './model';
import { expandWords } from './shell-lexer';

const HEREDOC_WORD = /^(\d*)<<(-?)([^<]*)$/;
const NO_ENV: ReadonlyMap<string, string> = new Map();

/** The heredoc a word opens (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`), or undefined; the body is not read yet. */
export function parseHeredocWord(word: string): Omit<Heredoc, 'content'> | undefined {
  const match = HEREDOC_WORD.exec(word);
  if (!match || match[3] === '') return undefined;
  const rest = match[3];
  try {
    const words = expandWords(rest, NO_ENV, { skipUnset: true });
    if (words.length !== 1) return undefined;
    const raw = expandWords(rest, NO_ENV, { skipUnset: true, rawQuotes: true });
    // A quoted part anywhere in the delimiter turns expansion of the body off, as in a shell.
    const expand = countQuotes(words[0]) === countQuotes(raw[0] ?? '');
    const heredoc: Omit<Heredoc, 'content'> = { name: words[0], expand, chomp: match[2] === '-' };
    if (match[1] !== '') heredoc.fileDescriptor = Number(match[1]);
    return heredoc;
  } catch (error) {
    if (error instanceof ShellExpansionError) throw new InstructionProblem(`invalid heredoc ${JSON.stringify(word)}: ${error.problem}`);
    throw error;
  }
}

/** The heredocs a logical line opens, in order. */
export function heredocsInLine(line: string): Omit<Heredoc, 'content'>[] {
  let words: string[];
  try {
    words = expandWords(line, NO_ENV, { skipUnset: true, rawQuotes: true, rawEscapes: true });
  } catch (error) {
    if (error instanceof ShellExpansionError) return []; // BuildKit ignores lines its lexer rejects here
    throw error;
  }
  return words.map(parseHeredocWord).filter((heredoc) => heredoc !== undefined);
}

function countQuotes(text: string): number {
  return text.split('').filter((ch) => ch === '"' || ch === "'").length;
}
