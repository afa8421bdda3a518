import { DockerfileSyntaxError, InstructionProblem } from './errors';
import { buildInstruction } from './instructions';
import type { ArgInstruction, Dockerfile, Instruction, Stage } from './model';
import { keywordOf, readLogicalLines, type LogicalLine } from './reader';
import type { EscapeToken } from './shell-lexer';

export interface ParseOptions {
  /** The name used in error messages; default `Dockerfile`. */
  file?: string;
}

/** Parses a Dockerfile into stages of typed instructions, following BuildKit's Dockerfile frontend. */
export function parseDockerfile(text: string, options: ParseOptions = {}): Dockerfile {
  const file = options.file ?? 'Dockerfile';
  const { directives, lines } = readLogicalLines(text, file);
  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  const stageNames = new Set<string>();
  for (const logical of lines) {
    const instruction = toInstruction(logical, file, directives.escape);
    if (instruction.kind === 'FROM') {
      if (instruction.stageName !== undefined) {
        if (stageNames.has(instruction.stageName)) {
          throw new DockerfileSyntaxError(file, instruction.line, 'FROM', `duplicate stage name ${JSON.stringify(instruction.stageName)}`);
        }
        stageNames.add(instruction.stageName);
      }
      const stage: Stage = { index: stages.length, baseName: instruction.image, line: instruction.line, from: instruction, instructions: [] };
      if (instruction.stageName !== undefined) stage.name = instruction.stageName;
      if (instruction.platform !== undefined) stage.platform = instruction.platform;
      stages.push(stage);
    } else if (stages.length > 0) {
      stages[stages.length - 1].instructions.push(instruction);
    } else if (instruction.kind === 'ARG') {
      globalArgs.push(instruction);
    } else {
      throw new DockerfileSyntaxError(file, instruction.line, instruction.kind, 'instruction before the first FROM (only ARG may come before FROM)');
    }
  }
  if (stages.length === 0) {
    const line = lines.length > 0 ? lines[lines.length - 1].endLine : 1;
    throw new DockerfileSyntaxError(file, line, 'FROM', lines.length > 0 ? 'no FROM instruction: a Dockerfile needs at least one stage' : 'file with no instructions');
  }
  return { file, directives, globalArgs, stages };
}

/**
 * Parses one instruction from text, e.g. an ONBUILD trigger read from a base image's config.
 * Triggers are parsed with the default escape character, as BuildKit does.
 */
export function parseInstructionLine(text: string, options: ParseOptions & { escapeToken?: EscapeToken } = {}): Instruction {
  const file = options.file ?? 'ONBUILD trigger';
  const escapeToken = options.escapeToken ?? '\\';
  const { lines } = readLogicalLines(text, file, { escape: escapeToken, directives: false });
  if (lines.length !== 1) {
    const extra = lines[1];
    throw new DockerfileSyntaxError(file, extra?.line ?? 1, extra ? keywordOf(extra.text) : 'instruction', `expected exactly one instruction, found ${lines.length}`);
  }
  const logical = lines[0];
  return toInstruction(logical, file, escapeToken);
}

function toInstruction(logical: LogicalLine, file: string, escapeToken: EscapeToken): Instruction {
  try {
    return buildInstruction(logical, { file, escapeToken });
  } catch (error) {
    if (error instanceof InstructionProblem) throw new DockerfileSyntaxError(file, logical.line, keywordOf(logical.text), error.message);
    throw error;
  }
}
