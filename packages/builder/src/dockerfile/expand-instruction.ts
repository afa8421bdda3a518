import { DockerfileSyntaxError, InstructionProblem, ShellExpansionError } from './errors';
import { parseMount } from './flags';
import type { Heredoc, Instruction, InstructionKind } from './model';
import { expandHeredocContent, expandWord, expandWords, type ExpandOptions, type ExpansionEnv } from './shell-lexer';

/**
 * Instructions whose arguments the builder expands (BuildKit's list). RUN, CMD and ENTRYPOINT
 * are left to the shell; ONBUILD triggers expand when they fire. RUN still expands its
 * `--mount` values.
 */
export const EXPANDING_INSTRUCTIONS: ReadonlySet<InstructionKind> = new Set<InstructionKind>([
  'ADD', 'COPY', 'ENV', 'EXPOSE', 'FROM', 'LABEL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR', 'ARG',
]);

export interface ExpandedInstruction<T extends Instruction = Instruction> {
  instruction: T;
  /** Every variable the instruction referenced, set or not. */
  referenced: Set<string>;
  /** The referenced variables that were unset. */
  unset: Set<string>;
}

/**
 * Returns the instruction with its fields expanded against `env`, by BuildKit's rules: which
 * fields expand, word splitting for EXPOSE, heredoc bodies of COPY/ADD only when the delimiter
 * was unquoted. Within one instruction every field sees the same env (`ENV A=1 B=$A` gives B
 * the earlier A). The input is not changed. Errors are DockerfileSyntaxError with file:line.
 */
export function expandInstruction<T extends Instruction>(instruction: T, env: ExpansionEnv): ExpandedInstruction<T> {
  const referenced = new Set<string>();
  const unset = new Set<string>();
  const options: ExpandOptions = { escapeToken: instruction.escapeToken, referenced, unset };
  const word = (text: string) => expandWord(text, env, options);
  const maybe = (text: string | undefined) => (text === undefined ? undefined : word(text));
  const heredoc = (doc: Heredoc): Heredoc => (doc.expand ? { ...doc, content: expandHeredocContent(doc.content, env, options) } : doc);
  try {
    return { instruction: expandFields(instruction, word, maybe, heredoc, env, options) as T, referenced, unset };
  } catch (error) {
    if (error instanceof ShellExpansionError || error instanceof InstructionProblem) {
      throw new DockerfileSyntaxError(instruction.file, instruction.line, instruction.kind, error.message, { cause: error });
    }
    throw error;
  }
}

function expandFields(
  instruction: Instruction,
  word: (text: string) => string,
  maybe: (text: string | undefined) => string | undefined,
  heredoc: (doc: Heredoc) => Heredoc,
  env: ExpansionEnv,
  options: ExpandOptions,
): Instruction {
  switch (instruction.kind) {
    case 'FROM':
      return withOptional({ ...instruction, image: word(instruction.image) }, { platform: maybe(instruction.platform) });
    case 'RUN':
      return { ...instruction, mounts: instruction.mounts.map((mount) => parseMount(mount.spec, word)) };
    case 'ENV':
    case 'LABEL':
      return { ...instruction, pairs: instruction.pairs.map(({ key, value }) => ({ key: word(key), value: word(value) })) };
    case 'ARG':
      return {
        ...instruction,
        args: instruction.args.map((arg) => (arg.defaultValue === undefined ? arg : { ...arg, defaultValue: word(arg.defaultValue) })),
      };
    case 'EXPOSE':
      return { ...instruction, ports: instruction.ports.flatMap((port) => expandWords(port, env, options)) };
    case 'VOLUME': {
      const paths = instruction.paths.map(word);
      if (paths.some((path) => path.trim() === '')) throw new InstructionProblem('VOLUME specified can not be an empty string');
      return { ...instruction, paths };
    }
    case 'WORKDIR':
      return { ...instruction, path: word(instruction.path) };
    case 'USER':
      return { ...instruction, user: word(instruction.user) };
    case 'STOPSIGNAL':
      return { ...instruction, signal: word(instruction.signal) };
    case 'COPY': {
      const copy = {
        ...instruction,
        sources: instruction.sources.map(word),
        dest: word(instruction.dest),
        contents: instruction.contents.map(heredoc),
        heredocs: instruction.heredocs.map(heredoc),
        excludes: instruction.excludes.map(word),
      };
      return withOptional(copy, { from: maybe(instruction.from), chown: maybe(instruction.chown), chmod: maybe(instruction.chmod) });
    }
    case 'ADD': {
      const add = {
        ...instruction,
        sources: instruction.sources.map(word),
        dest: word(instruction.dest),
        contents: instruction.contents.map(heredoc),
        heredocs: instruction.heredocs.map(heredoc),
        excludes: instruction.excludes.map(word),
      };
      return withOptional(add, {
        chown: maybe(instruction.chown),
        chmod: maybe(instruction.chmod),
        checksum: maybe(instruction.checksum),
      });
    }
    default:
      return instruction;
  }
}

function withOptional<T extends object>(target: T, fields: Partial<Record<keyof T, string | undefined>>): T {
  const out = { ...target } as Record<string, unknown>;
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) out[key] = value;
  }
  return out as T;
}
