import { DockerfileSyntaxError, InstructionProblem } from './errors';
import { extractFlags } from './flags';
import { heredocsInLine } from './heredoc';
import type { Directives, Heredoc } from './model';
import type { EscapeToken } from './shell-lexer';

/** One instruction's text: continuation lines joined, comments dropped, heredoc bodies read. */
export interface LogicalLine {
  text: string;
  line: number;
  endLine: number;
  heredocs: Heredoc[];
}

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const HEREDOC_INSTRUCTIONS = new Set(['RUN', 'COPY', 'ADD']);

/** Splits an instruction line into its keyword (as written) and the rest. */
export function splitKeyword(text: string): { keyword: string; rest: string } {
  const trimmed = text.trim();
  const match = /^(\S+)(?:\s+([\s\S]*))?$/.exec(trimmed);
  return { keyword: match?.[1] ?? '', rest: match?.[2] ?? '' };
}

/** Whether a JSON array (exec form) follows; heredocs are only read for shell-form RUN, COPY and ADD. */
export function isJsonArray(args: string): boolean {
  if (!args.startsWith('[')) return false;
  try {
    return Array.isArray(JSON.parse(args));
  } catch {
    return false;
  }
}

function mayOpenHeredocs(text: string): boolean {
  let { keyword, rest } = splitKeyword(text);
  if (keyword.toUpperCase() === 'ONBUILD') ({ keyword, rest } = splitKeyword(rest));
  if (!HEREDOC_INSTRUCTIONS.has(keyword.toUpperCase())) return false;
  return !isJsonArray(extractFlags(rest).rest);
}

/**
 * Reads a Dockerfile into logical lines, following BuildKit's rules: parser directives only at
 * the very top; the escape character at the end of a line continues it; comment lines and
 * blank lines inside a continuation are skipped; heredoc bodies follow their instruction.
 */
export function readLogicalLines(
  source: string,
  file: string,
  options: { escape?: EscapeToken; directives?: boolean } = {},
): { directives: Directives; lines: LogicalLine[] } {
  const physical = source.replace(/^\uFEFF/, '').split('\n').map((line) => line.replace(/\r$/, ''));
  const directives: Directives = { escape: options.escape ?? '\\' };
  const seen = new Set<string>();
  let lookingForDirectives = options.directives ?? true;
  const lines: LogicalLine[] = [];

  let index = 0;
  while (index < physical.length) {
    const lineNumber = index + 1;
    const first = physical[index++].replace(/^\s+/, '');
    if (lookingForDirectives) {
      const match = DIRECTIVE.exec(first);
      const key = match?.[1].toLowerCase();
      if (match && key && KNOWN_DIRECTIVES.has(key)) {
        if (seen.has(key)) throw new DockerfileSyntaxError(file, lineNumber, 'directive', `only one ${key} parser directive can be used`);
        seen.add(key);
        if (key === 'escape') {
          if (match[2] !== '\\' && match[2] !== '`') {
            throw new DockerfileSyntaxError(file, lineNumber, 'directive', `invalid escape token ${JSON.stringify(match[2])}: must be \` or \\`);
          }
          directives.escape = match[2];
        } else if (key === 'syntax') {
          directives.syntax = match[2];
        } else {
          directives.check = match[2];
        }
        continue;
      }
      lookingForDirectives = false;
    }
    if (first.startsWith('#') || first === '') continue;

    const escape = directives.escape;
    let continued = stripContinuation(first, escape);
    let text = continued ?? first;
    while (continued !== undefined && index < physical.length) {
      const next = physical[index++];
      const trimmed = next.replace(/^\s+/, '');
      if (trimmed.startsWith('#') || trimmed === '') continue;
      continued = stripContinuation(next, escape);
      text += continued ?? next;
    }
    if (text.trim() === '') continue;

    const logical: LogicalLine = { text, line: lineNumber, endLine: index, heredocs: [] };
    if (mayOpenHeredocs(text)) {
      let openers;
      try {
        openers = heredocsInLine(text);
      } catch (error) {
        if (error instanceof InstructionProblem) throw new DockerfileSyntaxError(file, lineNumber, keywordOf(text), error.message);
        throw error;
      }
      for (const opener of openers) {
        let content = '';
        let terminated = false;
        while (index < physical.length) {
          const body = physical[index++];
          const candidate = opener.chomp ? body.replace(/^\t+/, '') : body;
          if (candidate === opener.name) {
            terminated = true;
            break;
          }
          content += `${candidate}\n`;
        }
        if (!terminated) throw new DockerfileSyntaxError(file, lineNumber, keywordOf(text), `unterminated heredoc ${JSON.stringify(opener.name)}`);
        logical.heredocs.push({ ...opener, content });
      }
      logical.endLine = index;
    }
    lines.push(logical);
  }
  return { directives, lines };
}

export function keywordOf(text: string): string {
  return splitKeyword(text).keyword.toUpperCase();
}

/** The line without its trailing continuation escape, or undefined when the line does not continue. */
function stripContinuation(line: string, escape: EscapeToken): string | undefined {
  const trimmed = line.replace(/[ \t]+$/, '');
  if (!trimmed.endsWith(escape)) return undefined;
  if (trimmed.length === 1) return '';
  // An escaped escape (`\\`) at the end is a literal backslash, not a continuation.
  if (trimmed[trimmed.length - 2] === escape) return undefined;
  return trimmed.slice(0, -1);
}
