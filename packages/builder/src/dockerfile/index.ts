export { DockerfileSyntaxError, ShellExpansionError } from './errors';
export { EXPANDING_INSTRUCTIONS, expandInstruction, type ExpandedInstruction } from './expand-instruction';
export type * from './model';
export { parseGoDuration } from './flags';
export { parseDockerfile, parseInstructionLine, type ParseOptions } from './parser';
export {
  expandHeredocContent,
  expandWord,
  expandWords,
  type EscapeToken,
  type ExpandOptions,
  type ExpansionEnv,
} from './shell-lexer';
