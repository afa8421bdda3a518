import { TesseraError } from '@tessera/oci';

/** A Dockerfile that cannot be parsed or resolved; the message reads `FILE:LINE: INSTRUCTION: problem`. */
export class DockerfileSyntaxError extends TesseraError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly instruction: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}:${line}: ${instruction}: ${problem}`, 'DOCKERFILE_SYNTAX', undefined, options);
  }
}

/** A word that the shell lexer cannot expand (bad substitution, unterminated quote, `${V:?msg}`). */
export class ShellExpansionError extends TesseraError {
  constructor(readonly word: string, readonly problem: string) {
    super(`failed to process ${JSON.stringify(word)}: ${problem}`, 'DOCKERFILE_EXPANSION');
  }
}

/** Internal: a problem found while parsing one instruction; the parser adds file, line and keyword. */
export class InstructionProblem extends Error {}
